"""IPP delivery against the VirtualPrinter: Create-Job, readiness in words, reconciliation."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from hardware.errors import JobFailedError, PrinterError
from hardware.ipp.codec import Attribute, AttributeGroup
from hardware.ipp.enums import Operation, StatusCode, Tag
from hardware.printers.errors import PrinterNotReadyError
from hardware.printers.ipp import IppPrinterTransport, printer_ready
from hardware.printers.transport import PrintJob
from hardware.printers.virtual import VirtualPrinter
from hardware.printers.words import empty_trays, printer_problem

JOB = PrintJob("release-5e1d", "alice", "application/pdf")
EMPTY_TRAY_2 = (
    "type=sheetFeedAutoRemovableTray;mediafeed=0;mediaxfeed=0;maxcapacity=500;level=0;"
    "status=19;name=Tray 2;"
)


@pytest.fixture
def printer() -> Iterator[VirtualPrinter]:
    with VirtualPrinter(processing_s=0.03) as started:
        yield started


def client(printer: VirtualPrinter, **kwargs) -> IppPrinterTransport:
    options = {"timeout_s": 2.0, "poll_interval_s": 0.02, "busy_backoff_s": 0.01} | kwargs
    return IppPrinterTransport(printer.uri, **options)


def test_create_job_then_send_document_carry_the_release(printer):
    client(printer).deliver(JOB, [b"%PDF-1.7 ", b"body"])
    jobs = [op for op in printer.operations_seen if op != Operation.GET_JOB_ATTRIBUTES]
    assert jobs == [Operation.GET_PRINTER_ATTRIBUTES, Operation.CREATE_JOB, Operation.SEND_DOCUMENT]
    [received] = printer.received
    assert (received.job_name, received.user_name) == ("release-5e1d", "alice")
    assert received.document_format == "application/pdf"
    assert received.data == b"%PDF-1.7 body"


def test_print_job_when_the_printer_has_no_create_job():
    with VirtualPrinter(processing_s=0.02, create_job=False) as old:
        client(old).deliver(JOB, [b"doc"])
        assert Operation.CREATE_JOB not in old.operations_seen
        assert Operation.PRINT_JOB in old.operations_seen
        assert old.received[0].job_name == "release-5e1d"


def test_a_failed_send_document_cancels_the_created_job(printer):
    def broken() -> Iterator[bytes]:
        yield b"part"
        raise OSError("cloud stream dropped")

    with pytest.raises(OSError, match="cloud stream dropped"):
        client(printer).deliver(JOB, broken())
    assert client(printer).job_outcome("release-5e1d") == "failed"  # canceled, not waiting


def test_document_streams_in_constant_memory():
    """40 MB through the transport while tracemalloc watches: peak stays in the low megabytes."""
    chunk = b"\xab" * 65536

    def forty_megabytes() -> Iterator[bytes]:
        for _ in range(640):
            yield chunk

    with VirtualPrinter(processing_s=0.01, keep_documents=False) as printer:
        tracemalloc.start()
        try:
            result = client(printer, timeout_s=10.0).deliver(JOB, forty_megabytes())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.bytes_sent == 640 * 65536
        assert printer.received[0].size == 640 * 65536
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize(
    ("reasons", "trays", "words"),
    [
        (("media-empty-error",), (EMPTY_TRAY_2,), "Out of paper in tray 2"),
        (("media-empty-error",), (), "Out of paper"),
        (("media-needed",), (EMPTY_TRAY_2,), "Out of paper in tray 2"),
        (("door-open-error",), (), "Door open"),
        (("toner-empty-error",), (), "Toner empty"),
        (("media-jam-error",), (), "Paper jam"),
        (("offline-report", "offline"), (), "Printer offline"),
    ],
)
def test_a_printer_in_error_is_refused_with_words(printer, reasons, trays, words):
    printer.set_printer_state_reasons(*reasons)
    if trays:
        printer.input_trays = list(trays)
    with pytest.raises(PrinterNotReadyError) as info:
        client(printer).check_ready()
    assert info.value.reason == words
    assert printer_ready(printer.uri) == (False, words)
    with pytest.raises(PrinterNotReadyError, match=words):
        client(printer).deliver(JOB, [b"doc"])
    assert printer.bytes_received == 0
    assert Operation.CREATE_JOB not in printer.operations_seen


def test_warnings_do_not_stop_a_release(printer):
    printer.set_printer_state_reasons("toner-low-warning", "media-low-report")
    client(printer).check_ready()
    assert printer_ready(printer.uri) == (True, None)


def test_a_printer_not_accepting_jobs_is_not_ready(printer):
    printer.set_fault("reject")
    with pytest.raises(PrinterNotReadyError) as info:
        client(printer).check_ready()
    assert info.value.reason == "Printer is not accepting jobs"
    assert info.value.status_code == StatusCode.SERVER_ERROR_NOT_ACCEPTING_JOBS


def test_an_unreachable_printer_is_not_ready():
    with VirtualPrinter() as gone:
        uri = gone.uri
    assert printer_ready(uri, timeout_s=1) == (False, "Printer not reachable")


def test_job_outcome_reconciles_every_state():
    with VirtualPrinter(processing_s=0.6) as printer:
        transport = client(printer)
        assert transport.job_outcome("release-never-sent") == "absent"
        worker = threading.Thread(target=transport.deliver, args=(JOB, [b"doc"]))
        worker.start()
        deadline = time.monotonic() + 2
        while transport.find_job(JOB.job_name) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client(printer).job_outcome(JOB.job_name) == "pending"
        worker.join(5)
        assert client(printer).job_outcome(JOB.job_name) == "completed"

        printer.set_fault("media-jam", times=1)
        with pytest.raises(JobFailedError):
            client(printer).deliver(PrintJob("release-jammed", "bob"), [b"doc"])
        assert client(printer).job_outcome("release-jammed") == "failed"


def test_job_outcome_of_an_unreachable_printer_raises():
    with VirtualPrinter() as gone:
        uri = gone.uri
    with pytest.raises(PrinterError, match="not reachable"):
        IppPrinterTransport(uri, timeout_s=1).job_outcome("release-x")


def test_tray_names_are_read_from_printer_input_tray():
    group = AttributeGroup(Tag.PRINTER_ATTRIBUTES)
    group.attributes.append(
        Attribute.of(
            "printer-input-tray",
            Tag.OCTET_STRING,
            b"type=sheetFeedManual;level=0;name=Bypass;",
            b"type=sheetFeedAutoRemovableTray;level=0;name=tray-3;",
            b"type=sheetFeedAutoRemovableTray;level=-3;name=Tray 1;",
        )
    )
    assert empty_trays(group) == ["tray 3"]
    group.attributes.append(Attribute.of("printer-state-reasons", Tag.KEYWORD, "media-empty"))
    assert printer_problem(group) == "Out of paper in tray 3"


def test_stopped_printer_without_known_reason_is_not_ready():
    group = AttributeGroup(Tag.PRINTER_ATTRIBUTES)
    group.attributes.append(Attribute.of("printer-state", Tag.ENUM, 5))
    group.attributes.append(Attribute.of("printer-state-reasons", Tag.KEYWORD, "other"))
    assert printer_problem(group) == "Printer stopped"
