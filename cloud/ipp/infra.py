"""The Infrastructure Printer (PWG 5100.18) at `POST /ipp/infra`: where Proxies pull their work.

Clients submit at `/ipp/print` (the secure queue); Proxies, one per printer, talk to this URI:
Register-Output-Device (PWG 5100.22) and Update-Output-Device-Attributes, learn about work with
Get-Notifications (RFC 3996 ippget, long poll with notify-wait) or Get-Jobs
`which-jobs=fetchable`, then Fetch-Job -> Acknowledge-Job -> Fetch-Document ->
Acknowledge-Document -> Update-Document-Status / Update-Job-Status, and Update-Active-Jobs to
resynchronise. The domain rules (fetchable only after the owner's release at the printer's
station, compare-and-set, nothing printed twice) are in `cloud.ipp.infra_store`.

Authentication, before the request is decoded:

* a paired station acting as the Proxy signs the request (RFC 9421, as for its REST calls; the
  IPP request is small and in memory, so its Content-Digest covers it all);
* a cloud-aware printer, or ipptool, presents its device token `ppd_...`, as `Bearer` or as the
  password of HTTP Basic (any user name), which ipptool sends after a 401 challenge.

Anything else gets HTTP 401 with a Basic challenge. Every failure after that is an IPP status in
an HTTP 200 response. Fetch-Document answers with the decrypted document after the IPP header,
with a Content-Length, so a Proxy can tell a cut-off transfer from a whole one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import anyio
from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from cloud.errors import (
    CloudError,
    ConflictError,
    ContentDigestMismatchError,
    InvalidRequestError,
    UnauthorizedError,
)
from cloud.ipp.infra_api import infra_release_router
from cloud.ipp.infra_store import (
    ABORTED,
    CANCELED,
    COMPLETED,
    EVENT_RETENTION,
    EVENTS_SUPPORTED,
    FETCHABLE,
    PROCESSING,
    DocumentUnavailableError,
    EventView,
    Infra,
    InfraJobView,
    NotFetchableError,
    OutputDeviceMismatchError,
    PlainDocument,
    ProxyPrincipal,
    SubscriptionView,
)
from cloud.ipp.operations import IppStatusError, respond_error, response
from cloud.ipp.printer import DOCUMENT_FORMATS, printer_uuid, select_attributes
from cloud.service import CloudService
from cloud.states import ReleaseState
from cloud.stations import SignedHttpRequest
from hardware.ipp.codec import (
    Attribute,
    AttributeGroup,
    IppError,
    IppMessage,
    RangeOfInteger,
    decode_message,
    encode_message,
    validate_request,
)
from hardware.ipp.enums import JobState, Operation, StatusCode, Tag

log = logging.getLogger(__name__)

INFRA_PATH = "/ipp/infra"
MAX_REQUEST_BYTES = 1 << 20  # Proxies send attributes only; the largest is a printer's attributes
DEFAULT_NOTIFY_WAIT_S = 20.0
NOTIFY_GET_INTERVAL_S = 30
DEFAULT_LEASE_S = 86400  # RFC 3995 §5.3.8: a client that names no lease gets a day
MAX_LEASE_S = 67108863  # RFC 3995 §5.3.8: the largest lease; 0 means "until canceled"
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="PullPrint INFRA"'}

OPERATIONS = (
    Operation.GET_PRINTER_ATTRIBUTES,
    Operation.GET_JOBS,
    Operation.GET_JOB_ATTRIBUTES,
    Operation.CREATE_PRINTER_SUBSCRIPTIONS,
    Operation.GET_SUBSCRIPTION_ATTRIBUTES,
    Operation.GET_SUBSCRIPTIONS,
    Operation.RENEW_SUBSCRIPTION,
    Operation.CANCEL_SUBSCRIPTION,
    Operation.GET_NOTIFICATIONS,
    Operation.ACKNOWLEDGE_DOCUMENT,
    Operation.ACKNOWLEDGE_JOB,
    Operation.FETCH_DOCUMENT,
    Operation.FETCH_JOB,
    Operation.GET_OUTPUT_DEVICE_ATTRIBUTES,
    Operation.UPDATE_ACTIVE_JOBS,
    Operation.DEREGISTER_OUTPUT_DEVICE,
    Operation.UPDATE_DOCUMENT_STATUS,
    Operation.UPDATE_JOB_STATUS,
    Operation.UPDATE_OUTPUT_DEVICE_ATTRIBUTES,
    Operation.REGISTER_OUTPUT_DEVICE,
)
WHICH_JOBS = ("fetchable", "not-completed", "completed")
_DEVICE_JOB_STATES = {
    int(JobState.PENDING): PROCESSING,
    int(JobState.PENDING_HELD): PROCESSING,
    int(JobState.PROCESSING): PROCESSING,
    int(JobState.PROCESSING_STOPPED): PROCESSING,
    int(JobState.CANCELED): CANCELED,
    int(JobState.ABORTED): ABORTED,
    int(JobState.COMPLETED): COMPLETED,
}
_DOCUMENT_STATES = {3: "pending", 5: "processing", 6: "stopped", 7: "canceled", 8: "aborted"}
_DOCUMENT_STATES[9] = "completed"


@dataclass(frozen=True, slots=True)
class InfraCall:
    """One authenticated Proxy request."""

    request: IppMessage
    proxy: ProxyPrincipal
    printer_uri: str
    now: datetime
    started_at: datetime

    @property
    def operation(self) -> AttributeGroup:
        """The operation attributes group."""
        return self.request.groups[0]

    @property
    def device_uuid(self) -> str | None:
        """The output-device-uuid the request names, if any. PWG 5100.18 makes Proxies send
        it; when they do it must be the caller's, and when they do not, the credentials (one
        device each) already say which device is asking."""
        return self.operation.get_str("output-device-uuid")

    @property
    def up_time(self) -> int:
        """printer-up-time: seconds since the endpoint started (at least 1)."""
        return max(1, int((self.now - self.started_at).total_seconds()))

    def group(self, tag: int) -> AttributeGroup | None:
        """The request's first group with `tag`."""
        return self.request.group(tag)


Answer = IppMessage | tuple[IppMessage, PlainDocument]


def job_state(view: InfraJobView) -> JobState:
    """The job-state a Proxy sees."""
    if view.state == COMPLETED or view.release_state == ReleaseState.PRINTED:
        return JobState.COMPLETED
    if view.state == CANCELED:
        return JobState.CANCELED
    if view.state == ABORTED or view.release_state in (ReleaseState.FAILED, ReleaseState.CANCELLED):
        return JobState.ABORTED
    if view.state == FETCHABLE:
        return JobState.PENDING
    return JobState.PROCESSING


def job_state_reasons(view: InfraJobView) -> list[str]:
    """job-state-reasons: job-fetchable while fetchable (PWG 5100.18 §5.3)."""
    state = job_state(view)
    if state == JobState.PENDING:
        return ["job-fetchable"]
    if state == JobState.COMPLETED:
        return ["job-completed-successfully"]
    if state == JobState.ABORTED:
        return ["aborted-by-system"]
    if state == JobState.CANCELED:
        return ["job-canceled-at-device"]
    return ["job-printing"]


def _job_attributes(call: InfraCall, view: InfraJobView) -> list[Attribute]:
    state = job_state(view)
    attrs = [
        Attribute.of("job-id", Tag.INTEGER, view.job_id),
        Attribute.of("job-uri", Tag.URI, f"{call.printer_uri}/{view.job_id}"),
        Attribute.of("job-printer-uri", Tag.URI, call.printer_uri),
        Attribute.of("job-uuid", Tag.URI, f"urn:uuid:{view.release_id}"),
        Attribute.of("job-name", Tag.NAME_WITHOUT_LANGUAGE, view.name[:255] or "untitled"),
        Attribute.of("job-originating-user-name", Tag.NAME_WITHOUT_LANGUAGE, view.user_name[:255]),
        Attribute.of("job-state", Tag.ENUM, int(state)),
        Attribute.of("job-state-reasons", Tag.KEYWORD, *job_state_reasons(view)),
        Attribute.of("copies", Tag.INTEGER, view.copies),
        Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, view.document_format),
        Attribute.of("number-of-documents", Tag.INTEGER, 1),
        Attribute.of("job-k-octets", Tag.INTEGER, max(1, -(-view.size_bytes // 1024))),
        Attribute.of("job-printer-up-time", Tag.INTEGER, call.up_time),
    ]
    if view.sides:
        attrs.append(Attribute.of("sides", Tag.KEYWORD, view.sides))
    if view.color_mode:
        attrs.append(Attribute.of("print-color-mode", Tag.KEYWORD, view.color_mode))
    if view.output_device_uuid:
        attrs.append(Attribute.of("output-device-uuid-assigned", Tag.URI, view.output_device_uuid))
    if view.impressions is not None:
        attrs.append(Attribute.of("job-impressions-completed", Tag.INTEGER, view.impressions))
    return attrs


def infra_printer_attributes(service: CloudService, call: InfraCall) -> list[Attribute]:
    """What the Infrastructure Printer says about itself to its Proxies."""
    config = service.config
    return [
        Attribute.of("charset-configured", Tag.CHARSET, "utf-8"),
        Attribute.of("charset-supported", Tag.CHARSET, "utf-8"),
        Attribute.of("compression-supported", Tag.KEYWORD, "none"),
        Attribute.of("document-format-default", Tag.MIME_MEDIA_TYPE, "application/octet-stream"),
        Attribute.of("document-format-supported", Tag.MIME_MEDIA_TYPE, *DOCUMENT_FORMATS),
        Attribute.of("generated-natural-language-supported", Tag.NATURAL_LANGUAGE, "en"),
        Attribute.of("ipp-features-supported", Tag.KEYWORD, "infrastructure-printer"),
        Attribute.of("ipp-versions-supported", Tag.KEYWORD, "1.1", "2.0"),
        Attribute.of("natural-language-configured", Tag.NATURAL_LANGUAGE, "en"),
        Attribute.of("notify-events-default", Tag.KEYWORD, "job-fetchable"),
        Attribute.of("notify-events-supported", Tag.KEYWORD, *EVENTS_SUPPORTED),
        Attribute.of("ippget-event-life", Tag.INTEGER, int(EVENT_RETENTION.total_seconds())),
        Attribute.of("notify-lease-duration-default", Tag.INTEGER, DEFAULT_LEASE_S),
        Attribute.of(
            "notify-lease-duration-supported", Tag.RANGE_OF_INTEGER, RangeOfInteger(0, MAX_LEASE_S)
        ),
        Attribute.of("notify-max-events-supported", Tag.INTEGER, len(EVENTS_SUPPORTED)),
        Attribute.of("notify-schemes-supported", Tag.URI_SCHEME, "ippget"),
        Attribute.of("notify-pull-method-supported", Tag.KEYWORD, "ippget"),
        Attribute.of("operations-supported", Tag.ENUM, *(int(op) for op in OPERATIONS)),
        Attribute.of("pdl-override-supported", Tag.KEYWORD, "attempted"),
        Attribute.of("printer-is-accepting-jobs", Tag.BOOLEAN, True),
        Attribute.of("printer-make-and-model", Tag.TEXT_WITHOUT_LANGUAGE, "PullPrint INFRA"),
        Attribute.of("printer-name", Tag.NAME_WITHOUT_LANGUAGE, f"{config.site}-infra"),
        Attribute.of("printer-state", Tag.ENUM, 3),
        Attribute.of("printer-state-reasons", Tag.KEYWORD, "none"),
        Attribute.of("printer-up-time", Tag.INTEGER, call.up_time),
        Attribute.of("printer-uri-supported", Tag.URI, call.printer_uri),
        Attribute.of("printer-uuid", Tag.URI, f"urn:uuid:{printer_uuid(config)}"),
        Attribute.of("uri-authentication-supported", Tag.KEYWORD, "basic"),
        Attribute.of(
            "uri-security-supported",
            Tag.KEYWORD,
            "tls" if call.printer_uri.startswith("ipps:") else "none",
        ),
        Attribute.of("which-jobs-supported", Tag.KEYWORD, *WHICH_JOBS),
    ]


def _translate(request: IppMessage, exc: BaseException) -> IppMessage:
    """INFRA errors first; the rest as the queue translates them."""
    if isinstance(exc, NotFetchableError):
        return response(request, StatusCode.CLIENT_ERROR_NOT_FETCHABLE, exc.detail)
    if isinstance(exc, OutputDeviceMismatchError):
        return response(request, StatusCode.CLIENT_ERROR_FORBIDDEN, exc.detail)
    if isinstance(exc, DocumentUnavailableError | ConflictError):
        return response(request, StatusCode.CLIENT_ERROR_NOT_POSSIBLE, exc.detail)
    return respond_error(request, exc)


def _job_id(call: InfraCall) -> int:
    job_id = call.operation.get_int("job-id")
    if job_id is None:
        uri = call.operation.get_str("job-uri") or ""
        tail = uri.rstrip("/").rsplit("/", 1)[-1]
        if not tail.isdigit():
            raise IppStatusError(StatusCode.CLIENT_ERROR_BAD_REQUEST, "job-id is missing")
        job_id = int(tail)
    return job_id


def _required_uuid(call: InfraCall) -> str:
    named = call.device_uuid
    if not named:
        raise IppStatusError(StatusCode.CLIENT_ERROR_BAD_REQUEST, "output-device-uuid is missing")
    return named


def _fetch_error(call: InfraCall) -> str | None:
    code = call.operation.get_int("fetch-status-code")
    if code is None or code < 0x0100:
        return None
    message = call.operation.get_str("fetch-status-message")
    name = StatusCode(code).name if code in StatusCode._value2member_map_ else hex(code)
    return (message or name.lower().replace("_", "-"))[:200]


class InfraOperations:
    """Handlers of the Infrastructure Printer's operations (run in a worker thread)."""

    def __init__(
        self, service: CloudService, infra: Infra, notify_wait_s: float = DEFAULT_NOTIFY_WAIT_S
    ) -> None:
        self._service = service
        self._infra = infra
        self.notify_wait_s = notify_wait_s
        self._handlers: dict[int, Callable[[InfraCall], Answer]] = {
            Operation.GET_PRINTER_ATTRIBUTES: self.get_printer_attributes,
            Operation.GET_JOBS: self.get_jobs,
            Operation.GET_JOB_ATTRIBUTES: self.get_job_attributes,
            Operation.REGISTER_OUTPUT_DEVICE: self.register_output_device,
            Operation.UPDATE_OUTPUT_DEVICE_ATTRIBUTES: self.update_output_device_attributes,
            Operation.GET_OUTPUT_DEVICE_ATTRIBUTES: self.get_output_device_attributes,
            Operation.DEREGISTER_OUTPUT_DEVICE: self.deregister_output_device,
            Operation.FETCH_JOB: self.fetch_job,
            Operation.ACKNOWLEDGE_JOB: self.acknowledge_job,
            Operation.FETCH_DOCUMENT: self.fetch_document,
            Operation.ACKNOWLEDGE_DOCUMENT: self.acknowledge_document,
            Operation.UPDATE_JOB_STATUS: self.update_job_status,
            Operation.UPDATE_DOCUMENT_STATUS: self.update_document_status,
            Operation.UPDATE_ACTIVE_JOBS: self.update_active_jobs,
            Operation.CREATE_PRINTER_SUBSCRIPTIONS: self.create_printer_subscriptions,
            Operation.GET_SUBSCRIPTION_ATTRIBUTES: self.get_subscription_attributes,
            Operation.GET_SUBSCRIPTIONS: self.get_subscriptions,
            Operation.RENEW_SUBSCRIPTION: self.renew_subscription,
            Operation.CANCEL_SUBSCRIPTION: self.cancel_subscription,
            Operation.GET_NOTIFICATIONS: self.get_notifications,
        }

    def handle(self, call: InfraCall) -> Answer:
        """Answer one request; every error becomes an IPP status."""
        handler = self._handlers.get(call.request.operation_id_or_status_code)
        if handler is None:
            code = call.request.operation_id_or_status_code
            return response(
                call.request,
                StatusCode.SERVER_ERROR_OPERATION_NOT_SUPPORTED,
                f"operation 0x{code:04x} is not supported by the infrastructure printer",
            )
        try:
            return handler(call)
        except Exception as exc:
            if isinstance(exc, CloudError):
                log.info("INFRA %s refused: %s", type(exc).__name__, exc.detail)
            return _translate(call.request, exc)

    # --- printer and jobs ---

    def get_printer_attributes(self, call: InfraCall) -> IppMessage:
        """RFC 8011 §4.2.5, for the Infrastructure Printer."""
        wanted = call.operation.get_strs("requested-attributes")
        out = response(call.request)
        attrs = select_attributes(infra_printer_attributes(self._service, call), wanted)
        out.add_group(Tag.PRINTER_ATTRIBUTES, *attrs)
        return out

    def get_jobs(self, call: InfraCall) -> IppMessage:
        """Get-Jobs for the caller's Output Device: `which-jobs=fetchable` lists its work."""
        which = call.operation.get_str("which-jobs") or "not-completed"
        if which not in WHICH_JOBS:
            attr = call.operation.get("which-jobs")
            raise IppStatusError(
                StatusCode.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                f"which-jobs {which!r} is not supported",
                [attr] if attr is not None else [],
            )
        limit = call.operation.get_int("limit") or 1000
        if limit < 1:
            raise IppStatusError(StatusCode.CLIENT_ERROR_BAD_REQUEST, "limit must be positive")
        wanted = call.operation.get_strs("requested-attributes") or ["job-id", "job-uri"]
        out = response(call.request)
        for view in self._infra.list_jobs(call.proxy, which, min(limit, 1000)):
            attrs = _job_attributes(call, view)
            if "all" not in wanted:
                attrs = [a for a in attrs if a.name in wanted]
            out.add_group(Tag.JOB_ATTRIBUTES, *attrs)
        return out

    def get_job_attributes(self, call: InfraCall) -> IppMessage:
        """Get-Job-Attributes of one of the device's jobs."""
        view = self._infra.job(call.proxy, _job_id(call))
        wanted = call.operation.get_strs("requested-attributes") or ["all"]
        attrs = _job_attributes(call, view)
        if "all" not in wanted and "job-description" not in wanted:
            attrs = [a for a in attrs if a.name in wanted]
        out = response(call.request)
        out.add_group(Tag.JOB_ATTRIBUTES, *attrs)
        return out

    # --- the Output Device ---

    def register_output_device(self, call: InfraCall) -> IppMessage:
        """PWG 5100.22 Register-Output-Device: answers the Printer the device is to pull from."""
        self._infra.register(call.proxy, _required_uuid(call))
        out = response(call.request)
        out.add_group(
            Tag.PRINTER_ATTRIBUTES,
            Attribute.of("printer-uri-supported", Tag.URI, call.printer_uri),
            Attribute.of("printer-uuid", Tag.URI, f"urn:uuid:{printer_uuid(self._service.config)}"),
        )
        return out

    def update_output_device_attributes(self, call: InfraCall) -> IppMessage:
        """PWG 5100.18 Update-Output-Device-Attributes: the printer group is kept as sent."""
        group = call.group(Tag.PRINTER_ATTRIBUTES)
        attrs = [] if group is None else group.attributes
        encoded = encode_message(IppMessage(0, 1, [AttributeGroup(Tag.PRINTER_ATTRIBUTES, attrs)]))
        self._infra.update_attributes(call.proxy, call.device_uuid, encoded)
        return response(call.request)

    def get_output_device_attributes(self, call: InfraCall) -> IppMessage:
        """PWG 5100.18 Get-Output-Device-Attributes: what the device last reported."""
        device = self._infra.device(call.proxy, call.device_uuid)
        stored: list[Attribute] = []
        if device.attributes:
            message, _ = decode_message(device.attributes)
            group = message.group(Tag.PRINTER_ATTRIBUTES)
            stored = [] if group is None else group.attributes
        wanted = set(call.operation.get_strs("requested-attributes")) or {"all"}
        if "all" not in wanted:
            stored = [a for a in stored if a.name in wanted]
        out = response(call.request)
        assert device.output_device_uuid is not None  # registered
        out.add_group(
            Tag.PRINTER_ATTRIBUTES,
            Attribute.of("output-device-uuid", Tag.URI, device.output_device_uuid),
            *stored,
        )
        return out

    def deregister_output_device(self, call: InfraCall) -> IppMessage:
        """PWG 5100.18 Deregister-Output-Device: unstarted jobs return to their owners."""
        self._infra.deregister(call.proxy, call.device_uuid)
        return response(call.request)

    # --- fetching ---

    def fetch_job(self, call: InfraCall) -> IppMessage:
        """PWG 5100.18 Fetch-Job."""
        view = self._infra.fetch_job(call.proxy, call.device_uuid, _job_id(call))
        out = response(call.request)
        out.add_group(Tag.JOB_ATTRIBUTES, *_job_attributes(call, view))
        return out

    def acknowledge_job(self, call: InfraCall) -> IppMessage:
        """PWG 5100.18 Acknowledge-Job (with fetch-status-code: the device gives it back)."""
        self._infra.acknowledge_job(call.proxy, call.device_uuid, _job_id(call), _fetch_error(call))
        return response(call.request)

    def fetch_document(self, call: InfraCall) -> Answer:
        """PWG 5100.18 Fetch-Document: the document follows the response, decrypted."""
        number = call.operation.get_int("document-number") or 1
        accepted = call.operation.get_strs("document-format-accepted")
        view, document = self._infra.open_document(
            call.proxy, call.device_uuid, _job_id(call), number
        )
        if accepted and view.document_format not in accepted:
            document.close()
            attr = call.operation.get("document-format-accepted")
            raise IppStatusError(
                StatusCode.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
                f"the document is {view.document_format}, which the device does not accept",
                [attr] if attr is not None else [],
            )
        out = response(call.request)
        op = out.groups[0].attributes
        op.append(Attribute.of("compression", Tag.KEYWORD, "none"))
        op.append(Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, view.document_format))
        out.add_group(
            Tag.DOCUMENT_ATTRIBUTES,
            Attribute.of("document-number", Tag.INTEGER, 1),
            Attribute.of("document-name", Tag.NAME_WITHOUT_LANGUAGE, view.name[:255] or "untitled"),
            Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, view.document_format),
            Attribute.of("k-octets", Tag.INTEGER, max(1, -(-view.size_bytes // 1024))),
        )
        return out, document

    def acknowledge_document(self, call: InfraCall) -> IppMessage:
        """PWG 5100.18 Acknowledge-Document."""
        number = call.operation.get_int("document-number") or 1
        if number != 1:
            raise IppStatusError(StatusCode.CLIENT_ERROR_NOT_FOUND, "no such document")
        self._infra.acknowledge_document(
            call.proxy, call.device_uuid, _job_id(call), _fetch_error(call)
        )
        return response(call.request)

    def update_job_status(self, call: InfraCall) -> IppMessage:
        """PWG 5100.18 Update-Job-Status: completed means printed; aborted/canceled, failed."""
        group = call.group(Tag.JOB_ATTRIBUTES) or AttributeGroup(Tag.JOB_ATTRIBUTES)
        code = group.get_int("output-device-job-state") or group.get_int("job-state")
        if code is None:
            raise IppStatusError(
                StatusCode.CLIENT_ERROR_BAD_REQUEST, "output-device-job-state is missing"
            )
        state = _DEVICE_JOB_STATES.get(code)
        if state is None:
            raise IppStatusError(
                StatusCode.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                f"output-device-job-state {code} is not a job state",
            )
        reasons = group.get_strs("output-device-job-state-reasons")
        message = group.get_str("output-device-job-state-message")
        reason = message or (", ".join(reasons) if reasons else None)
        self._infra.update_job_status(
            call.proxy,
            call.device_uuid,
            _job_id(call),
            state,
            reason=reason[:200] if reason else None,
            impressions=group.get_int("job-impressions-completed"),
        )
        return response(call.request)

    def update_document_status(self, call: InfraCall) -> IppMessage:
        """PWG 5100.18 Update-Document-Status."""
        group = call.group(Tag.DOCUMENT_ATTRIBUTES) or AttributeGroup(Tag.DOCUMENT_ATTRIBUTES)
        code = group.get_int("output-device-document-state") or group.get_int("document-state")
        state = _DOCUMENT_STATES.get(code or 5, "processing")
        self._infra.update_document_status(call.proxy, call.device_uuid, _job_id(call), state)
        return response(call.request)

    def update_active_jobs(self, call: InfraCall) -> IppMessage:
        """PWG 5100.18 Update-Active-Jobs: the jobs whose state the device has wrong, back."""
        job_ids = call.operation.get_ints("job-ids")
        device_states = call.operation.get_ints("output-device-job-states")
        if len(device_states) != len(job_ids):
            raise IppStatusError(
                StatusCode.CLIENT_ERROR_BAD_REQUEST,
                "job-ids and output-device-job-states must have as many values",
            )
        views, unknown = self._infra.active_jobs(call.proxy, call.device_uuid, job_ids)
        said = dict(zip(job_ids, device_states, strict=True))
        differ = [v for v in views if int(job_state(v)) != said[v.job_id] and _ended(v)]
        out = response(call.request)
        if differ:
            out.groups[0].attributes += [
                Attribute.of("job-ids", Tag.INTEGER, *(v.job_id for v in differ)),
                Attribute.of(
                    "output-device-job-states", Tag.ENUM, *(int(job_state(v)) for v in differ)
                ),
            ]
        if unknown:
            out.add_group(
                Tag.UNSUPPORTED_ATTRIBUTES, Attribute.of("job-ids", Tag.INTEGER, *unknown)
            )
        return out

    # --- subscriptions and notifications (RFC 3995, RFC 3996) ---

    def create_printer_subscriptions(self, call: InfraCall) -> IppMessage:
        """RFC 3995 §11.1.2, pull method ippget only."""
        groups = call.request.groups_of(Tag.SUBSCRIPTION_ATTRIBUTES)
        if not groups:
            raise IppStatusError(
                StatusCode.CLIENT_ERROR_BAD_REQUEST, "no subscription template attributes"
            )
        answers: list[list[Attribute]] = []
        made = 0
        for group in groups:
            method = group.get_str("notify-pull-method")
            if group.get("notify-recipient-uri") is not None or method != "ippget":
                status = StatusCode.CLIENT_ERROR_URI_SCHEME_NOT_SUPPORTED
                answers.append([Attribute.of("notify-status-code", Tag.ENUM, int(status))])
                continue
            events = group.get_strs("notify-events") or ["job-fetchable"]
            lease = group.get_int("notify-lease-duration")
            lease = DEFAULT_LEASE_S if lease is None else min(max(lease, 0), MAX_LEASE_S)
            user_data = group.get("notify-user-data")
            data = user_data.first if user_data is not None else None
            subscriber = call.operation.get_str("requesting-user-name") or ""
            try:
                sub = self._infra.subscribe(
                    call.proxy,
                    events,
                    lease,
                    user_data=data if isinstance(data, bytes) else None,
                    subscriber=subscriber,
                )
            except InvalidRequestError:
                status = StatusCode.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED
                answers.append([Attribute.of("notify-status-code", Tag.ENUM, int(status))])
                continue
            made += 1
            answers.append(
                [
                    Attribute.of("notify-subscription-id", Tag.INTEGER, sub.id),
                    Attribute.of("notify-lease-duration", Tag.INTEGER, lease),
                ]
            )
        if made == 0:
            status = StatusCode.CLIENT_ERROR_IGNORED_ALL_SUBSCRIPTIONS
        elif made < len(groups):
            status = StatusCode.SUCCESSFUL_OK_IGNORED_SUBSCRIPTIONS
        else:
            status = StatusCode.SUCCESSFUL_OK
        out = response(call.request, status)
        for attrs in answers:
            out.add_group(Tag.SUBSCRIPTION_ATTRIBUTES, *attrs)
        return out

    def _subscription_group(self, call: InfraCall, sub: SubscriptionView) -> list[Attribute]:
        extra = []
        if sub.user_data is not None:
            extra.append(Attribute.of("notify-user-data", Tag.OCTET_STRING, sub.user_data))
        return [
            *extra,
            Attribute.of("notify-charset", Tag.CHARSET, "utf-8"),
            Attribute.of("notify-natural-language", Tag.NATURAL_LANGUAGE, "en"),
            Attribute.of("notify-subscription-id", Tag.INTEGER, sub.id),
            Attribute.of("notify-events", Tag.KEYWORD, *sub.events),
            Attribute.of("notify-pull-method", Tag.KEYWORD, "ippget"),
            Attribute.of("notify-lease-duration", Tag.INTEGER, sub.lease_s),
            Attribute.of("notify-printer-up-time", Tag.INTEGER, call.up_time),
            Attribute.of("notify-sequence-number", Tag.INTEGER, 0),
            Attribute.of("notify-subscriber-user-name", Tag.NAME_WITHOUT_LANGUAGE, sub.subscriber),
            Attribute.of("notify-printer-uri", Tag.URI, call.printer_uri),
            Attribute.of(
                "notify-lease-expiration-time",
                Tag.INTEGER,
                0
                if sub.expires_at is None
                else call.up_time + int((sub.expires_at - call.now).total_seconds()),
            ),
        ]

    def _subscription_id(self, call: InfraCall) -> int:
        sub_id = call.operation.get_int("notify-subscription-id")
        if sub_id is None:
            raise IppStatusError(
                StatusCode.CLIENT_ERROR_BAD_REQUEST, "notify-subscription-id is missing"
            )
        return sub_id

    def get_subscription_attributes(self, call: InfraCall) -> IppMessage:
        """RFC 3995 §11.2.4."""
        sub = self._infra.subscription(call.proxy, self._subscription_id(call))
        out = response(call.request)
        out.add_group(Tag.SUBSCRIPTION_ATTRIBUTES, *self._subscription_group(call, sub))
        return out

    def get_subscriptions(self, call: InfraCall) -> IppMessage:
        """RFC 3995 §11.2.5: the device's own subscriptions."""
        out = response(call.request)
        for sub in self._infra.subscriptions(call.proxy):
            out.add_group(Tag.SUBSCRIPTION_ATTRIBUTES, *self._subscription_group(call, sub))
        return out

    def renew_subscription(self, call: InfraCall) -> IppMessage:
        """RFC 3995 §11.2.6."""
        lease = call.operation.get_int("notify-lease-duration")
        lease = DEFAULT_LEASE_S if lease is None else min(max(lease, 0), MAX_LEASE_S)
        self._infra.renew(call.proxy, self._subscription_id(call), lease)
        out = response(call.request)
        out.groups[0].attributes.append(Attribute.of("notify-lease-duration", Tag.INTEGER, lease))
        return out

    def cancel_subscription(self, call: InfraCall) -> IppMessage:
        """RFC 3995 §11.2.7."""
        self._infra.cancel_subscription(call.proxy, self._subscription_id(call))
        return response(call.request)

    def get_notifications(self, call: InfraCall) -> IppMessage:
        """RFC 3996 §5 Get-Notifications; notify-wait=true holds the answer (a long poll)."""
        ids = call.operation.get_ints("notify-subscription-ids")
        if not ids:
            raise IppStatusError(
                StatusCode.CLIENT_ERROR_BAD_REQUEST, "notify-subscription-ids is missing"
            )
        sequences = call.operation.get_ints("notify-sequence-numbers")
        wanted = [(sub, sequences[i] if i < len(sequences) else 1) for i, sub in enumerate(ids)]
        # notify-wait is served by the endpoint (`InfraEndpoint._long_poll`), which asks again
        # when events arrive without holding a worker thread meanwhile.
        events = self._infra.notifications(call.proxy, wanted)
        out = response(call.request)
        out.groups[0].attributes += [
            Attribute.of("notify-get-interval", Tag.INTEGER, NOTIFY_GET_INTERVAL_S),
            Attribute.of("printer-up-time", Tag.INTEGER, call.up_time),
        ]
        jobs: dict[int, InfraJobView] = {}
        for event in events:
            if event.job_id is not None and event.job_id not in jobs:
                try:
                    jobs[event.job_id] = self._infra.job(call.proxy, event.job_id)
                except CloudError:
                    continue
            out.add_group(Tag.EVENT_NOTIFICATION_ATTRIBUTES, *self._event_group(call, event, jobs))
        return out

    def _event_group(
        self, call: InfraCall, event: EventView, jobs: dict[int, InfraJobView]
    ) -> list[Attribute]:
        attrs = [
            Attribute.of("notify-charset", Tag.CHARSET, "utf-8"),
            Attribute.of("notify-natural-language", Tag.NATURAL_LANGUAGE, "en"),
            Attribute.of("notify-subscription-id", Tag.INTEGER, event.subscription_id),
            Attribute.of("notify-sequence-number", Tag.INTEGER, event.sequence),
            Attribute.of("notify-subscribed-event", Tag.KEYWORD, event.kind),
            Attribute.of("notify-printer-uri", Tag.URI, call.printer_uri),
            Attribute.of("notify-text", Tag.TEXT_WITHOUT_LANGUAGE, event.kind.replace("-", " ")),
            Attribute.of("printer-up-time", Tag.INTEGER, call.up_time),
        ]
        view = jobs.get(event.job_id) if event.job_id is not None else None
        if view is not None:
            attrs += [
                Attribute.of("job-id", Tag.INTEGER, view.job_id),
                Attribute.of("job-state", Tag.ENUM, int(job_state(view))),
                Attribute.of("job-state-reasons", Tag.KEYWORD, *job_state_reasons(view)),
            ]
        else:
            attrs += [
                Attribute.of("printer-state", Tag.ENUM, 3),
                Attribute.of("printer-state-reasons", Tag.KEYWORD, "none"),
                Attribute.of("printer-is-accepting-jobs", Tag.BOOLEAN, True),
            ]
        if event.user_data is not None:
            attrs.append(Attribute.of("notify-user-data", Tag.OCTET_STRING, event.user_data))
        return attrs


def _ended(view: InfraJobView) -> bool:
    return job_state(view).is_terminal


def _check(request: IppMessage) -> None:
    """RFC 8011 §4.1 plus a target: printer-uri (or system-uri for Register-Output-Device)."""
    validate_request(request)
    operation = request.groups[0]
    if not any(operation.get(n) is not None for n in ("printer-uri", "job-uri", "system-uri")):
        raise IppStatusError(StatusCode.CLIENT_ERROR_BAD_REQUEST, "printer-uri is missing")


class InfraEndpoint:
    """The HTTP side of the Infrastructure Printer."""

    def __init__(self, service: CloudService, infra: Infra, started_at: datetime) -> None:
        self._service = service
        self.infra = infra
        self.operations = InfraOperations(service, infra)
        self.started_at = started_at
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        infra.add_listener(self._changed)

    def _changed(self) -> None:
        for loop, event in list(self._waiters):
            loop.call_soon_threadsafe(event.set)

    async def _long_poll(self, call: InfraCall) -> Answer:
        """Get-Notifications with notify-wait: ask, and while there is nothing, wait for a change
        in this process (or one second, for changes made by other replicas) and ask again, up to
        `notify_wait_s`. Waiting holds no worker thread, so idle proxies cost no threads."""
        deadline = time.monotonic() + self.operations.notify_wait_s
        loop = asyncio.get_running_loop()
        while True:
            entry = (loop, asyncio.Event())
            self._waiters.add(entry)  # before asking: a change meanwhile is not missed
            try:
                answer = await to_thread.run_sync(self.operations.handle, call)
                remaining = deadline - time.monotonic()
                if not _empty_notifications(answer) or remaining <= 0:
                    return answer
                with anyio.move_on_after(min(remaining, 1.0)):
                    await entry[1].wait()
            finally:
                self._waiters.discard(entry)

    def _authenticate(self, request: Request, body: bytes) -> ProxyPrincipal:
        headers = request.headers
        if "signature" in headers:
            scope = request.scope
            raw_path = scope.get("raw_path") or scope["path"].encode()
            station = self._service.stations.authenticate(
                SignedHttpRequest(
                    method=request.method,
                    raw_path=raw_path.decode("latin-1").partition("?")[0],
                    raw_query=scope.get("query_string", b"").decode("latin-1"),
                    headers=headers,
                    body=body,
                )
            )
            return self.infra.for_station(station)
        scheme, _, value = headers.get("authorization", "").strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return self.infra.authenticate_token(value)
        if scheme.lower() == "basic" and value:
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise UnauthorizedError("malformed Basic credentials") from None
            return self.infra.authenticate_token(decoded.partition(":")[2])
        raise UnauthorizedError("credentials are required")

    async def handle(self, request: Request) -> Response:
        """Answer one POST to /ipp/infra."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/ipp":
            return Response("expected application/ipp\n", status_code=415)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_REQUEST_BYTES:
                return Response("request too large\n", status_code=413)
        try:
            proxy = await to_thread.run_sync(self._authenticate, request, bytes(body))
        except (UnauthorizedError, ContentDigestMismatchError):
            return Response(status_code=401, headers=_CHALLENGE)
        try:
            message, _ = decode_message(body)
        except IppError as exc:
            bare = IppMessage(0, int.from_bytes(body[4:8], "big") if len(body) >= 8 else 0, [])
            return _ipp(respond_error(bare, exc))
        try:
            _check(message)
        except Exception as exc:
            return _ipp(_translate(message, exc))
        call = InfraCall(
            message, proxy, _printer_uri(request), self._service.context.now(), self.started_at
        )
        code = message.operation_id_or_status_code
        if code == Operation.GET_NOTIFICATIONS and call.operation.get_bool("notify-wait"):
            answer = await self._long_poll(call)
        else:
            answer = await to_thread.run_sync(self.operations.handle, call)
        if isinstance(answer, IppMessage):
            return _ipp(answer)
        head, document = answer
        encoded = encode_message(head)
        return StreamingResponse(
            _with_head(encoded, document),
            media_type="application/ipp",
            headers={"Content-Length": str(len(encoded) + document.size_bytes)},
        )

    def router(self) -> APIRouter:
        """The route."""
        router = APIRouter(tags=["ipp"])
        router.add_api_route(INFRA_PATH, self.handle, methods=["POST"], include_in_schema=False)
        return router


def _empty_notifications(answer: Answer) -> bool:
    return (
        isinstance(answer, IppMessage)
        and answer.is_success
        and not answer.groups_of(Tag.EVENT_NOTIFICATION_ATTRIBUTES)
    )


def _with_head(head: bytes, document: PlainDocument) -> Iterator[bytes]:
    yield head
    yield from document


def _printer_uri(request: Request) -> str:
    secure = request.url.scheme == "https"
    return f"{'ipps' if secure else 'ipp'}://{request.url.netloc}{INFRA_PATH}"


def _ipp(message: IppMessage) -> Response:
    return Response(content=encode_message(message), media_type="application/ipp")


def install_infra(app: FastAPI, service: CloudService, started_at: datetime) -> InfraEndpoint:
    """Mount the Infrastructure Printer and the station's infra release route on `app`."""
    infra = Infra(service.context, service.releases)
    endpoint = InfraEndpoint(service, infra, started_at)
    app.include_router(endpoint.router())
    app.include_router(infra_release_router())
    app.state.infra = endpoint
    return endpoint
