"""A real IPP printer over HTTP/1.1 on 127.0.0.1, for tests and the demo: `VirtualPrinter`.

It speaks IPP with the same codec as the clients (RFC 8010 over HTTP, RFC 8011 operations), so the
real transport code runs against it: Print-Job, or Create-Job + Send-Document (+ Close-Job,
PWG 5100.7) for printers made with `create_job=True` (the default). With `tls=True` it serves
`ipps://` with a self-signed key made at start (`pin` is its key pin; `new_key()` replaces it,
as a printer reset or swap would). Jobs walk pending -> processing -> completed over
`processing_s` once their document is in; `set_fault()` makes the next jobs fail the way real
printers do, `set_printer_state_reasons()` puts the printer in a condition. Everything it was
sent is kept in memory: it is a test double, not a spooler.

Invariants: all job and fault state is guarded by one condition variable; a document enters
`received` only when its job completed, and `aborted` when a fault aborted it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
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
from hardware.printers.virtual_jobs import (
    DocumentSink,
    ReceivedDocument,
    VirtualJob,
    drain,
    error_response,
    job_id_of,
    reply,
)
from hardware.printers.virtual_tls import TlsIdentity, self_signed_identity

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
MULTI_DOCUMENT_OPERATIONS = (Operation.CREATE_JOB, Operation.SEND_DOCUMENT, Operation.CLOSE_JOB)
_DOCUMENT_OPERATIONS = (Operation.PRINT_JOB, Operation.SEND_DOCUMENT)
# printer-input-tray (PWG 5100.13 §6.5.3): prtInputTable rows as key=value; octet strings.
DEFAULT_INPUT_TRAYS = (
    "type=sheetFeedAutoRemovableTray;mediafeed=0;mediaxfeed=0;maxcapacity=250;level=150;"
    "status=0;name=Tray 1;",
    "type=sheetFeedAutoRemovableTray;mediafeed=0;mediaxfeed=0;maxcapacity=500;level=400;"
    "status=0;name=Tray 2;",
)


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
        create_job: bool = True,
        document_formats: tuple[str, ...] = DOCUMENT_FORMATS,
        tls: bool = False,
    ) -> None:
        """Configure; call `start()` (or use `with`) to listen.

        With `keep_documents=False` only each document's size and SHA-256 are kept, so benchmarks
        can stream hundreds of megabytes through it in constant memory. `create_job=False` makes
        a Print-Job-only printer; `document_formats` is its document-format-supported;
        `tls=True` serves ipps:// instead of ipp://.
        """
        self.name = name
        self.keep_documents = keep_documents
        self.operations = OPERATIONS + (MULTI_DOCUMENT_OPERATIONS if create_job else ())
        self.document_formats = document_formats
        self.input_trays = list(DEFAULT_INPUT_TRAYS)
        self._tls: TlsIdentity | None = self_signed_identity() if tls else None
        self.bytes_received = 0  # every document byte that arrived, printed or not
        self.operations_seen: list[Operation | int] = []  # every IPP request decoded, in order
        self._address = (host, port)
        self._processing_s = processing_s
        self._cond = threading.Condition()
        self._jobs: dict[int, VirtualJob] = {}
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
        server = IppHttpServer(
            self._address, self.handle, self._tls.context if self._tls is not None else None
        )
        self._server = server
        host, port = server.server_address[:2]
        scheme = "ipps" if self._tls is not None else "ipp"
        self.uri = f"{scheme}://{host!s}:{port}/ipp/print"
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

    @property
    def pin(self) -> str:
        """The key pin of the ipps:// certificate (what an admin records at pairing)."""
        if self._tls is None:
            raise ValueError("this virtual printer serves ipp:// only (tls=False)")
        return self._tls.pin

    def new_key(self) -> str:
        """Present a new key from now on (a reset or swapped printer); returns its pin."""
        if self._tls is None:
            raise ValueError("this virtual printer serves ipp:// only (tls=False)")
        self._tls = self_signed_identity()
        if self._server is not None:
            self._server.ssl_context = self._tls.context
        return self._tls.pin

    @property
    def requests_started(self) -> int:
        """HTTP requests whose request line arrived (0: a client sent nothing at all)."""
        return self._server.requests_started if self._server is not None else 0

    def set_printer_state_reasons(self, *reasons: str) -> None:
        """Report `reasons` (e.g. "media-empty-error") as printer-state-reasons until cleared."""
        with self._cond:
            self._printer_reasons = list(reasons)

    def set_fault(self, kind: FaultKind, *, times: int | None = None) -> None:
        """Make the printer misbehave until `clear_fault()` (or for the next `times` jobs).

        media-empty, media-jam, door-open, toner-empty: accept the job, then abort it, with
            printer-state stopped and the keyword in printer-state-reasons.
        stop-responding: read every request, never answer it (clients time out).
        stop-responding-mid-job: accept the next document (Print-Job or Send-Document), then
            stop answering anything.
        reject: answer Print-Job, Create-Job and Validate-Job with
            server-error-not-accepting-jobs (and printer-is-accepting-jobs false).
        busy: answer Print-Job and Create-Job with server-error-busy.
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
                drain(body)
                return error_response(exc.status, 0, str(exc))
        else:
            return error_response(StatusCode.CLIENT_ERROR_BAD_REQUEST, 0, "truncated IPP request")
        first_byte_at = time.monotonic() if len(buffer) > header_bytes else None
        with self._cond:
            self.operations_seen.append(request.operation)
            hang = self._fault == "stop-responding"
        if hang:  # read it all, then say nothing until stop() or clear_fault()
            drain(body)
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stopped.is_set() or self._fault != "stop-responding"
                )
            return None
        try:
            validate_request(request)
        except IppRequestError as exc:
            drain(body)
            return error_response(exc.status, request.request_id, str(exc))
        if request.operation in _DOCUMENT_OPERATIONS and request.operation in self.operations:
            sink = self._sink_for(request)
            self._count(sink.add(bytes(buffer[header_bytes:])))
            for chunk in body:
                if chunk and first_byte_at is None:
                    first_byte_at = time.monotonic()
                self._count(sink.add(chunk))
            response = self._document_request(request, sink, first_byte_at)
        else:
            drain(body)
            response = self._answer(request)
        response.version = request.version if request.version[0] in (1, 2) else (2, 0)
        return encode_message(response)

    def _answer(self, request: IppMessage) -> IppMessage:
        op = request.operation
        if op not in self.operations:
            return reply(StatusCode.SERVER_ERROR_OPERATION_NOT_SUPPORTED, request)
        if request.get(Tag.OPERATION_ATTRIBUTES, "printer-uri") is None and (
            request.get(Tag.OPERATION_ATTRIBUTES, "job-uri") is None
        ):
            return reply(StatusCode.CLIENT_ERROR_BAD_REQUEST, request, "missing printer-uri")
        with self._cond:
            if op == Operation.VALIDATE_JOB:
                return self._validate(request) or reply(StatusCode.SUCCESSFUL_OK, request)
            if op == Operation.CREATE_JOB:
                return self._create_job(request)
            if op == Operation.GET_PRINTER_ATTRIBUTES:
                response = reply(StatusCode.SUCCESSFUL_OK, request)
                wanted = set(request.get_strs(Tag.OPERATION_ATTRIBUTES, "requested-attributes"))
                attributes = self._printer_attributes()
                if wanted and not wanted & {"all", "printer-description", "job-template"}:
                    attributes = [a for a in attributes if a.name in wanted]
                response.add_group(Tag.PRINTER_ATTRIBUTES, *attributes)
                return response
            if op == Operation.GET_JOBS:
                return self._get_jobs(request)
            job = self._jobs.get(job_id_of(request) or 0)
            if job is None:
                return reply(StatusCode.CLIENT_ERROR_NOT_FOUND, request, "no such job")
            if op == Operation.CANCEL_JOB:
                if self._state(job).is_terminal:
                    return reply(StatusCode.CLIENT_ERROR_NOT_POSSIBLE, request, "job ended")
                if job.timer is not None:
                    job.timer.cancel()
                job.state, job.reasons = JobState.CANCELED, ["job-canceled-by-user"]
                self._cond.notify_all()
                return reply(StatusCode.SUCCESSFUL_OK, request)
            if op == Operation.CLOSE_JOB:  # PWG 5100.7 §6.1: no more documents will come
                if job.started_at is None and not job.state.is_terminal:
                    self._start(job)
                return reply(StatusCode.SUCCESSFUL_OK, request)
            response = reply(StatusCode.SUCCESSFUL_OK, request)
            response.add_group(Tag.JOB_ATTRIBUTES, *self._job_attributes(job))
            return response

    def _validate(self, request: IppMessage) -> IppMessage | None:
        """The error response a job-creating request gets, or None if it is acceptable."""
        if self._fault == "reject":
            return reply(StatusCode.SERVER_ERROR_NOT_ACCEPTING_JOBS, request, "rejecting")
        fmt = request.get_str(Tag.OPERATION_ATTRIBUTES, "document-format")
        if fmt is not None and fmt not in self.document_formats:
            return reply(
                StatusCode.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED, request, f"{fmt} unsupported"
            )
        return None

    def _sink_for(self, request: IppMessage) -> DocumentSink:
        """Where a document goes: the job's own sink when more of its documents came before."""
        with self._cond:
            if request.operation == Operation.SEND_DOCUMENT:
                job = self._jobs.get(job_id_of(request) or 0)
                if job is not None and job.sink is not None and job.started_at is None:
                    return job.sink
        return DocumentSink(self.keep_documents)

    def _count(self, n: int) -> None:
        with self._cond:
            self.bytes_received += n

    def _document_request(
        self, request: IppMessage, document: DocumentSink, first_byte_at: float | None
    ) -> IppMessage:
        """Print-Job (RFC 8011 §4.2.1) or Send-Document (§4.3.1), the document already read."""
        with self._cond:
            if request.get(Tag.OPERATION_ATTRIBUTES, "printer-uri") is None:
                return reply(StatusCode.CLIENT_ERROR_BAD_REQUEST, request, "no printer-uri")
            if request.operation == Operation.PRINT_JOB:
                response = self._create_job(request)
                job = self._jobs.get(response.get_int(Tag.JOB_ATTRIBUTES, "job-id") or 0)
                if job is None:
                    return response  # refused
                last = True
            else:
                job = self._jobs.get(job_id_of(request) or 0)
                if job is None:
                    return reply(StatusCode.CLIENT_ERROR_NOT_FOUND, request, "no such job")
                if job.started_at is not None or job.state.is_terminal:
                    return reply(
                        StatusCode.CLIENT_ERROR_NOT_POSSIBLE, request, "job takes no more documents"
                    )
                refusal = self._validate(request)
                if refusal is not None:
                    return refusal
                fmt = request.get_str(Tag.OPERATION_ATTRIBUTES, "document-format")
                job.document_format = fmt or job.document_format
                ops = request.group(Tag.OPERATION_ATTRIBUTES)
                last = ops is not None and ops.get_bool("last-document") is True
                response = reply(StatusCode.SUCCESSFUL_OK, request)
            job.sink = document
            if job.first_byte_at is None:
                job.first_byte_at = first_byte_at
            if self._fault == "stop-responding-mid-job":
                self._fault, self._fault_times = "stop-responding", None
            if last:
                self._start(job)
            if request.operation == Operation.SEND_DOCUMENT:
                response.add_group(Tag.JOB_ATTRIBUTES, *self._job_attributes(job))
            return response

    def _create_job(self, request: IppMessage) -> IppMessage:
        """A new job, waiting for its document (Create-Job, RFC 8011 §4.2.4), or a refusal."""
        refusal = self._validate(request)
        if refusal is None and self._fault == "busy":
            refusal = reply(StatusCode.SERVER_ERROR_BUSY, request, "printing another job")
            self._use_fault()
        if refusal is not None:
            return refusal
        job_fault = self._fault if self._fault in _JOB_FAULTS else None
        if job_fault is not None:
            self._use_fault()
        ops = request.group(Tag.OPERATION_ATTRIBUTES)
        assert ops is not None  # validate_request checked it
        job_group = request.group(Tag.JOB_ATTRIBUTES)
        job = VirtualJob(
            job_id=max(self._jobs, default=0) + 1,
            name=ops.get_str("job-name") or "untitled",
            user=ops.get_str("requesting-user-name") or "anonymous",
            document_format=ops.get_str("document-format") or DOCUMENT_FORMATS[0],
            copies=(job_group.get_int("copies") if job_group else None) or 1,
            created_at=time.monotonic(),
            fault=job_fault,
        )
        job.reasons = ["job-incoming"]  # RFC 8011 §5.3.8: waiting for its documents
        self._jobs[job.job_id] = job
        response = reply(StatusCode.SUCCESSFUL_OK, request)
        response.add_group(Tag.JOB_ATTRIBUTES, *self._job_attributes(job))
        return response

    def _start(self, job: VirtualJob) -> None:
        """The document is in: process it for processing_s, then complete or abort."""
        sink = job.sink or DocumentSink(self.keep_documents)
        job.data, job.size, job.sha256 = sink.data(), sink.size, sink.sha256.hexdigest()
        job.sink = None
        job.started_at = time.monotonic()
        job.reasons = ["none"]
        job.timer = threading.Timer(self._processing_s, self._finish, (job.job_id,))
        job.timer.daemon = True
        job.timer.start()

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

    def _state(self, job: VirtualJob) -> JobState:
        # Pending until the document is in and for the first third of processing_s after, then
        # processing (RFC 8011 §5.3.7).
        if (
            job.state == JobState.PENDING
            and job.started_at is not None
            and time.monotonic() >= job.started_at + self._processing_s / 3
        ):
            return JobState.PROCESSING
        return job.state

    def _printer_state(self) -> PrinterState:
        # -warning and -report reasons do not stop a printer (RFC 8011 §5.4.12).
        if any(not r.endswith(("-warning", "-report")) for r in self._printer_reasons):
            return PrinterState.STOPPED
        busy = any(not self._state(j).is_terminal for j in self._jobs.values())
        return PrinterState.PROCESSING if busy else PrinterState.IDLE

    def _get_jobs(self, request: IppMessage) -> IppMessage:
        which = request.get_str(Tag.OPERATION_ATTRIBUTES, "which-jobs") or "not-completed"
        if which not in ("all", "completed", "not-completed"):
            return reply(
                StatusCode.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                request,
                f"which-jobs {which} unsupported",
            )
        response = reply(StatusCode.SUCCESSFUL_OK, request)
        for job in self._jobs.values():
            ended = self._state(job).is_terminal
            if which == "all" or ended == (which == "completed"):
                response.add_group(Tag.JOB_ATTRIBUTES, *self._job_attributes(job))
        return response

    def _job_attributes(self, job: VirtualJob) -> list[Attribute]:
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
            Attribute.of("uri-security-supported", Tag.KEYWORD, "tls" if self._tls else "none"),
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
            Attribute.of("operations-supported", Tag.ENUM, *self.operations),
            Attribute.of("charset-configured", Tag.CHARSET, "utf-8"),
            Attribute.of("charset-supported", Tag.CHARSET, "utf-8"),
            Attribute.of("natural-language-configured", Tag.NATURAL_LANGUAGE, "en"),
            Attribute.of("generated-natural-language-supported", Tag.NATURAL_LANGUAGE, "en"),
            Attribute.of("document-format-default", Tag.MIME_MEDIA_TYPE, self.document_formats[0]),
            Attribute.of("document-format-supported", Tag.MIME_MEDIA_TYPE, *self.document_formats),
            Attribute.of(
                "printer-input-tray", Tag.OCTET_STRING, *(t.encode() for t in self.input_trays)
            ),
            Attribute.of("compression-supported", Tag.KEYWORD, "none"),
            Attribute.of("pdl-override-supported", Tag.KEYWORD, "not-attempted"),
            Attribute.of("copies-default", Tag.INTEGER, 1),
            Attribute.of("copies-supported", Tag.RANGE_OF_INTEGER, RangeOfInteger(1, 99)),
            Attribute.of("which-jobs-supported", Tag.KEYWORD, "completed", "not-completed", "all"),
        ]
