"""The whole loop, end to end: submit -> park -> tap -> list -> print all -> printed -> destroyed.

Runs the real cloud app (uvicorn on 127.0.0.1), the real station code with a simulated reader and
display, and a real IPP printer: Debian's `ippeveprinter` and our virtual printer.
"""

from __future__ import annotations

import hashlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hardware.readers.formats import h10301
from station.credentials import credential_tag
from station.screens import DoneScreen, ErrorScreen, JobListScreen, NoJobsScreen
from station.workflow import Button
from tests.cloud.conftest import blob_files
from tools.rig import LoopRig
from tools.samples import make_pdf, make_text

BADGE = h10301(90, 324)
PDF = make_pdf(["end to end", "page one"])
TEXT = make_text(["plain text job"] * 2000)  # ~30 KB: several container chunks


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[LoopRig]:
    with LoopRig(tmp_path / "rig", done_s=0.3, error_s=0.3) as started:
        yield started


def _submit(rig: LoopRig, token: str, name: str, fmt: str, data: bytes) -> dict:
    response = rig.http.post(
        f"{rig.cloud_url}/api/v1/jobs",
        params={"name": name},
        data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": fmt},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


def _tap_and_print(rig: LoopRig):
    tapped = rig.tap(BADGE)
    listed = rig.screens.wait_for(
        (JobListScreen, ErrorScreen, NoJobsScreen), after=tapped, timeout_s=15
    )
    assert listed is not None, "no screen after the tap"
    assert isinstance(listed[1], JobListScreen), listed[1].lines()
    pressed = rig.press(Button.PRINT_ALL)
    finished = rig.screens.wait_for((DoneScreen, ErrorScreen), after=pressed, timeout_s=90)
    assert finished is not None, "delivery never finished"
    return listed[1], finished[1]


def _blob_files(rig: LoopRig) -> list[Any]:
    """The cloud's stored blobs: files, or S3 objects under the postgres profile."""
    assert rig.service is not None
    return blob_files(rig.service)


def _assert_printed_and_destroyed(rig: LoopRig, jobs: list[dict]) -> None:
    for job in jobs:
        status = rig.job_status(job["id"])
        assert status["state"] == "printed"
        assert status["content_held"] is False
    assert _blob_files(rig) == []


def test_release_to_the_virtual_printer(rig: LoopRig) -> None:
    user = rig.enrol("ada@example.org", "Ada Lovelace", BADGE)
    jobs = [
        _submit(rig, user.token, "report.pdf", "application/pdf", PDF),
        _submit(rig, user.token, "notes.txt", "text/plain", TEXT),
    ]
    listing, finished = _tap_and_print(rig)
    assert "Ada Lovelace" in " ".join(listing.lines())
    assert len(listing.jobs) == 2
    assert isinstance(finished, DoneScreen), finished.lines()

    assert rig.printer is not None
    received = rig.printer.received
    assert sorted(hashlib.sha256(d.data).hexdigest() for d in received) == sorted(
        hashlib.sha256(x).hexdigest() for x in (PDF, TEXT)
    )
    formats = {d.document_format for d in received}
    assert formats == {"application/pdf", "text/plain"}
    assert all(d.user_name for d in received)
    _assert_printed_and_destroyed(rig, jobs)


def test_release_to_ippeveprinter(tmp_path: Path, ippeveprinter) -> None:
    with LoopRig(tmp_path / "rig", printer_uri=ippeveprinter.uri, done_s=0.3) as rig:
        user = rig.enrol("ada@example.org", "Ada Lovelace", BADGE)
        jobs = [
            _submit(rig, user.token, "report.pdf", "application/pdf", PDF),
            _submit(rig, user.token, "notes.txt", "text/plain", TEXT),
        ]
        _listing, finished = _tap_and_print(rig)
        assert isinstance(finished, DoneScreen), finished.lines()
        documents = ippeveprinter.documents()
        assert sorted(p.read_bytes() for p in documents) == sorted([PDF, TEXT])
        # ippeveprinter names each kept file JOBID-jobname.ext; job-name is the release id.
        for path in documents:
            job_name = path.stem.split("-", 1)[1]
            assert len(job_name) == 36 and job_name.count("-") == 4, path.name
        _assert_printed_and_destroyed(rig, jobs)


def test_unknown_badge_is_refused_and_nothing_leaks(rig: LoopRig, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    rig.enrol("ada@example.org", "Ada Lovelace", BADGE)
    stranger = h10301(90, 999)
    tapped = rig.tap(stranger)
    shown = rig.screens.wait_for(
        (ErrorScreen, JobListScreen, NoJobsScreen), after=tapped, timeout_s=15
    )
    assert shown is not None and isinstance(shown[1], ErrorScreen)
    text = " ".join(shown[1].lines()).lower()
    assert "not recognised" in text
    tag = credential_tag(rig.site_key, stranger)
    secrets_seen = [tag, stranger.raw.hex(), "999"]
    for record in caplog.records:
        message = record.getMessage()
        assert not any(s in message for s in secrets_seen[:2]), message
    assert not any(s in text for s in secrets_seen)


@pytest.mark.parametrize("damage", ["flip-a-byte", "truncate"])
def test_damaged_stored_job_is_refused_before_a_byte_is_printed(rig: LoopRig, damage: str) -> None:
    user = rig.enrol("ada@example.org", "Ada Lovelace", BADGE)
    job = _submit(rig, user.token, "notes.txt", "text/plain", TEXT)
    [blob] = _blob_files(rig)
    data = bytearray(blob.read_bytes())
    if damage == "flip-a-byte":
        data[len(data) - 100] ^= 0x01  # inside the last chunk: earlier chunks are intact
    else:
        del data[-1000:]
    blob.write_bytes(bytes(data))

    _listing, finished = _tap_and_print(rig)
    assert isinstance(finished, ErrorScreen)
    assert "damaged" in " ".join(finished.lines()).lower()
    assert rig.printer is not None
    assert rig.printer.received == []
    assert rig.printer.bytes_received == 0, "not a byte may reach the printer"
    status = rig.job_status(job["id"])
    assert status["state"] == "held"


def test_unreachable_printer_keeps_the_job_held(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port on loopback that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"ipp://127.0.0.1:{port}/ipp/print"
    with LoopRig(tmp_path / "rig", printer_uri=uri, done_s=0.3, error_s=0.3) as rig:
        user = rig.enrol("ada@example.org", "Ada Lovelace", BADGE)
        job = _submit(rig, user.token, "report.pdf", "application/pdf", PDF)
        _listing, finished = _tap_and_print(rig)
        assert isinstance(finished, ErrorScreen)
        assert "reach" in " ".join(finished.lines()).lower()
        status = rig.job_status(job["id"])
        assert status["state"] == "held" and status["content_held"] is True


def test_printer_failing_mid_job_keeps_the_job_held_then_prints_once(rig: LoopRig) -> None:
    user = rig.enrol("ada@example.org", "Ada Lovelace", BADGE)
    job = _submit(rig, user.token, "report.pdf", "application/pdf", PDF)
    assert rig.printer is not None
    rig.printer.set_fault("media-empty")
    _listing, finished = _tap_and_print(rig)
    assert isinstance(finished, ErrorScreen)
    assert "paper" in " ".join(finished.lines()).lower()
    assert rig.job_status(job["id"])["state"] == "held"
    assert rig.printer.received == []

    rig.printer.clear_fault()
    assert rig.wait_idle(), "the error screen never returned to idle"
    _listing, finished = _tap_and_print(rig)
    assert isinstance(finished, DoneScreen), finished.lines()
    assert [d.data for d in rig.printer.received] == [PDF]
    _assert_printed_and_destroyed(rig, [job])


def test_submit_cut_off_midway_leaves_no_visible_job(rig: LoopRig) -> None:
    user = rig.enrol("ada@example.org", "Ada Lovelace", BADGE)
    host, port = rig.server.url.removeprefix("http://").split(":")  # type: ignore[union-attr]
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /api/v1/jobs?name=cut.pdf HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + user.token.encode() + b"\r\n"
            b"Content-Type: application/pdf\r\nContent-Length: 1000000\r\n\r\n" + PDF
        )
    tapped = rig.tap(BADGE)
    shown = rig.screens.wait_for(
        (JobListScreen, NoJobsScreen, ErrorScreen), after=tapped, timeout_s=15
    )
    assert shown is not None and isinstance(shown[1], NoJobsScreen), shown
    listed = rig.http.get(
        f"{rig.cloud_url}/api/v1/jobs",
        headers={"Authorization": f"Bearer {user.token}"},
        timeout=10,
    )
    assert listed.json()["jobs"] == []
    assert _blob_files(rig) == []
