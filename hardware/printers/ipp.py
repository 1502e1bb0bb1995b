"""Deliver a document to an IPP printer (`ipp://`, `ipps://`) and wait until it says "completed".

The conversation (RFC 8011 §4.2, §4.3):

1. Get-Printer-Attributes: is the printer ready (state and reasons, in words), which operations
   and document formats does it support;
2. Create-Job (job-name = the release id, requesting-user-name = the owner), retried while the
   printer answers server-error-busy: no document byte has gone out yet, so any source can wait;
3. Send-Document with last-document=true carrying the document as a chunked HTTP body, in
   constant memory (RFC 8011 §4.3.1). Printers without Create-Job get one Print-Job instead
   (§4.2.1), which can be retried on busy only when the document source can be iterated again;
4. Get-Job-Attributes until the job reaches a terminal `job-state` (§5.3.7). Only `completed`
   returns; every other outcome raises a `PrinterError` whose `reason` a user can read.

`ipps://` requires the printer's key pin (see `hardware.printers.pinning`), checked before the
first request byte, unless `allow_unpinned=True` says otherwise explicitly. Connection failures
before anything was accepted raise `PrinterConnectError`, the only error a fallback may follow.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

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
    encode_message,
)
from hardware.ipp.enums import JobState, Operation, StatusCode, Tag
from hardware.printers.errors import PrinterConnectError, PrinterNotReadyError
from hardware.printers.ipp_client import UNREACHABLE, DocumentBody, IppClient, rejected
from hardware.printers.transport import DeliveryResult, PrintJob
from hardware.printers.words import (
    NOT_ACCEPTING,
    READINESS_ATTRIBUTES,
    REASON_WORDS,
    STATUS_WORDS,
    printer_problem,
    reason_in_words,
    status_in_words,
)

__all__ = [
    "REASON_WORDS",
    "STATUS_WORDS",
    "IppPrinterTransport",
    "JobOutcome",
    "printer_ready",
    "reason_in_words",
    "status_in_words",
]

_FIRST_POLL_S = 0.02
logger = logging.getLogger(__name__)

AUTO_SENSE = "application/octet-stream"  # RFC 8011 §5.4.21: the printer detects the format

JobOutcome = Literal["completed", "pending", "failed", "absent"]

_JOB_STATUS_ATTRS = ("job-state", "job-state-reasons", "job-impressions-completed")
_CAPABILITIES = ("operations-supported", "document-format-supported", *READINESS_ATTRIBUTES)


class IppPrinterTransport:
    """A `PrinterTransport` for one IPP printer (see the module docstring for the conversation)."""

    def __init__(
        self,
        uri: str,
        *,
        pin: str | None = None,
        allow_unpinned: bool = False,
        timeout_s: float = 30.0,
        poll_interval_s: float = 1.0,
        job_timeout_s: float = 600.0,
        busy_retries: int = 4,
        busy_backoff_s: float = 0.5,
    ) -> None:
        """Prepare a client for `uri`; nothing is sent until a method is called.

        Args:
            uri: `ipp://host[:port]/path` or `ipps://...` (port 631 when omitted).
            pin: for ipps://, the pin recorded at pairing (`pinning.fetch_pin`, base64 SHA-256
                of the SubjectPublicKeyInfo). A printer presenting another key gets no request
                byte and `PrinterPinMismatchError` is raised.
            allow_unpinned: accept ipps:// without a pin (TLS against passive eavesdropping
                only, not against an impostor). Never the default.
            timeout_s: connect and read timeout of each HTTP exchange.
            poll_interval_s: the longest pause between Get-Job-Attributes polls.
            job_timeout_s: how long to wait for a terminal job-state after the job was accepted.
            busy_retries: how many times to ask again after server-error-busy.
            busy_backoff_s: first pause after busy; doubles each retry.

        Raises:
            ValueError: not an ipp(s) URI, a malformed pin, a pin on ipp://, or ipps:// without a
                pin and without `allow_unpinned`.
        """
        self._client = IppClient(uri, pin=pin, allow_unpinned=allow_unpinned, timeout_s=timeout_s)
        self.uri = uri
        self.pinned = pin is not None
        self._poll_interval_s = poll_interval_s
        self._job_timeout_s = job_timeout_s
        self._busy_retries = busy_retries
        self._busy_backoff_s = busy_backoff_s

    # --- the PrinterTransport port ---------------------------------------------------------------

    def deliver(
        self,
        job: PrintJob,
        document: Iterable[bytes],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> DeliveryResult:
        """Check, create, send, then poll until the job completes (`PrinterTransport.deliver`).

        Raises:
            PrinterPinMismatchError: ipps:// printer presented another key; nothing was sent.
            PrinterConnectError: no connection could be made; nothing was sent.
            PrinterNotReadyError: the printer's state refuses jobs ("Out of paper in tray 2").
            PrinterUnreachableError: the printer went silent or dropped us after we started.
            PrinterRejectedError: the printer refused the job (`status_code` set).
            JobFailedError: the printer accepted the job, then aborted or canceled it.
            PrinterError: the printer's answer was not valid IPP.
        """
        capabilities = self.printer_attributes(*_CAPABILITIES)
        _raise_if_not_ready(capabilities)
        document_format = _format_for(job.document_format, capabilities)
        operations = set(capabilities.get_ints("operations-supported"))
        job_id: int | None = None
        try:
            if {Operation.CREATE_JOB, Operation.SEND_DOCUMENT} <= operations:
                job_id = self._create_job(job)
                bytes_sent = self._send_document(
                    job, job_id, document_format, document, on_progress
                )
            else:
                job_id, bytes_sent = self._print_job(job, document_format, document, on_progress)
            logger.info("printer %s accepted %s as job %d", self.uri, job.job_name, job_id)
            return self._wait_for_completion(job_id, bytes_sent)
        except PrinterConnectError as exc:
            if job_id is None:
                raise
            # A job exists on the printer: this is no longer "could not connect", and a fallback
            # now could print the document twice.
            raise PrinterUnreachableError(UNREACHABLE, detail=exc.detail) from exc

    def close(self) -> None:
        """Close the connections to the printer."""
        self._client.close()

    # --- readiness and reconciliation ------------------------------------------------------------

    def check_ready(self) -> None:
        """Raise `PrinterNotReadyError` with words when the printer cannot print now.

        Raises:
            PrinterNotReadyError: stopped, a fault reason, or not accepting jobs.
            PrinterUnreachableError, PrinterPinMismatchError, PrinterRejectedError: as `deliver`.
        """
        _raise_if_not_ready(self.printer_attributes(*READINESS_ATTRIBUTES))

    def find_job(self, job_name: str) -> int | None:
        """The newest printer job-id whose job-name is `job_name`, or None (reconciliation)."""
        found = self._newest_job(job_name)
        return None if found is None else found[0]

    def job_outcome(self, job_name: str) -> JobOutcome:
        """What became of the printer job named `job_name` (the release id).

        "completed": it printed, report it printed; "pending": it is queued or printing, wait
        and ask again; "failed": it was aborted or canceled, it can be sent again; "absent": the
        printer has no such job (never received, or dropped from its history).
        """
        found = self._newest_job(job_name)
        if found is None:
            return "absent"
        state = found[1]
        if state == JobState.COMPLETED:
            return "completed"
        if state in (JobState.ABORTED, JobState.CANCELED):
            return "failed"
        return "pending"

    def cancel_job(self, printer_job_id: int) -> None:
        """Ask the printer to cancel a job (RFC 8011 §4.3.3); a finished job is left alone."""
        response = self._client.exchange(
            self._client.request(
                Operation.CANCEL_JOB, Attribute.of("job-id", Tag.INTEGER, printer_job_id)
            )
        )
        if not response.is_success and response.status_code != StatusCode.CLIENT_ERROR_NOT_POSSIBLE:
            raise rejected(response)

    def printer_attributes(self, *names: str) -> AttributeGroup:
        """Get-Printer-Attributes (RFC 8011 §4.2.5) for `names` (all when empty)."""
        requested = Attribute.of("requested-attributes", Tag.KEYWORD, *(names or ("all",)))
        response = self._client.exchange(
            self._client.request(Operation.GET_PRINTER_ATTRIBUTES, requested)
        )
        if not response.is_success:
            raise rejected(response)
        return response.group(Tag.PRINTER_ATTRIBUTES) or AttributeGroup(Tag.PRINTER_ATTRIBUTES)

    # --- the job conversation --------------------------------------------------------------------

    def _create_job(self, job: PrintJob) -> int:
        """Create-Job (RFC 8011 §4.2.4), waiting out server-error-busy: no document is at stake."""
        backoff_s = self._busy_backoff_s
        for attempt in itertools.count():
            message = self._job_request(Operation.CREATE_JOB, job)
            response = self._client.exchange(encode_message(message))
            if (
                response.status_code == StatusCode.SERVER_ERROR_BUSY
                and attempt < self._busy_retries
            ):
                logger.info("printer %s busy; asking again in %.1f s", self.uri, backoff_s)
                time.sleep(backoff_s)
                backoff_s *= 2
                continue
            if not response.is_success:
                raise rejected(response)
            return _job_id(response)
        raise AssertionError("unreachable")  # pragma: no cover - itertools.count never ends

    def _send_document(
        self,
        job: PrintJob,
        job_id: int,
        document_format: str,
        document: Iterable[bytes],
        on_progress: Callable[[int], None] | None,
    ) -> int:
        """Send-Document with last-document=true (RFC 8011 §4.3.1); cancels the job on failure."""
        message = self._client.message(
            Operation.SEND_DOCUMENT,
            Attribute.of("job-id", Tag.INTEGER, job_id),
            Attribute.of("requesting-user-name", Tag.NAME_WITHOUT_LANGUAGE, job.user_name),
            Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, document_format),
            Attribute.of("last-document", Tag.BOOLEAN, True),
        )
        body = DocumentBody(encode_message(message), document, on_progress)
        try:
            response = self._client.exchange(body)
            if not response.is_success:
                self._raise_if_job_ended(job_id)  # canceled at the panel before the document
                raise rejected(response)
        except BaseException:
            self._cancel_quietly(job_id)  # a job without its document must not wait forever
            raise
        return body.bytes_sent

    def _raise_if_job_ended(self, job_id: int) -> None:
        try:
            state = self._job_status(job_id).get_int("job-state")
        except PrinterError:
            return
        if state == JobState.CANCELED:
            raise JobFailedError("Job canceled at the printer", printer_job_id=job_id)
        if state == JobState.ABORTED:
            raise JobFailedError("Printer aborted the job", printer_job_id=job_id)

    def _print_job(
        self,
        job: PrintJob,
        document_format: str,
        document: Iterable[bytes],
        on_progress: Callable[[int], None] | None,
    ) -> tuple[int, int]:
        """Print-Job (RFC 8011 §4.2.1); busy is retried only if `document` can be replayed."""
        replayable = not isinstance(document, Iterator)
        backoff_s = self._busy_backoff_s
        for attempt in itertools.count():
            message = self._job_request(Operation.PRINT_JOB, job, document_format)
            body = DocumentBody(encode_message(message), document, on_progress)
            response = self._client.exchange(body)
            busy = response.status_code == StatusCode.SERVER_ERROR_BUSY
            if busy and replayable and attempt < self._busy_retries:
                logger.info("printer %s busy; retrying in %.1f s", self.uri, backoff_s)
                time.sleep(backoff_s)
                backoff_s *= 2
                continue
            if not response.is_success:
                raise rejected(response)
            return _job_id(response), body.bytes_sent
        raise AssertionError("unreachable")  # pragma: no cover - itertools.count never ends

    def _job_request(
        self, operation: Operation, job: PrintJob, document_format: str | None = None
    ) -> IppMessage:
        # RFC 8011 §4.2.1.1: operation attributes in this order, job template attributes after.
        # The printer sets job-originating-user-name from requesting-user-name (RFC 8011
        # §5.3.6) when, as here, the connection is not authenticated.
        attributes = [
            Attribute.of("requesting-user-name", Tag.NAME_WITHOUT_LANGUAGE, job.user_name),
            Attribute.of("job-name", Tag.NAME_WITHOUT_LANGUAGE, job.job_name),
        ]
        if document_format is not None:
            attributes.append(Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, document_format))
        message = self._client.message(operation, *attributes)
        if job.copies > 1:
            message.add_group(Tag.JOB_ATTRIBUTES, Attribute.of("copies", Tag.INTEGER, job.copies))
        return message

    def _cancel_quietly(self, job_id: int) -> None:
        try:
            self.cancel_job(job_id)
        except PrinterError as exc:
            logger.debug("printer %s: could not cancel job %d: %s", self.uri, job_id, exc)

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
                words = reason_in_words(job_reasons, ()) or self._printer_words()
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
                words = self._printer_words() or "Printer did not finish"
                raise JobFailedError(
                    words, printer_job_id=job_id, detail=f"job-state {state} after timeout"
                )
            time.sleep(pause_s)
            pause_s = min(pause_s * 2, self._poll_interval_s)

    def _job_status(self, job_id: int) -> AttributeGroup:
        response = self._client.exchange(
            self._client.request(
                Operation.GET_JOB_ATTRIBUTES,
                Attribute.of("job-id", Tag.INTEGER, job_id),
                Attribute.of("requested-attributes", Tag.KEYWORD, *_JOB_STATUS_ATTRS),
            )
        )
        if response.status_code == StatusCode.CLIENT_ERROR_NOT_FOUND:
            raise JobFailedError("Printer lost the job", printer_job_id=job_id)
        if not response.is_success:
            raise rejected(response)
        return response.group(Tag.JOB_ATTRIBUTES) or AttributeGroup(Tag.JOB_ATTRIBUTES)

    def _printer_words(self) -> str | None:
        """The printer's condition in words, or None if it has none or cannot tell us now."""
        try:
            return printer_problem(self.printer_attributes(*READINESS_ATTRIBUTES))
        except PrinterError:
            return None

    def _newest_job(self, job_name: str) -> tuple[int, int | None] | None:
        """(job-id, job-state) of the newest job named `job_name`, or None.

        Uses Get-Jobs with which-jobs=all (PWG 5100.7), falling back to completed plus
        not-completed (RFC 8011 §4.2.6) for printers without "all".
        """
        for which in ("all",), ("completed", "not-completed"):
            responses = [self._get_jobs(w) for w in which]
            if not all(r.is_success for r in responses):
                continue
            found: dict[int, int | None] = {}
            for response in responses:
                for group in response.groups_of(Tag.JOB_ATTRIBUTES):
                    job_id = group.get_int("job-id")
                    if job_id is not None and group.get_str("job-name") == job_name:
                        found[job_id] = group.get_int("job-state")
            if not found:
                return None
            newest = max(found)
            return newest, found[newest]
        raise rejected(responses[0], detail="Get-Jobs refused")

    def _get_jobs(self, which: str) -> IppMessage:
        return self._client.exchange(
            self._client.request(
                Operation.GET_JOBS,
                Attribute.of("which-jobs", Tag.KEYWORD, which),
                Attribute.of(
                    "requested-attributes", Tag.KEYWORD, "job-id", "job-name", "job-state"
                ),
            )
        )


def printer_ready(
    uri: str,
    *,
    pin: str | None = None,
    allow_unpinned: bool = False,
    timeout_s: float = 5.0,
) -> tuple[bool, str | None]:
    """(True, None) when the IPP printer at `uri` can print now, else (False, words).

    The words are what the station shows ("Out of paper in tray 2", "Printer not reachable",
    "Printer identity changed - ask an admin to re-pair it").
    """
    transport = IppPrinterTransport(
        uri, pin=pin, allow_unpinned=allow_unpinned, timeout_s=timeout_s
    )
    try:
        transport.check_ready()
    except PrinterError as exc:
        return False, exc.reason
    finally:
        transport.close()
    return True, None


def _raise_if_not_ready(attributes: AttributeGroup) -> None:
    words = printer_problem(attributes)
    if words is not None:
        raise PrinterNotReadyError(words, detail="printer-state-reasons")
    if attributes.get_bool("printer-is-accepting-jobs") is False:
        raise PrinterNotReadyError(
            NOT_ACCEPTING,
            status_code=StatusCode.SERVER_ERROR_NOT_ACCEPTING_JOBS,
            detail="printer-is-accepting-jobs false",
        )


def _format_for(document_format: str, capabilities: AttributeGroup) -> str:
    """The document-format to tell the printer (RFC 8011 §5.4.21, §5.4.22).

    The job's own format when the printer lists it (or lists nothing); otherwise
    application/octet-stream when the printer auto-senses; otherwise the job is refused here,
    before any byte of it is sent.
    """
    supported = capabilities.get_strs("document-format-supported")
    if not supported or document_format in supported:
        return document_format
    if AUTO_SENSE in supported:
        return AUTO_SENSE
    raise PrinterRejectedError(
        status_in_words(StatusCode.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED),
        status_code=StatusCode.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
        detail=f"{document_format} not in document-format-supported",
    )


def _job_id(response: IppMessage) -> int:
    job_id = response.get_int(Tag.JOB_ATTRIBUTES, "job-id")
    if job_id is None:
        raise PrinterError("Printer sent an invalid answer", detail="job created without job-id")
    return job_id
