"""Deliver a document to an IPP printer (`ipp://`, `ipps://`) and wait until it says "completed".

The conversation (RFC 8011 §4.2.1, §4.3.4): one Print-Job carrying the document, streamed as a
chunked HTTP body in constant memory, then Get-Job-Attributes until the job reaches a terminal
`job-state`. Only `completed` returns; every other outcome raises a `PrinterError` whose `reason` a
user can read on the station's screen.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urlsplit, urlunsplit

import requests

from hardware.errors import (
    JobFailedError,
    PrinterError,
    PrinterRejectedError,
    PrinterUnreachableError,
)
from hardware.ipp.codec import (
    Attribute,
    AttributeGroup,
    IppMessage,
    IppParseError,
    decode_message,
    encode_message,
)
from hardware.ipp.enums import JobState, Operation, StatusCode, Tag
from hardware.printers.transport import DeliveryResult, PrintJob

_FIRST_POLL_S = 0.02
logger = logging.getLogger(__name__)

UNREACHABLE = "Printer not reachable"

# Printer and job state reasons (RFC 8011 §5.3.8, §5.4.12; PWG 5100.9) in the words a user sees.
REASON_WORDS = {
    "media-empty": "Out of paper",
    "media-needed": "Out of paper",
    "media-jam": "Paper jam",
    "door-open": "Door open",
    "cover-open": "Door open",
    "interlock-open": "Door open",
    "toner-empty": "Toner empty",
    "marker-supply-empty": "Toner empty",
    "input-tray-missing": "Paper tray missing",
    "output-area-full": "Output tray full",
    "offline": "Printer offline",
    "shutdown": "Printer offline",
    "document-format-error": "Printer could not read the document",
    "unsupported-document-format": "Printer does not accept this document format",
    "job-canceled-by-user": "Job canceled at the printer",
    "job-canceled-by-operator": "Job canceled at the printer",
    "job-canceled-at-device": "Job canceled at the printer",
}

# Status codes (RFC 8011 §B) that refuse a job, in words.
STATUS_WORDS: dict[int, str] = {
    StatusCode.CLIENT_ERROR_FORBIDDEN: "Printer refused access",
    StatusCode.CLIENT_ERROR_NOT_AUTHENTICATED: "Printer refused access",
    StatusCode.CLIENT_ERROR_NOT_AUTHORIZED: "Printer refused access",
    StatusCode.CLIENT_ERROR_NOT_POSSIBLE: "Printer cannot print this job now",
    StatusCode.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE: "Document too large for the printer",
    StatusCode.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED: (
        "Printer does not accept this document format"
    ),
    StatusCode.CLIENT_ERROR_DOCUMENT_FORMAT_ERROR: "Printer could not read the document",
    StatusCode.CLIENT_ERROR_DOCUMENT_UNPRINTABLE_ERROR: "Printer could not read the document",
    StatusCode.SERVER_ERROR_NOT_ACCEPTING_JOBS: "Printer is not accepting jobs",
    StatusCode.SERVER_ERROR_BUSY: "Printer is busy",
    StatusCode.SERVER_ERROR_DEVICE_ERROR: "Printer reported a fault",
    StatusCode.SERVER_ERROR_SERVICE_UNAVAILABLE: "Printer is not accepting jobs",
    StatusCode.SERVER_ERROR_TEMPORARY_ERROR: "Printer reported a fault",
}

_JOB_STATUS_ATTRS = ("job-state", "job-state-reasons", "job-impressions-completed")


def reason_in_words(job_reasons: Iterable[str], printer_reasons: Iterable[str]) -> str | None:
    """The first job reason, then printer reason, that a user would understand, or None.

    Printer reasons ending in -warning or -report are not faults (RFC 8011 §5.4.12) and are skipped.
    """
    for keyword in itertools.chain(job_reasons, printer_reasons):
        if keyword.endswith(("-warning", "-report")):
            continue
        words = REASON_WORDS.get(keyword.removesuffix("-error"))
        if words is not None:
            return words
    return None


def status_in_words(status: int) -> str:
    """Words for a refusing status-code."""
    return STATUS_WORDS.get(status, "Printer refused the job")


class IppPrinterTransport:
    """A `PrinterTransport` for one IPP printer.

    `ipps://` runs over TLS on the same port (RFC 7472); the printer's self-signed certificate is
    not verified yet: pinning its public key at pairing belongs to the printers issue.

    Busy printers: a printer that handles one job at a time answers Print-Job with
    server-error-busy. The document has been streamed by then, so the transport retries only when
    `document` can be iterated again (a list, or an object whose `__iter__` starts over, such as
    one that reopens the cloud stream); a one-shot iterator raises `PrinterRejectedError` with
    status SERVER_ERROR_BUSY, and nothing was printed.
    """

    def __init__(
        self,
        uri: str,
        *,
        timeout_s: float = 30.0,
        poll_interval_s: float = 1.0,
        job_timeout_s: float = 600.0,
        busy_retries: int = 4,
        busy_backoff_s: float = 0.5,
        session: requests.Session | None = None,
    ) -> None:
        """Prepare a client for `uri`; nothing is sent until a method is called.

        Args:
            uri: `ipp://host[:port]/path` or `ipps://...` (port 631 when omitted).
            timeout_s: connect and read timeout of each HTTP exchange.
            poll_interval_s: pause between Get-Job-Attributes polls.
            job_timeout_s: how long to wait for a terminal job-state after the job was accepted.
            busy_retries: how many times to resend after server-error-busy.
            busy_backoff_s: first pause after busy; doubles each retry.
            session: a `requests.Session` to use (and not close); one is made otherwise.
        """
        parts = urlsplit(uri)
        if parts.scheme not in ("ipp", "ipps") or not parts.hostname:
            raise ValueError(f"not an ipp:// or ipps:// printer URI: {uri!r}")
        self.uri = uri
        http_scheme = "https" if parts.scheme == "ipps" else "http"
        netloc = parts.netloc if parts.port else f"{parts.netloc}:631"
        self._http_url = urlunsplit((http_scheme, netloc, parts.path or "/", parts.query, ""))
        self._verify = http_scheme == "http"  # ipps: TLS without verification until pinning
        self._timeout_s = timeout_s
        self._poll_interval_s = poll_interval_s
        self._job_timeout_s = job_timeout_s
        self._busy_retries = busy_retries
        self._busy_backoff_s = busy_backoff_s
        self._own_session = session is None
        self._session = session if session is not None else requests.Session()
        self._request_ids = itertools.count(1)
        self._unreachable_logged = False

    def deliver(
        self,
        job: PrintJob,
        document: Iterable[bytes],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> DeliveryResult:
        """Print-Job, then poll until the job completes (see `PrinterTransport.deliver`).

        Raises:
            PrinterUnreachableError: no answer, refused, timed out, or silent mid-job.
            PrinterRejectedError: the printer refused the job (`status_code` set).
            JobFailedError: the printer accepted the job, then aborted or canceled it.
            PrinterError: the printer's answer was not valid IPP.
        """
        replayable = not isinstance(document, Iterator)
        backoff_s = self._busy_backoff_s
        for attempt in itertools.count():
            body = _Body(encode_message(self._print_job_request(job)), document, on_progress)
            response = self._exchange(body)
            status = response.operation_id_or_status_code
            if (
                status == StatusCode.SERVER_ERROR_BUSY
                and replayable
                and attempt < self._busy_retries
            ):
                logger.info("printer %s busy; retrying in %.1f s", self.uri, backoff_s)
                time.sleep(backoff_s)
                backoff_s *= 2
                continue
            if not response.is_success:
                raise PrinterRejectedError(
                    status_in_words(status),
                    status_code=status,
                    detail=_status_detail(response),
                )
            break
        job_id = response.get_int(Tag.JOB_ATTRIBUTES, "job-id")
        if job_id is None:
            raise PrinterError("Printer sent an invalid answer", detail="Print-Job without job-id")
        logger.info("printer %s accepted %s as job %d", self.uri, job.job_name, job_id)
        return self._wait_for_completion(job_id, body.bytes_sent)

    def find_job(self, job_name: str) -> int | None:
        """The newest printer job-id whose job-name is `job_name`, or None (reconciliation).

        Uses Get-Jobs with which-jobs=all (PWG 5100.7), falling back to completed plus
        not-completed (RFC 8011 §4.2.6) for printers without "all".
        """
        ids: list[int] = []
        for which in ("all",), ("completed", "not-completed"):
            responses = [self._get_jobs(w) for w in which]
            if all(r.is_success for r in responses):
                for response in responses:
                    for group in response.groups_of(Tag.JOB_ATTRIBUTES):
                        job_id = group.get_int("job-id")
                        if job_id is not None and group.get_str("job-name") == job_name:
                            ids.append(job_id)
                return max(ids, default=None)
        raise PrinterRejectedError(
            status_in_words(responses[0].operation_id_or_status_code),
            status_code=responses[0].operation_id_or_status_code,
            detail="Get-Jobs refused",
        )

    def cancel_job(self, printer_job_id: int) -> None:
        """Ask the printer to cancel a job (RFC 8011 §4.3.3); a finished job is left alone."""
        response = self._exchange(
            self._request(Operation.CANCEL_JOB, Attribute.of("job-id", Tag.INTEGER, printer_job_id))
        )
        if not response.is_success and response.status_code != StatusCode.CLIENT_ERROR_NOT_POSSIBLE:
            raise PrinterRejectedError(
                status_in_words(response.operation_id_or_status_code),
                status_code=response.operation_id_or_status_code,
                detail=_status_detail(response),
            )

    def printer_attributes(self, *names: str) -> AttributeGroup:
        """Get-Printer-Attributes (RFC 8011 §4.2.5) for `names` (all when empty)."""
        requested = Attribute.of("requested-attributes", Tag.KEYWORD, *(names or ("all",)))
        response = self._exchange(self._request(Operation.GET_PRINTER_ATTRIBUTES, requested))
        if not response.is_success:
            raise PrinterRejectedError(
                status_in_words(response.operation_id_or_status_code),
                status_code=response.operation_id_or_status_code,
                detail=_status_detail(response),
            )
        return response.group(Tag.PRINTER_ATTRIBUTES) or AttributeGroup(Tag.PRINTER_ATTRIBUTES)

    def close(self) -> None:
        """Close the HTTP session if this transport made it."""
        if self._own_session:
            self._session.close()

    # --- internals ---------------------------------------------------------------------------

    def _wait_for_completion(self, job_id: int, bytes_sent: int) -> DeliveryResult:
        deadline = time.monotonic() + self._job_timeout_s
        # Poll soon, then back off to poll_interval_s: small jobs finish in tens of milliseconds and
        # the user is standing at the printer, but a long job must not be hammered with requests.
        pause_s = min(_FIRST_POLL_S, self._poll_interval_s)
        while True:
            group = self._job_status(job_id)
            state = group.get_int("job-state")
            if state == JobState.COMPLETED:
                impressions = group.get_int("job-impressions-completed")
                logger.info("printer %s completed job %d", self.uri, job_id)
                return DeliveryResult(job_id, bytes_sent, impressions)
            if state in (JobState.ABORTED, JobState.CANCELED):
                job_reasons = group.get_strs("job-state-reasons")
                words = reason_in_words(job_reasons, ()) or reason_in_words(
                    (), self._printer_reasons()
                )
                if words is None:
                    words = (
                        "Printer aborted the job"
                        if state == JobState.ABORTED
                        else "Job canceled at the printer"
                    )
                logger.warning("printer %s: job %d ended: %s", self.uri, job_id, words)
                raise JobFailedError(
                    words, printer_job_id=job_id, detail=f"job-state-reasons {job_reasons}"
                )
            if time.monotonic() >= deadline:
                words = reason_in_words((), self._printer_reasons()) or "Printer did not finish"
                raise JobFailedError(
                    words, printer_job_id=job_id, detail=f"job-state {state} after timeout"
                )
            time.sleep(pause_s)
            pause_s = min(pause_s * 2, self._poll_interval_s)

    def _job_status(self, job_id: int) -> AttributeGroup:
        response = self._exchange(
            self._request(
                Operation.GET_JOB_ATTRIBUTES,
                Attribute.of("job-id", Tag.INTEGER, job_id),
                Attribute.of("requested-attributes", Tag.KEYWORD, *_JOB_STATUS_ATTRS),
            )
        )
        if response.status_code == StatusCode.CLIENT_ERROR_NOT_FOUND:
            raise JobFailedError("Printer lost the job", printer_job_id=job_id)
        if not response.is_success:
            raise PrinterRejectedError(
                status_in_words(response.operation_id_or_status_code),
                status_code=response.operation_id_or_status_code,
                detail=_status_detail(response),
            )
        return response.group(Tag.JOB_ATTRIBUTES) or AttributeGroup(Tag.JOB_ATTRIBUTES)

    def _printer_reasons(self) -> list[str]:
        """printer-state-reasons, or nothing if the printer cannot tell us now."""
        try:
            return self.printer_attributes("printer-state-reasons").get_strs(
                "printer-state-reasons"
            )
        except PrinterError:
            return []

    def _get_jobs(self, which: str) -> IppMessage:
        return self._exchange(
            self._request(
                Operation.GET_JOBS,
                Attribute.of("which-jobs", Tag.KEYWORD, which),
                Attribute.of(
                    "requested-attributes", Tag.KEYWORD, "job-id", "job-name", "job-state"
                ),
            )
        )

    def _print_job_request(self, job: PrintJob) -> IppMessage:
        # RFC 8011 §4.2.1.1: operation attributes in this order, job template attributes after.
        message = IppMessage.request(
            Operation.PRINT_JOB,
            next(self._request_ids),
            Attribute.of("printer-uri", Tag.URI, self.uri),
            Attribute.of("requesting-user-name", Tag.NAME_WITHOUT_LANGUAGE, job.user_name),
            Attribute.of("job-name", Tag.NAME_WITHOUT_LANGUAGE, job.job_name),
            Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, job.document_format),
        )
        if job.copies > 1:
            message.add_group(Tag.JOB_ATTRIBUTES, Attribute.of("copies", Tag.INTEGER, job.copies))
        return message

    def _request(self, operation: Operation, *attributes: Attribute) -> bytes:
        return encode_message(
            IppMessage.request(
                operation,
                next(self._request_ids),
                Attribute.of("printer-uri", Tag.URI, self.uri),
                Attribute.of("requesting-user-name", Tag.NAME_WITHOUT_LANGUAGE, "pullprint"),
                *attributes,
            )
        )

    def _exchange(self, body: bytes | _Body) -> IppMessage:
        """POST one IPP request and decode the answer; network trouble becomes unreachable."""
        try:
            response = self._session.post(
                self._http_url,
                data=body if isinstance(body, bytes) else iter(body),
                headers={"Content-Type": "application/ipp"},
                timeout=(self._timeout_s, self._timeout_s),
                verify=self._verify,
            )
        except requests.RequestException as exc:
            if isinstance(body, _Body) and body.error is not None:
                raise body.error from None  # the document source or on_progress failed, not us
            if not self._unreachable_logged:
                logger.warning("printer %s not reachable: %s", self.uri, exc)
                self._unreachable_logged = True
            else:
                logger.debug("printer %s still not reachable: %s", self.uri, exc)
            raise PrinterUnreachableError(UNREACHABLE, detail=type(exc).__name__) from exc
        if self._unreachable_logged:
            logger.info("printer %s reachable again", self.uri)
            self._unreachable_logged = False
        if response.status_code != 200:
            words = "Printer refused access" if response.status_code in (401, 403) else None
            raise PrinterRejectedError(
                words or "Printer refused the job", detail=f"HTTP {response.status_code}"
            )
        try:
            message, _ = decode_message(response.content)
        except IppParseError as exc:
            raise PrinterError("Printer sent an invalid answer", detail=str(exc)) from exc
        return message


class _Body:
    """The Print-Job HTTP body: the IPP header, then the document chunks as they come.

    Errors raised by the document source or `on_progress` are kept in `error`, because requests
    would otherwise report them as connection errors and the printer would be blamed.
    """

    def __init__(
        self, header: bytes, document: Iterable[bytes], on_progress: Callable[[int], None] | None
    ) -> None:
        self._header = header
        self._document = document
        self._on_progress = on_progress
        self.bytes_sent = 0
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        yield self._header
        chunks = iter(self._document)
        while True:
            try:
                chunk = next(chunks, None)
            except BaseException as exc:
                self.error = exc
                raise
            if chunk is None:
                return
            if not chunk:
                continue  # an empty HTTP chunk would end the chunked body early
            yield bytes(chunk)
            self.bytes_sent += len(chunk)
            if self._on_progress is not None:
                try:
                    self._on_progress(self.bytes_sent)
                except BaseException as exc:
                    self.error = exc
                    raise


def _status_detail(response: IppMessage) -> str:
    message = response.get_str(Tag.OPERATION_ATTRIBUTES, "status-message")
    code = response.status_code
    name = code.name.lower().replace("_", "-") if isinstance(code, StatusCode) else f"0x{code:04x}"
    return f"{name}: {message}" if message else name
