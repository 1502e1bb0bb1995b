"""A station that dies mid-release: after a restart nothing is lost and nothing prints twice."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from cloud.container import Decryptor  # the station's own decryption, done by hand
from hardware.display.simulated import SimulatedDisplay
from hardware.printers.ipp import IppPrinterTransport
from hardware.printers.transport import PrintJob
from hardware.readers.formats import h10301
from hardware.readers.simulated import SimulatedCardReader
from station.app import build_station
from station.cloud_client import ReleaseInfo
from station.config import load_config
from station.credentials import credential_tag
from station.journal import ReleaseJournal
from tools.rig import LoopRig
from tools.samples import make_pdf

BADGE = h10301(90, 324)
PDF = make_pdf(["printed once"])


def print_by_hand(rig: LoopRig, client: Any, release: ReleaseInfo) -> ReleaseJournal:
    """What a station's worker does with a release up to a crash: journal it, download and
    decrypt the container, send the document to the printer; the outcome is never reported."""
    assert rig.printer is not None
    journal = ReleaseJournal(rig.work_dir / "spool" / "journal")
    journal.begin(release.id, release.job_id)
    with client.stream_content(release.id) as chunks:
        container = b"".join(chunks)
    dec = Decryptor(release.data_key, uuid.UUID(release.job_id), release.site)
    document = dec.update(container) + dec.finalize()
    printer = IppPrinterTransport(rig.printer.uri, timeout_s=10)
    printer.deliver(PrintJob(release.id, "ada", "application/pdf"), [document])
    printer.close()
    return journal


def test_a_release_the_printer_finished_is_reported_not_resent(tmp_path: Path) -> None:
    with LoopRig(tmp_path / "rig", done_s=0.3) as rig:
        user = rig.enrol("ada@example.org", "Ada", BADGE)
        response = rig.http.post(
            f"{rig.cloud_url}/api/v1/jobs",
            params={"name": "once.pdf"},
            data=PDF,
            headers={"Authorization": f"Bearer {user.token}", "Content-Type": "application/pdf"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]
        assert rig.station is not None and rig.printer is not None
        client = rig.station.client
        # What a station does up to the crash: open a session, release, journal, send ...
        session = client.open_session(credential_tag(rig.site_key, BADGE))
        [release] = client.release(session.session_id, None)
        journal = print_by_hand(rig, client, release)
        # ... and the power goes: the outcome never reached the cloud.
        rig.station.stop()
        rig.station = None
        assert rig.job_status(job_id)["content_held"] is True

        # The station starts again from the same config and state directory.
        restarted = build_station(
            load_config(rig.work_dir / "station.toml", {}),
            reader=SimulatedCardReader(),
            display=SimulatedDisplay(),
        )
        restarted.start()
        try:
            deadline = time.monotonic() + 15
            while rig.job_status(job_id)["state"] != "printed" and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            restarted.stop()
        status = rig.job_status(job_id)
        assert status["state"] == "printed"
        assert status["content_held"] is False
        assert [d.data for d in rig.printer.received] == [PDF]  # printed exactly once
        assert journal.entries() == []
