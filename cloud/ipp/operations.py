"""IPP operations without document data, and the rules every request follows.

Each handler takes a validated request and the authenticated user and returns the response
message; errors are raised as `IppStatusError` (or domain errors, translated by `respond_error`)
and become an IPP status, never an HTTP error. Handlers touch the database, so the endpoint runs
them in a worker thread. Print-Job and Send-Document, which carry a document, are in
`cloud.ipp.documents`.

Target rules (RFC 8011 §4.1.5, §4.2, §4.3): every request names `printer-uri`; job operations
add `job-id`, or name the job by `job-uri` alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from cloud.errors import (
    CloudError,
    InvalidRequestError,
    JobNotFoundError,
    JobNotHeldError,
    NotFoundError,
    UnauthorizedError,
)
from cloud.identity import UserPrincipal
from cloud.ipp.job_attributes import check_job_template, job_attributes, job_status
from cloud.ipp.jobs import (
    HOLD_INDEFINITE,
    HOLD_UNTIL_SUPPORTED,
    NO_HOLD,
    WHICH_JOBS,
    JobNotPossibleError,
    NewIppJob,
)
from cloud.ipp.printer import (
    DEFAULT_FORMAT,
    DOCUMENT_FORMATS,
    QueueAddress,
    printer_attributes,
    select_attributes,
)
from cloud.service import CloudService
from hardware.ipp.codec import (
    Attribute,
    AttributeGroup,
    IppError,
    IppMessage,
    validate_request,
)
from hardware.ipp.enums import Operation, StatusCode, Tag

log = logging.getLogger(__name__)

MAX_JOBS_LISTED = 1000  # Get-Jobs never answers more than this many jobs


class IppStatusError(Exception):
    """A request the queue answers with `status` (and the attributes it did not support)."""

    def __init__(
        self, status: StatusCode, message: str, unsupported: list[Attribute] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.unsupported = unsupported or []


@dataclass(frozen=True, slots=True)
class IppCall:
    """One request, who sent it, and how they reached the queue."""

    request: IppMessage
    principal: UserPrincipal | None  # None only for an anonymous Get-Printer-Attributes
    address: QueueAddress
    now: datetime
    started_at: datetime = field(repr=False)

    @property
    def user(self) -> UserPrincipal:
        """The authenticated user (job operations never run anonymously)."""
        if self.principal is None:
            raise UnauthorizedError("credentials are required")
        return self.principal

    @property
    def operation(self) -> AttributeGroup:
        """The operation attributes group (validate_request checked it is first)."""
        return self.request.groups[0]

    @property
    def job_group(self) -> AttributeGroup | None:
        """The job attributes group, if any."""
        return self.request.group(Tag.JOB_ATTRIBUTES)


def response(
    call_or_request: IppCall | IppMessage,
    status: StatusCode = StatusCode.SUCCESSFUL_OK,
    message: str | None = None,
) -> IppMessage:
    """A response to the request, echoing its request-id (RFC 8011 §4.1.1)."""
    request = call_or_request.request if isinstance(call_or_request, IppCall) else call_or_request
    version = request.version if request.version[0] in (1, 2) else (2, 0)
    extra = [Attribute.of("status-message", Tag.TEXT_WITHOUT_LANGUAGE, message)] if message else []
    return IppMessage.response(status, request.request_id, *extra, version=version)


def respond_error(request: IppMessage, exc: BaseException) -> IppMessage:
    """Translate an error at the IPP boundary: the status the client should see, never a crash."""
    unsupported: list[Attribute] = []
    if isinstance(exc, IppStatusError):
        status, message, unsupported = exc.status, str(exc), exc.unsupported
    elif isinstance(exc, IppError):
        status, message = StatusCode(exc.status), str(exc)
    elif isinstance(exc, JobNotPossibleError | JobNotHeldError):
        status, message = StatusCode.CLIENT_ERROR_NOT_POSSIBLE, exc.detail
    elif isinstance(exc, NotFoundError):
        status, message = StatusCode.CLIENT_ERROR_NOT_FOUND, exc.detail
    elif isinstance(exc, UnauthorizedError):
        status, message = StatusCode.CLIENT_ERROR_NOT_AUTHORIZED, exc.detail
    elif isinstance(exc, InvalidRequestError):
        status, message = StatusCode.CLIENT_ERROR_BAD_REQUEST, exc.detail
    else:
        if isinstance(exc, CloudError):
            log.error("IPP request failed (%s): %s", exc.code, exc.detail)
        else:
            log.error("IPP request failed", exc_info=exc)
        status, message = StatusCode.SERVER_ERROR_INTERNAL_ERROR, "internal error"
    out = response(request, status, message)
    if unsupported:
        out.add_group(Tag.UNSUPPORTED_ATTRIBUTES, *unsupported)
    return out


def check_request(request: IppMessage) -> None:
    """RFC 8011 §4.1 (version, request-id, charset, natural-language) and §4.2 (printer-uri).

    Raises:
        IppError / IppStatusError: with the status to answer.
    """
    validate_request(request)
    operation = request.groups[0]
    if operation.get("printer-uri") is None and operation.get("job-uri") is None:
        raise IppStatusError(StatusCode.CLIENT_ERROR_BAD_REQUEST, "printer-uri is missing")


def target_job_id(call: IppCall) -> int:
    """The job a job operation is about: job-id, else the number at the end of job-uri."""
    operation = call.operation
    job_id = operation.get_int("job-id")
    if job_id is None:
        uri = operation.get_str("job-uri")
        tail = uri.rstrip("/").rsplit("/", 1)[-1] if uri else ""
        if not tail.isdigit():
            raise IppStatusError(StatusCode.CLIENT_ERROR_BAD_REQUEST, "job-id is missing")
        job_id = int(tail)
    if job_id <= 0:
        raise JobNotFoundError("no such job")
    return job_id


def requested(call: IppCall, default: list[str]) -> list[str]:
    """The requested-attributes keywords, or `default`."""
    return call.operation.get_strs("requested-attributes") or default


def check_format(call: IppCall) -> str:
    """The document-format asked for, refused unless supported (RFC 8011 §4.2.1.1)."""
    operation = call.operation
    compression = operation.get_str("compression")
    if compression not in (None, "none"):
        attr = operation.get("compression")
        raise IppStatusError(
            StatusCode.CLIENT_ERROR_COMPRESSION_NOT_SUPPORTED,
            f"compression {compression!r} is not supported",
            [attr] if attr is not None else [],
        )
    fmt = operation.get_str("document-format") or DEFAULT_FORMAT
    if fmt not in DOCUMENT_FORMATS:
        attr = operation.get("document-format")
        raise IppStatusError(
            StatusCode.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
            f"document-format {fmt!r} is not supported",
            [attr] if attr is not None else [],
        )
    return fmt


def templated(call: IppCall, document_format: str | None) -> tuple[IppMessage, NewIppJob]:
    """Check the job template; the response to fill (status set) and the job to create."""
    check = check_job_template(call.operation, call.job_group, document_format)
    if check.unsupported and check.fidelity:
        raise IppStatusError(
            StatusCode.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
            "some attributes or values are not supported",
            check.unsupported,
        )
    status = (
        StatusCode.SUCCESSFUL_OK_IGNORED_OR_SUBSTITUTED_ATTRIBUTES
        if check.unsupported
        else StatusCode.SUCCESSFUL_OK
    )
    out = response(call, status)
    if check.unsupported:
        out.add_group(Tag.UNSUPPORTED_ATTRIBUTES, *check.unsupported)
    return out, check.new_job


class IppOperations:
    """Handlers of the operations that carry no document."""

    def __init__(self, service: CloudService) -> None:
        self._service = service
        self._handlers: dict[int, Callable[[IppCall], IppMessage]] = {
            Operation.GET_PRINTER_ATTRIBUTES: self.get_printer_attributes,
            Operation.VALIDATE_JOB: self.validate_job,
            Operation.CREATE_JOB: self.create_job,
            Operation.GET_JOB_ATTRIBUTES: self.get_job_attributes,
            Operation.GET_JOBS: self.get_jobs,
            Operation.CANCEL_JOB: self.cancel_job,
            Operation.CANCEL_MY_JOBS: self.cancel_my_jobs,
            Operation.HOLD_JOB: self.hold_job,
            Operation.RELEASE_JOB: self.release_job,
            Operation.CLOSE_JOB: self.close_job,
            Operation.IDENTIFY_PRINTER: self.identify_printer,
        }

    def handles(self, operation: int) -> bool:
        """True if `operation` is answered here."""
        return operation in self._handlers

    def handle(self, call: IppCall) -> IppMessage:
        """Answer one request (errors translated to IPP status codes)."""
        try:
            return self._handlers[call.request.operation_id_or_status_code](call)
        except Exception as exc:
            return respond_error(call.request, exc)

    def get_printer_attributes(self, call: IppCall) -> IppMessage:
        """RFC 8011 §4.2.5."""
        user = call.principal
        queued = len(self._service.ipp_jobs.list_jobs(user, "not-completed")) if user else 0
        everything = printer_attributes(
            self._service.config,
            call.address,
            now=call.now,
            started_at=call.started_at,
            queued_job_count=queued,
        )
        out = response(call)
        out.add_group(Tag.PRINTER_ATTRIBUTES, *select_attributes(everything, requested(call, [])))
        return out

    def validate_job(self, call: IppCall) -> IppMessage:
        """RFC 8011 §4.2.3: everything Print-Job checks, without a job."""
        out, _ = templated(call, check_format(call))
        return out

    def create_job(self, call: IppCall) -> IppMessage:
        """RFC 8011 §4.2.4: a job waiting for its one document (Send-Document)."""
        fmt = call.operation.get_str("document-format")
        if fmt is not None:
            fmt = check_format(call)
        out, new_job = templated(call, fmt)
        view = self._service.ipp_jobs.create(call.user, new_job)
        out.add_group(Tag.JOB_ATTRIBUTES, *job_status(view, call.address))
        return out

    def get_job_attributes(self, call: IppCall) -> IppMessage:
        """RFC 8011 §4.3.4 (only the caller's own jobs exist for them)."""
        view = self._service.ipp_jobs.get(call.user, target_job_id(call))
        out = response(call)
        attrs = job_attributes(view, call.address, requested(call, ["all"]), call.now)
        out.add_group(Tag.JOB_ATTRIBUTES, *attrs)
        return out

    def get_jobs(self, call: IppCall) -> IppMessage:
        """RFC 8011 §4.2.6: the caller's jobs only, whatever my-jobs says."""
        which = call.operation.get_str("which-jobs") or "not-completed"
        if which not in WHICH_JOBS:
            attr = call.operation.get("which-jobs")
            raise IppStatusError(
                StatusCode.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                f"which-jobs {which!r} is not supported",
                [attr] if attr is not None else [],
            )
        limit = call.operation.get_int("limit")
        if limit is not None and limit < 1:
            raise IppStatusError(StatusCode.CLIENT_ERROR_BAD_REQUEST, "limit must be positive")
        limit = min(limit or MAX_JOBS_LISTED, MAX_JOBS_LISTED)
        wanted = requested(call, ["job-id", "job-uri"])
        out = response(call)
        for view in self._service.ipp_jobs.list_jobs(call.user, which, limit):
            out.add_group(Tag.JOB_ATTRIBUTES, *job_attributes(view, call.address, wanted, call.now))
        return out

    def cancel_job(self, call: IppCall) -> IppMessage:
        """RFC 8011 §4.3.3: a held job's content is destroyed at once."""
        self._service.ipp_jobs.cancel(call.user, target_job_id(call))
        return response(call)

    def cancel_my_jobs(self, call: IppCall) -> IppMessage:
        """PWG 5100.11 §5.3."""
        attr = call.operation.get("job-ids")
        ids = None if attr is None else [v.data for v in attr.values if isinstance(v.data, int)]
        canceled = self._service.ipp_jobs.cancel_mine(call.user, ids)
        out = response(call)
        if canceled:
            out.groups[0].attributes.append(Attribute.of("job-ids", Tag.INTEGER, *canceled))
        return out

    def hold_job(self, call: IppCall) -> IppMessage:
        """RFC 8011 §4.3.5: indefinite unless another supported job-hold-until is given."""
        hold = call.operation.get_str("job-hold-until") or HOLD_INDEFINITE
        if hold not in HOLD_UNTIL_SUPPORTED or hold == NO_HOLD:
            attr = call.operation.get("job-hold-until")
            raise IppStatusError(
                StatusCode.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                f"job-hold-until {hold!r} is not supported by Hold-Job",
                [attr] if attr is not None else [],
            )
        self._service.ipp_jobs.set_hold(call.user, target_job_id(call), hold)
        return response(call)

    def release_job(self, call: IppCall) -> IppMessage:
        """RFC 8011 §4.3.6: lifts the IPP hold; the job still waits for its owner at a printer."""
        self._service.ipp_jobs.set_hold(call.user, target_job_id(call), NO_HOLD)
        return response(call)

    def close_job(self, call: IppCall) -> IppMessage:
        """PWG 5100.11 §5.2."""
        self._service.ipp_jobs.close(call.user, target_job_id(call))
        return response(call)

    def identify_printer(self, call: IppCall) -> IppMessage:
        """PWG 5100.13 §5.2: accepted, and nothing happens (the queue has no panel or light)."""
        return response(call)
