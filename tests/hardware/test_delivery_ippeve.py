"""Delivery against a real IPP Everywhere printer (Debian ippeveprinter) over IPP and IPPS."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hardware.errors import PrinterError, PrinterUnreachableError
from hardware.ipp.codec import Attribute
from hardware.ipp.enums import Operation, Tag
from hardware.printers.errors import PrinterConnectError, PrinterPinMismatchError
from hardware.printers.fallback import FallbackTransport, PrinterPolicy
from hardware.printers.ipp import IppPrinterTransport, printer_ready
from hardware.printers.pinning import fetch_pin
from hardware.printers.transport import PrintJob
from tests.support.ippeve import IppEvePrinter

pytestmark = pytest.mark.ippeveprinter

REASON = "Printer identity changed - ask an admin to re-pair it"


def client(uri: str, **kwargs) -> IppPrinterTransport:
    return IppPrinterTransport(uri, timeout_s=10, poll_interval_s=0.05, **kwargs)


def job_attribute(transport: IppPrinterTransport, job_id: int | None, name: str) -> str | None:
    assert job_id is not None
    response = transport._client.exchange(
        transport._client.request(
            Operation.GET_JOB_ATTRIBUTES,
            Attribute.of("job-id", Tag.INTEGER, job_id),
            Attribute.of("requested-attributes", Tag.KEYWORD, name),
        )
    )
    return response.get_str(Tag.JOB_ATTRIBUTES, name)


def test_ipp_create_job_send_document_and_reconciliation(tmp_path: Path):
    with IppEvePrinter(tmp_path, verbose=True) as printer:
        transport = client(printer.uri)
        assert printer_ready(printer.uri) == (True, None)
        result = transport.deliver(PrintJob("release-ipp-1", "alice", "text/plain"), [b"hi\n"])
        [kept] = printer.documents()
        assert kept.name.startswith(f"{result.printer_job_id}-release-ipp-1.")  # job-name
        assert kept.read_bytes() == b"hi\n"
        operations = [
            line.split()[1] for line in printer.log().splitlines() if line.startswith("localhost ")
        ]
        assert "Create-Job" in operations
        assert "Send-Document" in operations
        assert "Print-Job" not in operations
        job_id = result.printer_job_id
        assert job_attribute(transport, job_id, "job-originating-user-name") == "alice"
        assert job_attribute(transport, job_id, "document-format-supplied") == "text/plain"
        assert transport.job_outcome("release-ipp-1") == "completed"
        assert transport.job_outcome("release-never-sent") == "absent"


def test_unknown_format_is_sent_for_auto_sensing(ippeveprinter):
    transport = client(ippeveprinter.uri)
    result = transport.deliver(
        PrintJob("release-auto", "bob", "application/x-unknown"), [b"%!PS\n"]
    )
    [kept] = ippeveprinter.documents()
    assert kept.read_bytes() == b"%!PS\n"
    format_told = job_attribute(transport, result.printer_job_id, "document-format-supplied")
    assert format_told == "application/octet-stream"


def test_a_job_still_printing_is_pending(tmp_path: Path):
    """Without -c each job takes ippeveprinter 5-15 s: long enough to see it pending. (A
    restarted station then waits; "failed" after a cancel is covered on the VirtualPrinter.)"""
    with IppEvePrinter(tmp_path, print_command=None) as printer:
        transport = client(printer.uri)
        errors: list[BaseException] = []

        def deliver() -> None:
            try:
                client(printer.uri).deliver(
                    PrintJob("release-slow", "carol", "text/plain"), [b"slow"]
                )
            except PrinterError as exc:
                errors.append(exc)

        worker = threading.Thread(target=deliver)
        worker.start()
        deadline = time.monotonic() + 5
        while transport.find_job("release-slow") is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert transport.job_outcome("release-slow") == "pending"
        printer.stop()  # the delivery in flight now fails instead of waiting 5-15 s
        worker.join(15)
        assert isinstance(errors[0], PrinterUnreachableError)
        assert not isinstance(errors[0], PrinterConnectError)  # the job existed: no fallback


def test_ipps_pinned_then_key_regenerated_refuses_delivery(ippeveprinter):
    pin = fetch_pin(ippeveprinter.ipps_uri)
    policy = PrinterPolicy(
        "ipps-then-ipp", ipps_uri=ippeveprinter.ipps_uri, pin=pin, ipp_uri=ippeveprinter.uri
    )
    transport = FallbackTransport(policy, timeout_s=10, poll_interval_s=0.05)
    transport.deliver(PrintJob("release-tls-1", "alice", "text/plain"), [b"first"])
    assert transport.last_uri == ippeveprinter.ipps_uri
    assert [p.read_bytes() for p in ippeveprinter.documents()] == [b"first"]
    transport.close()

    ippeveprinter.restart(new_key=True)  # the "printer certificate changed" case
    assert fetch_pin(ippeveprinter.ipps_uri) != pin
    transport = FallbackTransport(policy, timeout_s=10, poll_interval_s=0.05)
    with pytest.raises(PrinterPinMismatchError) as info:
        transport.deliver(PrintJob("release-tls-2", "alice", "text/plain"), [b"second"])
    assert info.value.reason == REASON
    assert printer_ready(ippeveprinter.ipps_uri, pin=pin) == (False, REASON)
    # Nothing reached the printer by any way: no new document, no job (asked over plain IPP).
    assert [p.read_bytes() for p in ippeveprinter.documents()] == [b"first"]
    assert client(ippeveprinter.uri).job_outcome("release-tls-2") == "absent"
