"""Logs never hold a card number, tag, PIN, token, key or document content.

The whole loop runs (admin API, REST submit, IPP submit with an app passcode, a refused wrong
token, a tap, a release to the virtual printer) with every logger of the process at DEBUG,
uvicorn's and the HTTP clients' included, and every record is rendered and searched for each
secret the run used. A test that only greps our own modules' log calls would miss a library
logging a URL with credentials in it, which is exactly the kind of leak this is for.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hardware.ipp.codec import Attribute, IppMessage, encode_message
from hardware.ipp.enums import Operation, Tag
from hardware.readers.formats import h10301
from station.credentials import credential_tag
from station.screens import DoneScreen, ErrorScreen, JobListScreen
from station.workflow import Button
from tools.rig import LoopRig
from tools.samples import make_pdf

BADGE = h10301(173, 48213)
MARKER = "confidential-salary-review-" + uuid.uuid4().hex[:8]


class _Everything(logging.Handler):
    """Keeps every record, rendered with its arguments and any traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[_Everything]:
    handler = _Everything()
    # uvicorn's loggers do not always propagate: attach to them as well as to the root.
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "urllib3", "httpx", "httpcore"]
    loggers = [logging.getLogger(name) for name in names]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.addHandler(handler)
    try:
        yield handler
    finally:
        for lg, level in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)


def _ipp_print_job(uri: str, document: bytes) -> bytes:
    request = IppMessage.request(
        Operation.PRINT_JOB,
        1,
        Attribute.of("printer-uri", Tag.URI, uri),
        Attribute.of("requesting-user-name", Tag.NAME_WITHOUT_LANGUAGE, "ada"),
        Attribute.of("job-name", Tag.NAME_WITHOUT_LANGUAGE, "ipp.pdf"),
        Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, "application/pdf"),
    )
    return encode_message(request) + document


def test_a_whole_run_logs_no_secret(tmp_path: Path, captured: _Everything) -> None:
    document = make_pdf([MARKER, "page one"])
    with LoopRig(tmp_path / "rig", done_s=0.3, error_s=0.3) as rig:
        user = rig.enrol("ada@example.org", "Ada Lovelace", BADGE)
        passcode = rig.service.passcodes.issue(uuid.UUID(user.id), "laptop").passcode
        submitted = rig.http.post(
            f"{rig.cloud_url}/api/v1/jobs",
            params={"name": "salary.pdf"},
            data=document,
            headers={"Authorization": f"Bearer {user.token}", "Content-Type": "application/pdf"},
            timeout=30,
        )
        assert submitted.status_code == 201, submitted.text
        wrong = rig.http.get(
            f"{rig.cloud_url}/api/v1/jobs",
            headers={"Authorization": f"Bearer {user.token}x"},
            timeout=30,
        )
        assert wrong.status_code == 401
        basic = base64.b64encode(f"ada@example.org:{passcode}".encode()).decode()
        ipp = httpx.post(
            f"{rig.cloud_url}/ipp/print",
            content=_ipp_print_job(f"{rig.cloud_url.replace('http', 'ipp')}/ipp/print", document),
            headers={"Content-Type": "application/ipp", "Authorization": f"Basic {basic}"},
            timeout=30,
        )
        assert ipp.status_code == 200

        tapped = rig.tap(BADGE)
        listed = rig.screens.wait_for((JobListScreen, ErrorScreen), after=tapped, timeout_s=15)
        assert listed is not None and isinstance(listed[1], JobListScreen), listed
        assert len(listed[1].jobs) == 2
        pressed = rig.press(Button.PRINT_ALL)
        finished = rig.screens.wait_for((DoneScreen, ErrorScreen), after=pressed, timeout_s=60)
        assert finished is not None and isinstance(finished[1], DoneScreen), finished

        config = rig.service.config
        tag = credential_tag(rig.site_key, BADGE)
        secrets = {
            "badge (canonical)": BADGE.canonical(),
            "badge raw hex": BADGE.raw.hex(),
            "card number": "48213",
            "tag": tag,
            "user token": user.token,
            "user token secret part": user.token.rpartition(".")[2],
            "admin token": rig.admin_token,
            "app passcode": passcode,
            "basic credentials": basic,
            "site key": rig.site_key.hex(),
            "master key": config.master_key.hex(),
            "pepper": config.pepper.hex(),
            "document content": MARKER,
        }

    text = "\n".join(captured.lines)
    # The capture did see the run: requests, the release and the printer all logged something.
    assert len(captured.lines) > 20, text
    assert "/api/v1/jobs" in text
    leaked = {name: value for name, value in secrets.items() if value and value in text}
    assert leaked == {}, f"secrets in the log: {sorted(leaked)}"
