"""The VirtualPrinter as an IPP server: HTTP framing, request validation, operations."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from hardware.ipp.codec import Attribute, IppMessage, decode_message, encode_message
from hardware.ipp.enums import JobState, Operation, StatusCode, Tag
from hardware.printers.ipp import IppPrinterTransport
from hardware.printers.transport import PrintJob
from hardware.printers.virtual import VirtualPrinter


@pytest.fixture
def printer() -> Iterator[VirtualPrinter]:
    with VirtualPrinter(processing_s=0.3) as started:
        yield started


def http_url(printer: VirtualPrinter) -> str:
    return printer.uri.replace("ipp://", "http://", 1)


def request(printer: VirtualPrinter, operation: Operation, *attributes: Attribute) -> IppMessage:
    return IppMessage.request(
        operation, 1, Attribute.of("printer-uri", Tag.URI, printer.uri), *attributes
    )


def post(printer: VirtualPrinter, body: bytes) -> IppMessage:
    """POST with Content-Length (requests does so for a bytes body)."""
    response = requests.post(
        http_url(printer), data=body, headers={"Content-Type": "application/ipp"}, timeout=5
    )
    assert response.status_code == 200
    return decode_message(response.content)[0]


def test_uri_is_on_ipv4_loopback(printer):
    parts = urlsplit(printer.uri)
    assert (parts.scheme, parts.hostname, parts.path) == ("ipp", "127.0.0.1", "/ipp/print")


def test_get_printer_attributes_with_content_length_body(printer):
    answer = post(printer, encode_message(request(printer, Operation.GET_PRINTER_ATTRIBUTES)))
    assert answer.status_code is StatusCode.SUCCESSFUL_OK
    attrs = answer.group(Tag.PRINTER_ATTRIBUTES)
    assert attrs is not None
    assert attrs.get_int("printer-state") == 3
    assert attrs.get_strs("printer-state-reasons") == ["none"]
    assert "application/pdf" in attrs.get_strs("document-format-supported")
    assert attrs.get_str("printer-uri-supported") == printer.uri
    assert Operation.PRINT_JOB in attrs.get_ints("operations-supported")
    assert attrs.get_str("charset-supported") == "utf-8"
    assert attrs.get_bool("printer-is-accepting-jobs") is True


def test_requested_attributes_are_honoured(printer):
    only = Attribute.of("requested-attributes", Tag.KEYWORD, "printer-name")
    answer = post(printer, encode_message(request(printer, Operation.GET_PRINTER_ATTRIBUTES, only)))
    attrs = answer.group(Tag.PRINTER_ATTRIBUTES)
    assert attrs is not None
    assert [a.name for a in attrs.attributes] == ["printer-name"]


def test_chunked_body_over_one_keep_alive_connection(printer):
    parts = urlsplit(printer.uri)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    body = encode_message(
        request(
            printer,
            Operation.PRINT_JOB,
            Attribute.of("job-name", Tag.NAME_WITHOUT_LANGUAGE, "chunked"),
        )
    )
    for _ in range(2):  # the same connection serves both
        pieces = [body[:5], body[5:], b"doc", b"ument"]
        conn.request(
            "POST",
            "/ipp/print",
            body=iter(pieces),
            headers={"Content-Type": "application/ipp"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        assert response.status == 200
        assert decode_message(response.read())[0].is_success
    conn.close()
    documents = printer.wait_for_jobs(2, timeout_s=5)
    assert [d.data for d in documents] == [b"document", b"document"]
    assert documents[0].job_name == "chunked"


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda m: setattr(m, "request_id", 0), StatusCode.CLIENT_ERROR_BAD_REQUEST),
        (lambda m: setattr(m, "version", (0, 0)), StatusCode.SERVER_ERROR_VERSION_NOT_SUPPORTED),
        (lambda m: m.groups[0].attributes.pop(1), StatusCode.CLIENT_ERROR_BAD_REQUEST),
        (lambda m: m.groups[0].attributes.pop(2), StatusCode.CLIENT_ERROR_BAD_REQUEST),
        (
            lambda m: setattr(m, "operation_id_or_status_code", Operation.PURGE_JOBS),
            StatusCode.SERVER_ERROR_OPERATION_NOT_SUPPORTED,
        ),
    ],
)
def test_bad_requests_get_the_right_status(printer, mutate, status):
    message = request(printer, Operation.GET_JOBS)
    mutate(message)
    assert post(printer, encode_message(message)).status_code == status


def test_garbage_and_oversized_values_get_ipp_errors(printer):
    assert post(printer, b"\x02\x00").status_code == StatusCode.CLIENT_ERROR_BAD_REQUEST
    long_value = b"\x02\x00\x00\x0b\x00\x00\x00\x01\x01\x41\x00\x01t\x80\x00"
    assert post(printer, long_value).status_code == StatusCode.CLIENT_ERROR_BAD_REQUEST


def test_wrong_path_and_content_type_are_http_errors(printer):
    base = http_url(printer).rsplit("/ipp/print", 1)[0]
    assert requests.post(base + "/other", data=b"", timeout=5).status_code == 404
    wrong_type = requests.post(
        http_url(printer), data=b"x", headers={"Content-Type": "text/plain"}, timeout=5
    )
    assert wrong_type.status_code == 400
    assert requests.get(http_url(printer), timeout=5).status_code == 404


def test_job_walks_pending_processing_completed(printer):
    answer = post(printer, encode_message(request(printer, Operation.PRINT_JOB)) + b"%PDF")
    job_id = answer.get_int(Tag.JOB_ATTRIBUTES, "job-id")
    assert answer.get_int(Tag.JOB_ATTRIBUTES, "job-state") == JobState.PENDING
    seen = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        seen.append(printer.job_state(job_id))
        if seen[-1] == JobState.COMPLETED:
            break
        time.sleep(0.02)
    assert [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]] == [
        JobState.PENDING,
        JobState.PROCESSING,
        JobState.COMPLETED,
    ]


def test_get_jobs_filters_by_which_jobs(printer):
    client = IppPrinterTransport(printer.uri, poll_interval_s=0.02)
    client.deliver(PrintJob("done", "u"), [b"x"])
    post(printer, encode_message(request(printer, Operation.PRINT_JOB)) + b"y")

    def names(which: str) -> list[str]:
        which_jobs = Attribute.of("which-jobs", Tag.KEYWORD, which)
        answer = post(printer, encode_message(request(printer, Operation.GET_JOBS, which_jobs)))
        return [g.get_str("job-name") or "" for g in answer.groups_of(Tag.JOB_ATTRIBUTES)]

    assert names("completed") == ["done"]
    assert names("not-completed") == ["untitled"]
    assert names("all") == ["done", "untitled"]
    which_jobs = Attribute.of("which-jobs", Tag.KEYWORD, "fetchable")
    answer = post(printer, encode_message(request(printer, Operation.GET_JOBS, which_jobs)))
    assert answer.status_code == StatusCode.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED


def test_unknown_job_is_not_found(printer):
    job_id = Attribute.of("job-id", Tag.INTEGER, 99)
    answer = post(printer, encode_message(request(printer, Operation.GET_JOB_ATTRIBUTES, job_id)))
    assert answer.status_code == StatusCode.CLIENT_ERROR_NOT_FOUND


def test_validate_job_follows_faults(printer):
    body = encode_message(request(printer, Operation.VALIDATE_JOB))
    assert post(printer, body).is_success
    printer.set_fault("reject")
    assert post(printer, body).status_code == StatusCode.SERVER_ERROR_NOT_ACCEPTING_JOBS


def test_wait_for_jobs_times_out(printer):
    with pytest.raises(TimeoutError):
        printer.wait_for_jobs(1, timeout_s=0.05)


def test_stop_releases_a_hanging_request_quickly():
    printer = VirtualPrinter().start()
    printer.set_fault("stop-responding")
    client = IppPrinterTransport(printer.uri, timeout_s=30)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.printer_attributes()
        except Exception as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.2)
    started = time.monotonic()
    printer.stop()
    worker.join(5)
    assert time.monotonic() - started < 2
    assert errors
