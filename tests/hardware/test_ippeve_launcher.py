"""The ippeveprinter launcher used by the `ippeveprinter` fixture."""

from __future__ import annotations

import pytest

from hardware.printers.ipp import IppPrinterTransport
from hardware.printers.pinning import fetch_pin
from hardware.printers.transport import PrintJob
from tests.support.ippeve import IppEvePrinter, IppEvePrinterError


def test_missing_ippeveprinter_fails_loudly(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing installed here
    with pytest.raises(IppEvePrinterError, match="cups-ipp-utils"), IppEvePrinter(tmp_path):
        pass


@pytest.mark.ippeveprinter
def test_ipps_reaches_the_same_printer_over_tls(ippeveprinter):
    """ippeveprinter serves ipps:// on its IPP port with a self-signed certificate (-K)."""
    uri = ippeveprinter.ipps_uri
    transport = IppPrinterTransport(uri, pin=fetch_pin(uri), timeout_s=10, poll_interval_s=0.1)
    result = transport.deliver(PrintJob("release-tls", "alice", "text/plain"), [b"secret"])
    [kept] = ippeveprinter.documents()
    assert kept.read_bytes() == b"secret"
    assert kept.name.startswith(f"{result.printer_job_id}-release-tls")


@pytest.mark.ippeveprinter
def test_processes_are_stopped_on_exit(tmp_path):
    with IppEvePrinter(tmp_path) as printer:
        processes = [printer._printer.process, printer._dbus.process]
        assert all(p is not None and p.poll() is None for p in processes)
    assert all(p is not None and p.poll() is not None for p in processes)
