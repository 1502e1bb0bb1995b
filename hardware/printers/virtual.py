"""A real IPP printer over HTTP/1.1 on 127.0.0.1, for tests and the demo: `VirtualPrinter`.

It speaks IPP with the same codec as the clients (RFC 8010 over HTTP, RFC 8011 operations), so the
real transport code runs against it. Jobs walk pending -> processing -> completed over
`processing_s`; `set_fault()` makes the next jobs fail the way real printers do. Everything it was
sent is kept in memory: it is a test double, not a spooler.

Invariants: all job and fault state is guarded by one condition variable; a document enters
`received` only when its job completed, and `aborted` when a fault aborted it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from hardware.ipp.codec import (
    Attribute,
    IppMessage,
    IppParseError,
    IppRequestError,
    IppTruncatedError,
    RangeOfInteger,
    decode_message,
    encode_message,
    validate_request,
)
from hardware.ipp.enums import JobState, Operation, PrinterState, StatusCode, Tag
from hardware.printers.virtual_http import IppHttpServer

logger = logging.getLogger(__name__)

FaultKind = Literal[
    "media-empty",
    "media-jam",
    "door-open",
    "toner-empty",
    "stop-responding",
    "stop-responding-mid-job",
    "reject",
    "busy",
]
_JOB_FAULTS = ("media-empty", "media-jam", "door-open", "toner-empty")

DOCUMENT_FORMATS = (
    "application/octet-stream",
    "application/pdf",
    "application/postscript",
    "image/jpeg",
    "image/pwg-raster",
    "image/urf",
    "text/plain",
)
OPERATIONS = (
    Operation.PRINT_JOB,
    Operation.VALIDATE_JOB,
    Operation.CANCEL_JOB,
    Operation.GET_JOB_ATTRIBUTES,
    Operation.GET_JOBS,
    Operation.GET_PRINTER_ATTRIBUTES,
)


@dataclass(frozen=True, slots=True)
class ReceivedDocument:
    """A document the virtual printer printed (or aborted)."""

    printer_job_id: int
    job_name: str
    user_name: str
    document_format: str
    data: bytes  # empty when the printer was made with keep_documents=False
    first_byte_at: float | None  # time.monotonic() when the first document byte arrived
    completed_at: float  # time.monotonic() when the job reached its terminal state
    copies: int = 1
    size: int = 0  # document bytes received, kept or not
    sha256: str = ""  # of the document bytes received, kept or not


@dataclass(slots=True)
class _Job:
    job_id: int
    name: str
    user: str
    document_format: str
    copies: int
    created_at: float
    fault: str | None
    data: bytes = b""
    first_byte_at: float | None = None
    size: int = 0
    sha256: str = ""
    state: JobState = JobState.PENDING
    reasons: list[str] = field(default_factory=lambda: ["none"])
    timer: threading.Timer | None = None


class _DocumentSink:
    """Collects a document as it streams in: its size and SHA-256 always, its bytes if asked."""

    def __init__(self, keep: bool) -> None:
        self._parts: list[bytes] | None = [] if keep else None
        self.size = 0
        self.sha256 = hashlib.sha256()

    def add(self, chunk: bytes) -> int:
        if self._parts is not None:
            self._parts.append(chunk)
        self.size += len(chunk)
        self.sha256.update(chunk)
        return len(chunk)

    def data(self) -> bytes:
        return b"".join(self._parts) if self._parts is not None else b""


class VirtualPrinter:
    """An IPP printer in a background thread, drivable (`set_fault`) and observable (`received`)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        processing_s: float = 0.05,
        name: str = "PullPrint Virtual Printer",
        keep_documents: bool = True,
    ) -> None:
        """Configure; call `start()` (or use `with`) to listen.

        With `keep_documents=False` only each document's size and SHA-256 are kept, so benchmarks
        can stream hundreds of megabytes through it in constant memory.
        """
        self.name = name
        self.keep_documents = keep_documents
        self.bytes_received = 0  # every document byte that arrived, printed or not
        self._address = (host, port)
        self._processing_s = processing_s
        self._cond = threading.Condition()
        self._jobs: dict[int, _Job] = {}
        self._received: list[ReceivedDocument] = []
        self._aborted: list[ReceivedDocument] = []
        self._fault: str | None = None
        self._fault_times: int | None = None
        self._printer_reasons: list[str] = []
        self._stopped = threading.Event()
        self._server: IppHttpServer | None = None
        self._thread: threading.Thread | None = None
        self._started_at = time.monotonic()
        self._uuid = uuid.uuid4()
        self.uri = ""

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> VirtualPrinter:
        """Listen and serve in a background thread; returns self."""
        server = IppHttpServer(self._address, self.handle)
        self._server = server
        host, port = server.server_address[:2]
        self.uri = f"ipp://{host!s}:{port}/ipp/print"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"virtual-printer-{port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("virtual printer %r listening at %s", self.name, self.uri)
        return self

    def stop(self) -> None:
        """Stop serving, release hanging requests and open connections, cancel job timers."""
        with self._cond:
            self._stopped.set()
            self._cond.notify_all()  # releases requests left hanging by "stop-responding"
            for job in self._jobs.values():
                if job.timer is not None:
                    job.timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> VirtualPrinter:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- driving and observing -----------------------------------------------------------------

    def set_fault(self, kind: FaultKind, *, times: int | None = None) -> None:
        """Make the printer misbehave until `clear_fault()` (or for the next `times` jobs).

        media-empty, media-jam, door-open, toner-empty: accept the job, then abort it, with
            printer-state stopped and the keyword in printer-state-reasons.
        stop-responding: read every request, never answer it (clients time out).
        stop-responding-mid-job: accept the next Print-Job, then stop answering anything.
        reject: answer Print-Job and Validate-Job with server-error-not-accepting-jobs.
        busy: answer Print-Job with server-error-busy.
        """
        with self._cond:
            self._fault, self._fault_times = kind, times

    def clear_fault(self) -> None:
        """Back to a healthy, idle printer."""
        with self._cond:
            self._fault, self._fault_times = None, None
            self._printer_reasons = []
            self._cond.notify_all()

    @property
    def received(self) -> list[ReceivedDocument]:
        """Documents of completed jobs, oldest first (a snapshot)."""
        with self._cond:
            return list(self._received)

    @property
    def aborted(self) -> list[ReceivedDocument]:
        """Documents of jobs a fault aborted, oldest first (a snapshot)."""
        with self._cond:
            return list(self._aborted)

    def wait_for_jobs(self, n: int, timeout_s: float = 5.0) -> list[ReceivedDocument]:
        """Wait until `n` jobs completed; raises TimeoutError otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._received) >= n, timeout_s):
                raise TimeoutError(f"{len(self._received)} of {n} jobs completed in {timeout_s} s")
            return list(self._received)

    def job_state(self, job_id: int) -> JobState | None:
        """The current state of a job, or None if unknown."""
        with self._cond:
            job = self._jobs.get(job_id)
            return None if job is None else self._state(job)

    # --- IPP ------------------------------------------------------------------------------------

    def handle(self, body: Iterator[bytes]) -> bytes | None:
        """Answer one HTTP request body with an IPP response body; None means do not answer."""
        buffer = bytearray()
        for chunk in body:
            buffer += chunk
            try:
                request, header_bytes = decode_message(buffer)
                break
            except IppTruncatedError:
                continue
            except IppParseError as exc:
                _drain(body)
                return _error(exc.status, 0, str(exc))
        else:
            return _error(StatusCode.CLIENT_ERROR_BAD_REQUEST, 0, "truncated IPP request")
        first_byte_at = time.monotonic() if len(buffer) > header_bytes else None
        with self._cond:
            hang = self._fault == "stop-responding"
        if hang:  # read it all, then say nothing until stop() or clear_fault()
            _drain(body)
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stopped.is_set() or self._fault != "stop-responding"
                )
            return None
        try:
            validate_request(request)
        except IppRequestError as exc:
            _drain(body)
            return _error(exc.status, request.request_id, str(exc))
        if request.operation == Operation.PRINT_JOB:
            sink = _DocumentSink(self.keep_documents)
            self._count(sink.add(bytes(buffer[header_bytes:])))
            for chunk in body:
                if chunk and first_byte_at is None:
                    first_byte_at = time.monotonic()
                self._count(sink.add(chunk))
            response = self._print_job(request, sink, first_byte_at)
        else:
            _drain(body)
            response = self._answer(request)
        response.version = request.version if request.version[0] in (1, 2) else (2, 0)
        return encode_message(response)

    def _answer(self, request: IppMessage) -> IppMessage:
        op = request.operation
        if op not in OPERATIONS:
            return _response(StatusCode.SERVER_ERROR_OPERATION_NOT_SUPPORTED, request)
        if request.get(Tag.OPERATION_ATTRIBUTES, "printer-uri") is None and (
            request.get(Tag.OPERATION_ATTRIBUTES, "job-uri") is None
        ):
            return _response(StatusCode.CLIENT_ERROR_BAD_REQUEST, request, "missing printer-uri")
        with self._cond:
            if op == Operation.VALIDATE_JOB:
                return self._validate(request) or _response(StatusCode.SUCCESSFUL_OK, request)
            if op == Operation.GET_PRINTER_ATTRIBUTES:
                response = _response(StatusCode.SUCCESSFUL_OK, request)
                wanted = set(request.get_strs(Tag.OPERATION_ATTRIBUTES, "requested-attributes"))
                attributes = self._printer_attributes()
                if wanted and not wanted & {"all", "printer-description", "job-template"}:
                    attributes = [a for a in attributes if a.name in wanted]
                response.add_group(Tag.PRINTER_ATTRIBUTES, *attributes)
                return response
            if op == Operation.GET_JOBS:
                return self._get_jobs(request)
            job = self._jobs.get(_job_id(request) or 0)
            if job is None:
                return _response(StatusCode.CLIENT_ERROR_NOT_FOUND, request, "no such job")
            if op == Operation.CANCEL_JOB:
                if self._state(job).is_terminal:
                    return _response(StatusCode.CLIENT_ERROR_NOT_POSSIBLE, request, "job ended")
                if job.timer is not None:
                    job.timer.cancel()
                job.state, job.reasons = JobState.CANCELED, ["job-canceled-by-user"]
                return _response(StatusCode.SUCCESSFUL_OK, request)
            response = _response(StatusCode.SUCCESSFUL_OK, request)
            response.add_group(Tag.JOB_ATTRIBUTES, *self._job_attributes(job))
            return response

    def _validate(self, request: IppMessage) -> IppMessage | None:
        """The error response a Print-Job or Validate-Job gets, or None if it is acceptable."""
        if self._fault == "reject":
            return _response(StatusCode.SERVER_ERROR_NOT_ACCEPTING_JOBS, request, "rejecting")
        fmt = request.get_str(Tag.OPERATION_ATTRIBUTES, "document-format")
        if fmt is not None and fmt not in DOCUMENT_FORMATS:
            return _response(
                StatusCode.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED, request, f"{fmt} unsupported"
            )
        return None

    def _count(self, n: int) -> None:
        with self._cond:
            self.bytes_received += n

    def _print_job(
        self, request: IppMessage, document: _DocumentSink, first_byte_at: float | None
    ) -> IppMessage:
        with self._cond:
            if request.get(Tag.OPERATION_ATTRIBUTES, "printer-uri") is None:
                return _response(StatusCode.CLIENT_ERROR_BAD_REQUEST, request, "no printer-uri")
            refusal = self._validate(request)
            if refusal is None and self._fault == "busy":
                refusal = _response(StatusCode.SERVER_ERROR_BUSY, request, "printing another job")
                self._use_fault()
            if refusal is not None:
                return refusal
            job_fault = self._fault if self._fault in _JOB_FAULTS else None
            if job_fault is not None:
                self._use_fault()
            if self._fault == "stop-responding-mid-job":
                self._fault, self._fault_times = "stop-responding", None
            ops = request.group(Tag.OPERATION_ATTRIBUTES)
            assert ops is not None  # validate_request checked it
            job_group = request.group(Tag.JOB_ATTRIBUTES)
            job = _Job(
                job_id=max(self._jobs, default=0) + 1,
                name=ops.get_str("job-name") or "untitled",
                user=ops.get_str("requesting-user-name") or "anonymous",
                document_format=ops.get_str("document-format") or DOCUMENT_FORMATS[0],
                copies=(job_group.get_int("copies") if job_group else None) or 1,
                created_at=time.monotonic(),
                fault=job_fault,
                data=document.data(),
                first_byte_at=first_byte_at,
                size=document.size,
                sha256=document.sha256.hexdigest(),
            )
            self._jobs[job.job_id] = job
            job.timer = threading.Timer(self._processing_s, self._finish, (job.job_id,))
            job.timer.daemon = True
            job.timer.start()
            response = _response(StatusCode.SUCCESSFUL_OK, request)
            response.add_group(Tag.JOB_ATTRIBUTES, *self._job_attributes(job))
            return response

    def _use_fault(self) -> None:
        if self._fault_times is not None:
            self._fault_times -= 1
            if self._fault_times <= 0:
                self._fault, self._fault_times = None, None

    def _finish(self, job_id: int) -> None:
        with self._cond:
            job = self._jobs[job_id]
            if job.state.is_terminal:
                return
            now = time.monotonic()
            record = ReceivedDocument(
                job.job_id,
                job.name,
                job.user,
                job.document_format,
                job.data,
                job.first_byte_at,
                now,
                job.copies,
                job.size,
                job.sha256,
            )
            if job.fault is not None:
                job.state, job.reasons = JobState.ABORTED, ["aborted-by-system"]
                self._printer_reasons = [f"{job.fault}-error"]
                self._aborted.append(record)
            else:
                job.state, job.reasons = JobState.COMPLETED, ["job-completed-successfully"]
                self._received.append(record)
            self._cond.notify_all()

    def _state(self, job: _Job) -> JobState:
        # Pending for the first third of processing_s, then processing (RFC 8011 §5.3.7).
        if job.state == JobState.PENDING and (
            time.monotonic() >= job.created_at + self._processing_s / 3
        ):
            return JobState.PROCESSING
        return job.state

    def _printer_state(self) -> PrinterState:
        if self._printer_reasons:
            return PrinterState.STOPPED
        busy = any(not self._state(j).is_terminal for j in self._jobs.values())
        return PrinterState.PROCESSING if busy else PrinterState.IDLE

    def _get_jobs(self, request: IppMessage) -> IppMessage:
        which = request.get_str(Tag.OPERATION_ATTRIBUTES, "which-jobs") or "not-completed"
        if which not in ("all", "completed", "not-completed"):
            return _response(
                StatusCode.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                request,
                f"which-jobs {which} unsupported",
            )
        response = _response(StatusCode.SUCCESSFUL_OK, request)
        for job in self._jobs.values():
            ended = self._state(job).is_terminal
            if which == "all" or ended == (which == "completed"):
                response.add_group(Tag.JOB_ATTRIBUTES, *self._job_attributes(job))
        return response

    def _job_attributes(self, job: _Job) -> list[Attribute]:
        state = self._state(job)
        attributes = [
            Attribute.of("job-id", Tag.INTEGER, job.job_id),
            Attribute.of("job-uri", Tag.URI, f"{self.uri}/{job.job_id}"),
            Attribute.of("job-printer-uri", Tag.URI, self.uri),
            Attribute.of("job-name", Tag.NAME_WITHOUT_LANGUAGE, job.name),
            Attribute.of("job-originating-user-name", Tag.NAME_WITHOUT_LANGUAGE, job.user),
            Attribute.of("job-state", Tag.ENUM, state),
            Attribute.of("job-state-reasons", Tag.KEYWORD, *job.reasons),
        ]
        if state == JobState.COMPLETED:
            # One impression per copy: the virtual printer does not count pages.
            attributes.append(Attribute.of("job-impressions-completed", Tag.INTEGER, job.copies))
        return attributes

    def _printer_attributes(self) -> list[Attribute]:
        """A basic RFC 8011 §5.4 / PWG 5100.14 set, enough for clients to choose how to print."""
        accepting = self._fault != "reject"
        queued = sum(not self._state(j).is_terminal for j in self._jobs.values())
        return [
            Attribute.of("printer-uri-supported", Tag.URI, self.uri),
            Attribute.of("uri-security-supported", Tag.KEYWORD, "none"),
            Attribute.of("uri-authentication-supported", Tag.KEYWORD, "none"),
            Attribute.of("printer-name", Tag.NAME_WITHOUT_LANGUAGE, self.name),
            Attribute.of("printer-make-and-model", Tag.TEXT_WITHOUT_LANGUAGE, self.name),
            Attribute.of("printer-uuid", Tag.URI, self._uuid.urn),
            Attribute.of("printer-state", Tag.ENUM, self._printer_state()),
            Attribute.of(
                "printer-state-reasons", Tag.KEYWORD, *(self._printer_reasons or ["none"])
            ),
            Attribute.of("printer-is-accepting-jobs", Tag.BOOLEAN, accepting),
            Attribute.of(
                "printer-up-time", Tag.INTEGER, int(time.monotonic() - self._started_at) + 1
            ),
            Attribute.of("queued-job-count", Tag.INTEGER, queued),
            Attribute.of("ipp-versions-supported", Tag.KEYWORD, "1.1", "2.0"),
            Attribute.of("operations-supported", Tag.ENUM, *OPERATIONS),
            Attribute.of("charset-configured", Tag.CHARSET, "utf-8"),
            Attribute.of("charset-supported", Tag.CHARSET, "utf-8"),
            Attribute.of("natural-language-configured", Tag.NATURAL_LANGUAGE, "en"),
            Attribute.of("generated-natural-language-supported", Tag.NATURAL_LANGUAGE, "en"),
            Attribute.of("document-format-default", Tag.MIME_MEDIA_TYPE, DOCUMENT_FORMATS[0]),
            Attribute.of("document-format-supported", Tag.MIME_MEDIA_TYPE, *DOCUMENT_FORMATS),
            Attribute.of("compression-supported", Tag.KEYWORD, "none"),
            Attribute.of("pdl-override-supported", Tag.KEYWORD, "not-attempted"),
            Attribute.of("copies-default", Tag.INTEGER, 1),
            Attribute.of("copies-supported", Tag.RANGE_OF_INTEGER, RangeOfInteger(1, 99)),
            Attribute.of("which-jobs-supported", Tag.KEYWORD, "completed", "not-completed", "all"),
        ]


def _job_id(request: IppMessage) -> int | None:
    job_id = request.get_int(Tag.OPERATION_ATTRIBUTES, "job-id")
    if job_id is not None:
        return job_id
    job_uri = request.get_str(Tag.OPERATION_ATTRIBUTES, "job-uri") or ""
    tail = job_uri.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _response(status: StatusCode, request: IppMessage, message: str | None = None) -> IppMessage:
    extra = [Attribute.of("status-message", Tag.TEXT_WITHOUT_LANGUAGE, message)] if message else []
    return IppMessage.response(status, request.request_id, *extra)


def _error(status: StatusCode, request_id: int, message: str) -> bytes:
    return encode_message(
        IppMessage.response(
            status,
            request_id,
            Attribute.of("status-message", Tag.TEXT_WITHOUT_LANGUAGE, message[:255]),
        )
    )


def _drain(body: Iterator[bytes]) -> None:
    for _ in body:
        pass
