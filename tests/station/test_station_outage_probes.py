"""The cloud watch's probes: spaced by the jittered exponential back-off, bounded, and stopped by
the first answer, which brings the station back and settles the journal."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from hardware.display.simulated import SimulatedDisplay
from hardware.readers.formats import mifare_uid
from hardware.readers.simulated import SimulatedCardReader
from station.app import Backoff, build_station
from station.config import load_config
from station.errors import CloudUnreachableError
from station.workflow import State
from tests.station.test_station_app import CONFIG, FakeCloud, FakePrinter


class ProbedCloud(FakeCloud):
    """A cloud that is down until `up` is set; records when it was probed."""

    def __init__(self) -> None:
        super().__init__({})
        self.up = threading.Event()
        self.pings: list[float] = []
        self.reports: list[tuple[str, str]] = []

    def ping(self) -> None:
        self.pings.append(time.monotonic())
        if not self.up.is_set():
            raise CloudUnreachableError("cannot reach the cloud (ConnectionError)")

    def report_outcome(self, release_id, outcome, reason=None, printer_job_id=None):
        if not self.up.is_set():
            raise CloudUnreachableError("cannot reach the cloud (ConnectionError)")
        self.reports.append((release_id, outcome))


def test_probes_back_off_up_to_the_bound_then_recover_and_settle(tmp_path: Path) -> None:
    (tmp_path / "station.toml").write_text(CONFIG + f'[spool]\ndir = "{tmp_path / "spool"}"\n')
    config = load_config(tmp_path / "station.toml", {})
    cloud = ProbedCloud()
    station = build_station(
        config,
        reader=SimulatedCardReader(),
        display=SimulatedDisplay(128, 64, "1"),
        transport=FakePrinter(),
        client=cloud,
        backoff=Backoff(first_s=0.04, max_s=0.32),
        heartbeat_s=0.05,
    )
    # An outcome the previous run could not report: it must reach the cloud once it is back.
    station.journal.begin("rel-1", "job-1")
    station.journal.settle("rel-1", "job-1", "printed", None, 7)
    station.start()
    try:
        assert station.wait_for_state(State.OFFLINE, 5)
        time.sleep(2.0)
        gaps = [b - a for a, b in zip(cloud.pings, cloud.pings[1:], strict=False)]
        assert len(gaps) >= 5
        # Short at first (step n waits 50-100% of 0.04 * 2^n), never beyond the bound (slack for
        # a busy machine), and after a while in the upper steps (at least half the bound).
        assert min(gaps[:2]) < 0.16
        assert max(gaps) <= 0.32 + 0.15
        assert min(gaps[-3:]) >= 0.16 - 0.02
        assert cloud.reports == []  # still in the journal
        assert [e.release_id for e in station.journal.entries()] == ["rel-1"]

        cloud.up.set()
        assert station.wait_for_state(State.IDLE, 3)
        deadline = time.monotonic() + 3
        while station.journal.entries() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert cloud.reports == [("rel-1", "printed")]
        assert station.journal.entries() == []
        assert not station.offline and station.outages == 1
    finally:
        station.stop()


def test_a_tap_while_offline_probes_at_once(tmp_path: Path) -> None:
    (tmp_path / "station.toml").write_text(CONFIG + f'[spool]\ndir = "{tmp_path / "spool"}"\n')
    config = load_config(tmp_path / "station.toml", {})
    cloud = ProbedCloud()
    reader = SimulatedCardReader()
    station = build_station(
        config,
        reader=reader,
        display=SimulatedDisplay(128, 64, "1"),
        transport=FakePrinter(),
        client=cloud,
        backoff=Backoff(first_s=30, max_s=60),  # no probe of its own within this test
        heartbeat_s=0.05,
    )
    station.start()
    try:
        assert station.wait_for_state(State.OFFLINE, 5)
        probes = len(cloud.pings)
        cloud.up.set()
        time.sleep(0.3)
        assert station.state is State.OFFLINE and len(cloud.pings) == probes
        reader.present(mifare_uid(bytes.fromhex("04A1B2C3D4E5F6")))
        assert station.wait_for_state(State.IDLE, 3)  # probed at the tap, found the cloud back
        assert len(cloud.pings) == probes + 1
    finally:
        station.stop()
