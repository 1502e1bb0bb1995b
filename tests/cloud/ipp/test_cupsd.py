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
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cloud.ipp.conftest import IppWorld, environment_without_proxies
from tools.samples import make_pdf, make_text


@pytest.fixture(autouse=True, scope="module")
def _cups_installed() -> None:
    # The test command installs cups (tools/quickstart.sh): missing must fail, not skip.
    missing = [tool for tool in ("cupsd", "lpadmin", "lp") if shutil.which(tool) is None]
    assert not missing, f"missing {missing}: apt-get install --no-install-recommends cups"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateCupsd:
    """cupsd on 127.0.0.1 with all its state in one directory; stopped by PID."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "cups.sock"
        self.env = {**environment_without_proxies(), "CUPS_SERVER": str(self.socket)}
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        root = self.root
        for name in ("etc/ppd", "spool/tmp", "tmp", "cache", "state", "log"):
            (root / name).mkdir(parents=True, exist_ok=True)
        (root / "etc/cupsd.conf").write_text(
            f"Listen 127.0.0.1:{_free_port()}\nListen {self.socket}\nBrowsing No\nLogLevel debug\n"
            "MaxJobs 0\nWebInterface No\n<Location />\n  Order allow,deny\n  Allow all\n"
            "</Location>\n<Policy default>\n  <Limit All>\n    Order allow,deny\n    Allow all\n"
            "  </Limit>\n</Policy>\n"
        )
        (root / "etc/cups-files.conf").write_text(
            f"ServerRoot {root}/etc\nRequestRoot {root}/spool\nTempDir {root}/tmp\n"
            f"CacheDir {root}/cache\nStateDir {root}/state\nErrorLog {root}/log/error_log\n"
            f"AccessLog {root}/log/access_log\nPageLog {root}/log/page_log\n"
            "ServerBin /usr/lib/cups\nDataDir /usr/share/cups\nSystemGroup root\n"
            "FileDevice No\nPrintcap\n"
        )
        for path in [root, *root.rglob("*")]:  # cupsd runs filters as user lp
            path.chmod(0o777 if path.is_dir() else 0o666)
        self._process = subprocess.Popen(
            [
                "cupsd",
                "-f",
                "-c",
                str(root / "etc/cupsd.conf"),
                "-s",
                str(root / "etc/cups-files.conf"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while self.run("lpstat", "-r").returncode != 0:
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError(f"cupsd did not start:\n{self.log()}")
            time.sleep(0.1)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=60, check=False
        )

    def log(self) -> str:
        path = self.root / "log/error_log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)


@pytest.fixture
def cupsd() -> Iterator[PrivateCupsd]:
    # Not under pytest's tmp_path: its parents are private to root and cupsd's filters run as lp.
    root = Path(tempfile.mkdtemp(prefix="pp-cupsd-", dir="/tmp"))
    server = PrivateCupsd(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_cupsd_prints_pdf_and_text_into_the_users_held_queue(
    ipp_world: IppWorld, cupsd: PrivateCupsd
) -> None:
    added = cupsd.run(
        "lpadmin", "-p", "secure", "-E", "-v", ipp_world.uri_with_credentials(), "-m", "everywhere"
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
