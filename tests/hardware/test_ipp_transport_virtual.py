"""IppPrinterTransport against the VirtualPrinter: delivery, proof, faults and their words."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from hardware.errors import (
    JobFailedError,
    PrinterError,
    PrinterRejectedError,
    PrinterUnreachableError,
)
from hardware.ipp.enums import JobState, StatusCode
from hardware.printers.ipp import IppPrinterTransport, reason_in_words
from hardware.printers.transport import PrintJob
from hardware.printers.virtual import VirtualPrinter

JOB = PrintJob(job_name="release-0b7f", user_name="alice", document_format="application/pdf")


@pytest.fixture
def printer() -> Iterator[VirtualPrinter]:
    with VirtualPrinter(processing_s=0.05) as started:
        yield started


def transport(printer: VirtualPrinter, **kwargs) -> IppPrinterTransport:
    options = {"timeout_s": 2.0, "poll_interval_s": 0.02, "busy_backoff_s": 0.01} | kwargs
    return IppPrinterTransport(printer.uri, **options)


def chunks(data: bytes, size: int = 65536) -> Iterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at : at + size]


def test_delivers_byte_identical_document_and_returns_proof(printer):
    document = os.urandom(300_000)
    progress: list[int] = []
    client = transport(printer)
    result = client.deliver(JOB, chunks(document), on_progress=progress.append)
    client.close()

    [received] = printer.received
    assert received.data == document
    assert received.job_name == "release-0b7f"  # the release id, for reconciliation
    assert received.user_name == "alice"
    assert received.document_format == "application/pdf"
    assert result.printer_job_id == received.printer_job_id
    assert result.bytes_sent == len(document)
    assert result.impressions == 1
    assert progress == sorted(progress)
    assert progress[-1] == len(document)
    assert printer.job_state(received.printer_job_id) == JobState.COMPLETED


def test_document_is_streamed_not_buffered(printer):
    """The printer has the first byte before the source has produced the last one."""
    last_chunk_made_at: list[float] = []

    def slow_source() -> Iterator[bytes]:
        for _ in range(5):
            yield b"x" * 1000
            time.sleep(0.05)
        last_chunk_made_at.append(time.monotonic())

    transport(printer).deliver(JOB, slow_source())
    [received] = printer.received
    assert received.first_byte_at is not None
    assert received.first_byte_at < last_chunk_made_at[0] - 0.1


def test_copies_are_sent_as_a_job_template_attribute(printer):
    result = transport(printer).deliver(
        PrintJob("release-2", "bob", "text/plain", copies=3), [b"hello"]
    )
    assert printer.received[0].copies == 3
    assert result.impressions == 3


def test_empty_chunks_do_not_end_the_body_early(printer):
    transport(printer).deliver(JOB, [b"a", b"", b"b", b"", b"c"])
    assert printer.received[0].data == b"abc"


def test_find_job_finds_the_release_and_not_others(printer):
    client = transport(printer)
    first = client.deliver(JOB, [b"one"])
    client.deliver(PrintJob("release-other", "bob"), [b"two"])
    assert client.find_job("release-0b7f") == first.printer_job_id
    assert client.find_job("release-never-sent") is None


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("media-empty", "Out of paper"),
        ("media-jam", "Paper jam"),
        ("door-open", "Door open"),
        ("toner-empty", "Toner empty"),
    ],
)
def test_job_aborted_by_a_fault_fails_with_words(printer, fault, words):
    printer.set_fault(fault)
    with pytest.raises(JobFailedError) as info:
        transport(printer).deliver(JOB, [b"doc"])
    assert info.value.reason == words
    assert info.value.printer_job_id == printer.aborted[0].printer_job_id
    assert printer.received == []
    assert printer.aborted[0].data == b"doc"


def test_printer_recovers_after_clear_fault(printer):
    printer.set_fault("media-empty")
    client = transport(printer)
    with pytest.raises(JobFailedError):
        client.deliver(JOB, [b"doc"])
    assert client.printer_attributes("printer-state").get_int("printer-state") == 5  # stopped
    printer.clear_fault()
    client.deliver(JOB, [b"doc"])
    assert len(printer.received) == 1


def test_rejected_job_carries_status_and_words(printer):
    printer.set_fault("reject")
    with pytest.raises(PrinterRejectedError) as info:
        transport(printer).deliver(JOB, [b"doc"])
    assert info.value.status_code == StatusCode.SERVER_ERROR_NOT_ACCEPTING_JOBS
    assert info.value.reason == "Printer is not accepting jobs"
    assert printer.received == printer.aborted == []


def test_unknown_format_goes_as_octet_stream_to_an_auto_sensing_printer(printer):
    transport(printer).deliver(PrintJob("r", "u", "application/x-nonsense"), [b"doc"])
    assert printer.received[0].document_format == "application/octet-stream"


def test_unsupported_format_is_refused_before_a_byte_is_sent():
    with VirtualPrinter(document_formats=("application/pdf",)) as strict:
        with pytest.raises(PrinterRejectedError) as info:
            transport(strict).deliver(PrintJob("r", "u", "text/plain"), [b"doc"])
        assert info.value.reason == "Printer does not accept this document format"
        assert info.value.status_code == StatusCode.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED
        assert strict.bytes_received == 0


def test_printer_that_stops_responding_is_unreachable(printer):
    printer.set_fault("stop-responding")
    started = time.monotonic()
    with pytest.raises(PrinterUnreachableError) as info:
        transport(printer, timeout_s=0.3).deliver(JOB, [b"doc"])
    assert info.value.reason == "Printer not reachable"
    assert isinstance(info.value, ConnectionError)
    assert time.monotonic() - started < 3


def test_printer_that_goes_silent_mid_job_is_unreachable(printer):
    printer.set_fault("stop-responding-mid-job")
    with pytest.raises(PrinterUnreachableError):
        transport(printer, timeout_s=0.3).deliver(JOB, [b"doc"])


def test_connection_refused_is_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        client = IppPrinterTransport(f"ipp://127.0.0.1:{port}/ipp/print", timeout_s=1)
        with pytest.raises(PrinterUnreachableError):
            client.deliver(JOB, [b"doc"])
        with pytest.raises(PrinterUnreachableError):
            client.find_job("x")


def test_busy_printer_is_retried_when_the_document_can_be_replayed(printer):
    printer.set_fault("busy", times=2)
    result = transport(printer).deliver(JOB, [b"replayable ", b"document"])
    [received] = printer.received
    assert received.data == b"replayable document"
    assert result.printer_job_id == received.printer_job_id


def test_busy_printer_is_waited_out_before_a_one_shot_stream_is_sent(printer):
    """With Create-Job the document goes out only after the printer took the job."""
    printer.set_fault("busy", times=2)
    transport(printer).deliver(JOB, iter([b"one-shot"]))
    assert printer.received[0].data == b"one-shot"


def test_print_job_only_printer_with_one_shot_stream_is_rejected_as_busy():
    with VirtualPrinter(create_job=False) as old:
        old.set_fault("busy", times=1)
        with pytest.raises(PrinterRejectedError) as info:
            transport(old).deliver(JOB, iter([b"one-shot"]))
        assert info.value.status_code == StatusCode.SERVER_ERROR_BUSY
        assert info.value.reason == "Printer is busy"
        assert old.received == []


def test_print_job_only_printer_is_retried_when_the_document_can_be_replayed():
    with VirtualPrinter(create_job=False) as old:
        old.set_fault("busy", times=2)
        transport(old).deliver(JOB, [b"replayable ", b"document"])
        assert old.received[0].data == b"replayable document"


def test_busy_printer_gives_up_after_the_retries(printer):
    printer.set_fault("busy")
    with pytest.raises(PrinterRejectedError) as info:
        transport(printer, busy_retries=2).deliver(JOB, [b"doc"])
    assert info.value.status_code == StatusCode.SERVER_ERROR_BUSY


def test_job_canceled_at_the_printer_fails():
    slow = VirtualPrinter(processing_s=2.0).start()
    try:
        errors: list[BaseException] = []

        def deliver() -> None:
            try:
                transport(slow).deliver(JOB, [b"doc"])
            except PrinterError as exc:
                errors.append(exc)

        worker = threading.Thread(target=deliver)
        worker.start()
        deadline = time.monotonic() + 2
        while slow.job_state(1) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        transport(slow).cancel_job(1)
        transport(slow).cancel_job(1)  # already canceled: not an error
        worker.join(5)
        assert isinstance(errors[0], JobFailedError)
        assert errors[0].reason == "Job canceled at the printer"
    finally:
        slow.stop()


def test_errors_of_the_document_source_are_not_blamed_on_the_printer(printer):
    def broken() -> Iterator[bytes]:
        yield b"first"
        raise OSError("cloud stream dropped")

    with pytest.raises(OSError, match="cloud stream dropped") as info:
        transport(printer).deliver(JOB, broken())
    assert not isinstance(info.value, PrinterError)


def test_errors_of_on_progress_propagate_unchanged(printer):
    def stop(_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        transport(printer).deliver(JOB, [b"doc"], on_progress=stop)


def test_non_ipp_uri_is_refused():
    with pytest.raises(ValueError, match="ipp://"):
        IppPrinterTransport("http://127.0.0.1/ipp/print")


@pytest.mark.parametrize(
    ("job_reasons", "printer_reasons", "words"),
    [
        (["media-empty"], [], "Out of paper"),
        (["aborted-by-system"], ["media-empty-error"], "Out of paper"),
        (["aborted-by-system"], ["toner-low-warning", "media-jam"], "Paper jam"),
        ([], ["marker-supply-empty-error"], "Toner empty"),
        ([], ["cover-open"], "Door open"),
        ([], ["media-empty-report"], None),
        (["aborted-by-system"], ["none"], None),
    ],
)
def test_reasons_in_words(job_reasons, printer_reasons, words):
    assert reason_in_words(job_reasons, printer_reasons) == words
