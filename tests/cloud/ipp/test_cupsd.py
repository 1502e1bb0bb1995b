"""A real client: a private cupsd adds the endpoint as an IPP Everywhere queue and prints to it.

cupsd runs in the foreground with its own two config files, everything under a temp dir,
listening on 127.0.0.1 and a unix socket that `CUPS_SERVER` points lpadmin/lp/lpstat at
(IPP-NOTES.md). `lpadmin -m everywhere` makes cupsd build the PPD from one Get-Printer-Attributes;
`lp` then sends a PDF as is and a text file through cups-filters. Both must appear in the user's
held list, and the client's own CUPS jobs must complete at once (the pending-held trick), not wait
until someone releases them at a printer.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cloud.ipp.conftest import IppWorld, lpadmin
from tools.cupsd import PrivateCupsd
from tools.samples import make_pdf, make_text


@pytest.fixture(autouse=True, scope="module")
def _cups_installed() -> None:
    # The test command installs cups (tools/quickstart.sh): missing must fail, not skip.
    missing = [tool for tool in ("cupsd", "lpadmin", "lp") if shutil.which(tool) is None]
    assert not missing, f"missing {missing}: apt-get install --no-install-recommends cups"


@pytest.fixture
def cupsd() -> Iterator[PrivateCupsd]:
    # Not under pytest's tmp_path: its parents are private to root and cupsd's filters run as lp.
    root = Path(tempfile.mkdtemp(prefix="pp-cupsd-", dir="/tmp"))
    server = PrivateCupsd(root, log_level="debug")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_cupsd_prints_pdf_and_text_into_the_users_held_queue(
    ipp_world: IppWorld, cupsd: PrivateCupsd
) -> None:
    added = lpadmin(
        cupsd, "-p", "secure", "-E", "-v", ipp_world.uri_with_credentials(), "-m", "everywhere"
    )
    assert added.returncode == 0, added.stderr + cupsd.log()
    ppd = cupsd.root / "etc/ppd/secure.ppd"
    # cupsd builds the PPD in the background; with PDF advertised, clients send PDF as is.
    pdf_as_is = '*cupsFilter2: "application/vnd.cups-pdf application/pdf'
    deadline = time.monotonic() + 15
    while not ppd.exists() or pdf_as_is not in ppd.read_text(errors="replace"):
        assert time.monotonic() < deadline and "PPD creation failed" not in cupsd.log(), cupsd.log()
        time.sleep(0.1)
    assert '*Manufacturer: "PullPrint"' in ppd.read_text(errors="replace")

    pdf, text = cupsd.root / "report.pdf", cupsd.root / "notes.txt"
    pdf.write_bytes(make_pdf(["printed through cupsd"]))
    text.write_bytes(make_text(["plain text through cups-filters", "second line"]))
    for path in (pdf, text):
        path.chmod(0o666)
    started = time.monotonic()
    for path in (pdf, text):
        sent = cupsd.run("lp", "-d", "secure", str(path))
        assert sent.returncode == 0, sent.stderr

    # The client's CUPS jobs complete at once: the endpoint answers pending-held.
    deadline = started + 20
    while cupsd.run("lpstat", "-W", "not-completed", "-o", "secure").stdout.strip():
        assert time.monotonic() < deadline, cupsd.log()
        time.sleep(0.1)
    took_s = time.monotonic() - started
    completed = cupsd.run("lpstat", "-W", "completed", "-o", "secure").stdout
    assert len(completed.strip().splitlines()) == 2, completed
    assert took_s < 10, f"CUPS jobs took {took_s:.1f} s to complete"

    held = ipp_world.service.jobs.list_held(ipp_world.user.id)
    assert sorted(job.name for job in held) == ["notes.txt", "report.pdf"], cupsd.log()
    assert {job.document_format for job in held} <= {
        "application/pdf",
        "image/pwg-raster",
        "image/urf",
        "text/plain",
    }
    assert all(job.owner_id == ipp_world.user.id for job in held)
    assert os.environ.get("CUPS_SERVER") is None  # the test never touched the host's CUPS
