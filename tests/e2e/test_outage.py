"""Cloud outages, end to end on the rig: the real cloud is stopped and started again.

Offline screen, back-off probes, recovery to idle, a tap while offline, and a release whose
outcome could not be reported during the outage (the journal keeps it; it is reported once the
cloud is back, and the document is printed exactly once).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardware.readers.formats import h10301
from station.app import Backoff
from station.screens import DoneScreen, ErrorScreen, IdleScreen, JobListScreen, OfflineScreen
from station.workflow import OFFLINE_TAP_MESSAGE, Button, State
from tools.rig import LoopRig
from tools.samples import make_pdf

BADGE = h10301(77, 4242)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[LoopRig]:
    with LoopRig(
        tmp_path / "rig",
        done_s=0.3,
        error_s=0.5,
        printer_processing_s=1.5,
        cloud_backoff=Backoff(first_s=0.05, max_s=0.4),
        heartbeat_s=0.2,
    ) as started:
        yield started


def _submit(rig: LoopRig, token: str, name: str) -> dict:
    response = rig.http.post(
        f"{rig.cloud_url}/api/v1/jobs",
        params={"name": name},
        data=make_pdf([name]),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/pdf"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_backoff_doubles_with_jitter_and_is_bounded() -> None:
    backoff = Backoff(first_s=1.0, max_s=8.0)
    assert [backoff.delay_s(n, lambda: 0.0) for n in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert [backoff.delay_s(n, lambda: 0.999999) for n in range(6)] == pytest.approx(
        [1, 2, 4, 8, 8, 8], abs=1e-4
    )
    draws = {backoff.delay_s(3, random.Random(seed).random) for seed in range(20)}
    assert len(draws) > 10 and all(4 <= d < 8 for d in draws)  # jittered, within its step
    assert backoff.delay_s(10_000) <= 8.0  # no overflow on a long outage
    with pytest.raises(ValueError, match="back-off"):
        Backoff(first_s=2, max_s=1)


def test_outage_shows_offline_a_tap_says_so_and_the_station_recovers(rig: LoopRig) -> None:
    user = rig.enrol("grace@example.org", "Grace Hopper", BADGE)
    _submit(rig, user.token, "agenda.pdf")
    station = rig.station
    assert station is not None and rig.wait_idle(5)

    went = time.monotonic()
    rig.stop_cloud()
    offline = rig.screens.wait_for(OfflineScreen, after=went, timeout_s=10)
    assert offline is not None, "the heartbeat did not notice the outage"
    assert station.wait_for_state(State.OFFLINE, 5) and station.offline

    tapped = rig.tap(BADGE)
    said = rig.screens.wait_for(OfflineScreen, after=tapped, timeout_s=5)
    assert said is not None and OFFLINE_TAP_MESSAGE in said[1].lines()
    time.sleep(1.0)  # several back-off probes fail meanwhile; nothing else is shown
    shown = [s for at, s in rig.screens.entries if at >= went]
    assert all(isinstance(s, OfflineScreen) for s in shown), [s.label for s in shown]
    assert station.state is State.OFFLINE and station.outages == 1

    back = time.monotonic()
    rig.start_cloud()
    idle = rig.screens.wait_for(IdleScreen, after=back, timeout_s=10)
    assert idle is not None, "the station did not come back by itself"
    assert idle[0] - back < 2.0  # probes are at most max_s (0.4 s) apart
    assert not station.offline

    tapped = rig.tap(BADGE)
    listed = rig.screens.wait_for((JobListScreen, ErrorScreen), after=tapped, timeout_s=10)
    assert listed is not None and isinstance(listed[1], JobListScreen), listed


def test_an_outcome_unreported_during_an_outage_is_reported_after_it(rig: LoopRig) -> None:
    user = rig.enrol("alan@example.org", "Alan Turing", BADGE)
    job = _submit(rig, user.token, "thesis.pdf")
    station, printer = rig.station, rig.printer
    assert station is not None and printer is not None
    tapped = rig.tap(BADGE)
    assert rig.screens.wait_for(JobListScreen, after=tapped, timeout_s=10) is not None
    rig.press(Button.PRINT_ALL)
    # The document is at the printer (which takes 1.5 s to print it): now the cloud goes away.
    printer.wait_for_jobs(1, timeout_s=10)
    rig.stop_cloud()
    finished = rig.screens.wait_for((DoneScreen, ErrorScreen), after=tapped, timeout_s=20)
    assert finished is not None
    # Printed, and the station says so; the cloud has not heard yet: the journal keeps it.
    assert isinstance(finished[1], DoneScreen), finished[1].lines()
    assert [e.release_id for e in station.journal.entries()] != []
    assert station.wait_for_state(State.OFFLINE, 10)

    rig.start_cloud()
    deadline = time.monotonic() + 15
    while station.journal.entries() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert station.journal.entries() == []
    assert rig.job_status(job["id"])["state"] == "printed"
    assert len(printer.received) == 1  # printed once, never again
    assert rig.wait_idle(10)
