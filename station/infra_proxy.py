"""The station as an IPP INFRA Proxy (PWG 5100.18): it pulls released jobs for its printer.

In "infra" delivery mode the cloud is the Infrastructure Printer and this module is the Proxy
for the local printer (its Output Device), speaking the standard operations on the same codec
(`hardware.ipp.codec`) that every other IPP peer of the project uses:

1. `register()`: Register-Output-Device (PWG 5100.22) with a stable `output-device-uuid`,
   Update-Output-Device-Attributes with what the local printer reports, and
   Create-Printer-Subscriptions (ippget: job-fetchable, job-state-changed);
2. `poll(wait=True)`: Get-Notifications with notify-wait (a long poll), then Get-Jobs
   `which-jobs=fetchable`, which also catches up after a restart or a missed event;
3. per job: Fetch-Job -> Acknowledge-Job -> Update-Job-Status(processing) -> Fetch-Document ->
   Acknowledge-Document -> deliver to the local printer through the existing transports
   (`hardware.printers`) -> Update-Document-Status -> Update-Job-Status(completed | aborted).

Rules kept from station pull:

* nothing is sent to the printer before the whole document has arrived: the document is spooled
  first and only a transfer of exactly the announced length is printed. The spool holds no
  plaintext: each document is re-encrypted on the way in (`cloud.container`, with a key that
  lives only in memory for that one job) and decrypted on the way to the printer;
* the local printer job is named after the release (the job-uuid), so after a crash
  `recover()` asks the printer whether it already has the job before sending it again: an
  acknowledged job is never printed twice;
* "completed" is reported only when the printer said the job completed; a printer that refused
  or aborted the job gives it back (aborted), and the cloud returns it to its owner's held list.

Authentication: a paired station signs each IPP request (RFC 9421, `station.signing`); a device
token (`ppd_...`, issued by an admin) is sent as a Bearer token instead where there is no key.
Documents, tokens and keys never reach a log.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from cloud.container import Decryptor, Encryptor, new_data_key
from hardware.errors import PrinterError, PrinterUnreachableError
from hardware.ipp.codec import (
    Attribute,
    AttributeGroup,
    IppError,
    IppMessage,
    IppTruncatedError,
    decode_message,
    encode_message,
)
from hardware.ipp.enums import JobState, Operation, StatusCode, Tag
from hardware.printers.transport import PrinterTransport, PrintJob
from station.cloud_http import CloudHttp, Response, Signer, chunks, finish
from station.errors import CloudError, CloudRejectedError, CloudUnreachableError, StationError

log = logging.getLogger(__name__)

SUBSCRIBED_EVENTS = ("job-fetchable", "job-state-changed")
_CHUNK = 64 * 1024
# What of the local printer is republished to the Infrastructure Printer.
REPORTED_ATTRIBUTES = (
    "printer-make-and-model",
    "printer-state",
    "printer-state-reasons",
    "document-format-supported",
    "sides-supported",
    "print-color-mode-supported",
    "media-supported",
    "media-ready",
    "copies-supported",
    "printer-uuid",
)


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class InfraProxyError(StationError):
    """The Infrastructure Printer answered an INFRA request with an error status."""

    def __init__(self, operation: str, status: int, message: str | None) -> None:
        super().__init__(
            f"{operation}: status 0x{status:04x}" + (f" ({message})" if message else "")
        )
        self.status = status


@dataclass(frozen=True, slots=True)
class FetchedJob:
    """What Fetch-Job told about a job."""

    job_id: int
    name: str
    release_id: str  # from job-uuid: names the printer job, for recovery
    user_name: str
    document_format: str
    copies: int


@dataclass(slots=True)
class ProxyReport:
    """What one poll did."""

    printed: list[int]
    failed: list[int]


class InfraClient:
    """Sends IPP requests to the Infrastructure Printer (`ipp://host:port/ipp/infra`)."""

    def __init__(
        self,
        infra_uri: str,
        *,
        auth: Signer | None = None,
        token: str | None = None,
        timeout_s: float = 30.0,
        ca_certs: str | None = None,
    ) -> None:
        """`auth` signs requests (a station's `SignatureAuth`); or `token` is a device token."""
        parts = urlsplit(infra_uri)
        if parts.scheme not in ("ipp", "ipps", "http", "https") or not parts.hostname:
            raise ValueError(f"not an infrastructure printer URI: {infra_uri!r}")
        http = "https" if parts.scheme in ("ipps", "https") else "http"
        self.printer_uri = urlunsplit(
            ("ipps" if http == "https" else "ipp", parts.netloc, parts.path, "", "")
        )
        self._path = parts.path or "/"
        headers = {"Content-Type": "application/ipp"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self._timeout_s = timeout_s
        self._http = CloudHttp(
            urlunsplit((http, parts.netloc, "", "", "")),
            timeout_s=timeout_s,
            signer=auth,
            headers=headers,
            ca_certs=ca_certs,
        )
        self._ids = itertools.count(1)

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def request(
        self, operation: Operation, *attributes: Attribute, groups: tuple[AttributeGroup, ...] = ()
    ) -> IppMessage:
        """Build a request: charset, language, printer-uri, `attributes`, then `groups`."""
        message = IppMessage.request(
            operation,
            next(self._ids),
            Attribute.of("printer-uri", Tag.URI, self.printer_uri),
            Attribute.of("requesting-user-name", Tag.NAME_WITHOUT_LANGUAGE, "pullprint-proxy"),
            *attributes,
        )
        message.groups.extend(groups)
        return message

    def _post(self, message: IppMessage, *, stream: bool, timeout_s: float) -> Response:
        try:
            reply = self._http.request(
                "POST",
                self._path,
                body=encode_message(message),
                stream=stream,
                read_timeout_s=timeout_s,
            )
        except CloudError as exc:
            # Whatever kept the answer away: the proxy waits and tries again (`run`).
            cause = exc.__cause__ or exc
            raise CloudUnreachableError(f"infrastructure printer: {type(cause).__name__}") from exc
        if reply.status != 200:
            finish(reply)
            raise CloudRejectedError(
                f"HTTP {reply.status} from /ipp/infra",
                status=reply.status,
                code=None,
                detail=None,
            )
        return reply

    def call(
        self,
        operation: Operation,
        *attributes: Attribute,
        groups: tuple[AttributeGroup, ...] = (),
        timeout_s: float | None = None,
        ok: tuple[int, ...] = (),
    ) -> IppMessage:
        """Send one request; raise `InfraProxyError` unless it succeeded (or its status is in
        `ok`)."""
        message = self.request(operation, *attributes, groups=groups)
        reply = self._post(message, stream=False, timeout_s=timeout_s or self._timeout_s)
        try:
            answer, _ = decode_message(reply.data)
        except IppError as exc:
            raise CloudRejectedError(
                "invalid IPP answer", status=200, code=None, detail=str(exc)
            ) from exc
        _raise_unless_ok(operation, answer, ok)
        return answer

    def fetch_document(self, *attributes: Attribute, spool: _Sink) -> tuple[IppMessage, int]:
        """Fetch-Document, spooling the data after the header through `spool`; returns the
        response and how many document bytes arrived (the caller checks them against the
        Content-Length)."""
        message = self.request(Operation.FETCH_DOCUMENT, *attributes)
        reply = self._post(message, stream=True, timeout_s=self._timeout_s)
        try:
            length = int(reply.headers.get("content-length", "-1"))
            stream = chunks(reply, _CHUNK)
            buffer = bytearray()
            header: IppMessage | None = None
            used = 0
            for chunk in stream:
                buffer += chunk
                try:
                    header, used = decode_message(buffer)
                except IppTruncatedError:
                    continue
                break
            if header is None:
                header, used = decode_message(buffer)  # raises: the answer was cut short
            _raise_unless_ok(Operation.FETCH_DOCUMENT, header, ())
            received = len(buffer) - used
            spool.write(bytes(buffer[used:]))
            for chunk in stream:
                received += len(chunk)
                spool.write(chunk)
            if length >= 0 and used + received != length:
                raise CloudUnreachableError("the document transfer was cut short")
            return header, received
        except CloudUnreachableError as exc:
            raise CloudUnreachableError("the document transfer was cut short") from exc
        except IppError as exc:
            raise CloudRejectedError(
                "invalid IPP answer", status=200, code=None, detail=str(exc)
            ) from exc
        finally:
            finish(reply)


def _raise_unless_ok(operation: Operation, answer: IppMessage, ok: tuple[int, ...]) -> None:
    status = answer.operation_id_or_status_code
    if answer.is_success or status in ok:
        return
    message = answer.get_str(Tag.OPERATION_ATTRIBUTES, "status-message")
    raise InfraProxyError(operation.name, status, message)


class _SealedSpool:
    """A spool file holding one document re-encrypted under a key kept only in memory."""

    def __init__(self, spool_dir: Path) -> None:
        self._key = new_data_key()
        self._id = uuid.uuid4()
        self._encryptor = Encryptor(self._key, self._id, "proxy")
        fd, name = tempfile.mkstemp(prefix="infra-", suffix=".spool", dir=spool_dir)
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._file.write(self._encryptor.header)
        self.plaintext_bytes = 0

    def write(self, data: bytes) -> int:
        self.plaintext_bytes += len(data)
        self._file.write(self._encryptor.update(data))
        return len(data)

    def seal(self) -> None:
        self._file.write(self._encryptor.finalize())
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def __iter__(self) -> Iterator[bytes]:
        decryptor = Decryptor(self._key, self._id, "proxy")
        with self.path.open("rb") as source:
            while chunk := source.read(_CHUNK):
                if plain := decryptor.update(chunk):
                    yield plain
        if plain := decryptor.finalize():
            yield plain

    def remove(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


class InfraProxy:
    """The Proxy for one local printer; `run()` in a thread, or `poll()` step by step."""

    def __init__(
        self,
        client: InfraClient,
        printer: PrinterTransport,
        spool_dir: Path,
        output_device_uuid: str,
        *,
        notify_wait: bool = True,
    ) -> None:
        self._client = client
        self._printer = printer
        self._spool_dir = spool_dir
        self.device_uuid = output_device_uuid
        self._notify_wait = notify_wait
        self._subscription: int | None = None
        self._sequence = 1
        self.printed: list[int] = []

    def _device(self) -> Attribute:
        return Attribute.of("output-device-uuid", Tag.URI, self.device_uuid)

    def _job(self, job_id: int) -> Attribute:
        return Attribute.of("job-id", Tag.INTEGER, job_id)

    # --- registration ---

    def register(self) -> None:
        """Register the Output Device, report the printer's attributes, subscribe to events."""
        client = self._client
        client.call(
            Operation.REGISTER_OUTPUT_DEVICE,
            Attribute.of("system-uri", Tag.URI, client.printer_uri),
            self._device(),
        )
        client.call(
            Operation.UPDATE_OUTPUT_DEVICE_ATTRIBUTES,
            self._device(),
            groups=(AttributeGroup(Tag.PRINTER_ATTRIBUTES, self._printer_attributes()),),
        )
        self._subscribe()

    def _printer_attributes(self) -> list[Attribute]:
        query = getattr(self._printer, "printer_attributes", None)
        if query is None:
            return [Attribute.of("printer-state", Tag.ENUM, 3)]  # a RAW printer says nothing
        try:
            group: AttributeGroup = query(*REPORTED_ATTRIBUTES)
        except PrinterError as exc:
            log.warning("the local printer did not answer for its attributes: %s", exc.reason)
            return [Attribute.of("printer-state", Tag.ENUM, 5)]
        return list(group.attributes)

    def _subscribe(self) -> None:
        answer = self._client.call(
            Operation.CREATE_PRINTER_SUBSCRIPTIONS,
            self._device(),
            groups=(
                AttributeGroup(
                    Tag.SUBSCRIPTION_ATTRIBUTES,
                    [
                        Attribute.of("notify-pull-method", Tag.KEYWORD, "ippget"),
                        Attribute.of("notify-events", Tag.KEYWORD, *SUBSCRIBED_EVENTS),
                        Attribute.of("notify-lease-duration", Tag.INTEGER, 0),
                    ],
                ),
            ),
        )
        sub = answer.get_int(Tag.SUBSCRIPTION_ATTRIBUTES, "notify-subscription-id")
        self._subscription = sub
        self._sequence = 1

    def deregister(self) -> None:
        """Deregister-Output-Device: jobs not yet taken go back to their owners."""
        self._client.call(Operation.DEREGISTER_OUTPUT_DEVICE, self._device())

    # --- finding work ---

    def wait_for_events(self, timeout_s: float = 60.0) -> int:
        """Get-Notifications (a long poll with notify-wait); returns how many events arrived.

        A subscription the cloud no longer knows (it restarted and lost nothing but the
        subscription, or it was canceled) is made again (IPP-NOTES).
        """
        if self._subscription is None:
            self._subscribe()
        assert self._subscription is not None
        attrs = [
            Attribute.of("notify-subscription-ids", Tag.INTEGER, self._subscription),
            Attribute.of("notify-sequence-numbers", Tag.INTEGER, self._sequence),
            Attribute.of("notify-wait", Tag.BOOLEAN, self._notify_wait),
        ]
        answer = self._client.call(
            Operation.GET_NOTIFICATIONS,
            *attrs,
            timeout_s=timeout_s,  # longer than the server holds a long poll (20 s)
            ok=(StatusCode.CLIENT_ERROR_NOT_FOUND,),
        )
        if answer.operation_id_or_status_code == StatusCode.CLIENT_ERROR_NOT_FOUND:
            self._subscription = None
            return 0
        events = answer.groups_of(Tag.EVENT_NOTIFICATION_ATTRIBUTES)
        for event in events:
            sequence = event.get_int("notify-sequence-number")
            if sequence is not None:
                self._sequence = max(self._sequence, sequence + 1)
        return len(events)

    def fetchable(self) -> list[int]:
        """Get-Jobs which-jobs=fetchable: the job-ids waiting for this device."""
        answer = self._client.call(
            Operation.GET_JOBS,
            Attribute.of("which-jobs", Tag.KEYWORD, "fetchable"),
            Attribute.of("requested-attributes", Tag.KEYWORD, "job-id", "job-state"),
            self._device(),
        )
        ids = [g.get_int("job-id") for g in answer.groups_of(Tag.JOB_ATTRIBUTES)]
        return [i for i in ids if i is not None]

    def poll(self, *, wait: bool = False, timeout_s: float = 60.0) -> ProxyReport:
        """One round: (optionally) wait for events, then process every fetchable job."""
        if wait:
            self.wait_for_events(timeout_s)
        report = ProxyReport([], [])
        for job_id in self.fetchable():
            if self.process(job_id):
                report.printed.append(job_id)
            else:
                report.failed.append(job_id)
        return report

    def recover(self) -> ProxyReport:
        """After a restart: settle the jobs this device took but never finished.

        The local printer is asked for the job by name (the release id) first: one that it
        completed is reported completed without printing it again; one it still holds is left
        to finish; one it never got is fetched and printed again.
        """
        report = ProxyReport([], [])
        answer = self._client.call(
            Operation.GET_JOBS,
            Attribute.of("which-jobs", Tag.KEYWORD, "not-completed"),
            Attribute.of("requested-attributes", Tag.KEYWORD, "job-id", "job-state", "job-uuid"),
            self._device(),
        )
        for group in answer.groups_of(Tag.JOB_ATTRIBUTES):
            job_id, state = group.get_int("job-id"), group.get_int("job-state")
            if job_id is None or state != JobState.PROCESSING:
                continue  # fetchable ones are picked up by poll()
            name = _release_id(group.get_str("job-uuid"))
            outcome = self._local_outcome(name)
            if outcome == "completed":
                self._job_status(job_id, JobState.COMPLETED)
                report.printed.append(job_id)
            elif outcome in ("absent", "failed") and self._print(job_id, self._refetch(job_id)):
                report.printed.append(job_id)
            elif outcome != "pending":
                report.failed.append(job_id)
        return report

    def _local_outcome(self, job_name: str) -> str:
        ask = getattr(self._printer, "job_outcome", None)
        if ask is None:
            return "unknown"  # RAW: no way to tell; the lease decides (no blind reprint)
        try:
            return str(ask(job_name))
        except PrinterError:
            return "unknown"

    # --- one job ---

    def process(self, job_id: int) -> bool:
        """Fetch, acknowledge and print one job; True if the printer completed it."""
        client = self._client
        try:
            answer = client.call(Operation.FETCH_JOB, self._job(job_id), self._device())
        except InfraProxyError as exc:
            if exc.status == StatusCode.CLIENT_ERROR_NOT_FETCHABLE:
                return False  # taken, ended or expired meanwhile: nothing to do
            raise
        job = _fetched(job_id, answer)
        client.call(Operation.ACKNOWLEDGE_JOB, self._job(job_id), self._device())
        return self._print(job_id, job)

    def _refetch(self, job_id: int) -> FetchedJob:
        answer = self._client.call(Operation.GET_JOB_ATTRIBUTES, self._job(job_id), self._device())
        return _fetched(job_id, answer)

    def _print(self, job_id: int, job: FetchedJob) -> bool:
        client = self._client
        self._job_status(job_id, JobState.PROCESSING)
        spool = _SealedSpool(self._spool_dir)
        try:
            try:
                client.fetch_document(
                    self._job(job_id),
                    Attribute.of("document-number", Tag.INTEGER, 1),
                    self._device(),
                    spool=spool,
                )
                spool.seal()
            except (CloudUnreachableError, CloudRejectedError, InfraProxyError) as exc:
                log.warning("infra job %d: the document could not be fetched: %s", job_id, exc)
                self._ack_document(job_id, StatusCode.CLIENT_ERROR_DOCUMENT_ACCESS_ERROR)
                return False
            self._ack_document(job_id, None)
            try:
                result = self._printer.deliver(
                    PrintJob(job.release_id, job.user_name, job.document_format, job.copies),
                    spool,
                )
            except PrinterUnreachableError as exc:
                # The printer may hold the job: do not give it back (it could print twice);
                # recover() asks the printer later, and the release lease bounds the wait.
                log.warning("infra job %d: printer unreachable mid-job: %s", job_id, exc.reason)
                return False
            except PrinterError as exc:
                self._document_status(job_id, JobState.ABORTED)
                self._job_status(job_id, JobState.ABORTED, exc.reason)
                log.info("infra job %d: the printer refused it: %s", job_id, exc.reason)
                return False
            self._document_status(job_id, JobState.COMPLETED)
            self._job_status(job_id, JobState.COMPLETED, impressions=result.impressions)
            self.printed.append(job_id)
            log.info("infra job %d printed as printer job %s", job_id, result.printer_job_id)
            return True
        finally:
            spool.remove()

    def _ack_document(self, job_id: int, error: StatusCode | None) -> None:
        attrs = [self._job(job_id), Attribute.of("document-number", Tag.INTEGER, 1), self._device()]
        if error is not None:
            attrs.append(Attribute.of("fetch-status-code", Tag.ENUM, int(error)))
        self._client.call(Operation.ACKNOWLEDGE_DOCUMENT, *attrs)

    def _document_status(self, job_id: int, state: JobState) -> None:
        self._client.call(
            Operation.UPDATE_DOCUMENT_STATUS,
            self._job(job_id),
            Attribute.of("document-number", Tag.INTEGER, 1),
            self._device(),
            groups=(
                AttributeGroup(
                    Tag.DOCUMENT_ATTRIBUTES,
                    [Attribute.of("output-device-document-state", Tag.ENUM, int(state))],
                ),
            ),
        )

    def _job_status(
        self,
        job_id: int,
        state: JobState,
        message: str | None = None,
        *,
        impressions: int | None = None,
    ) -> None:
        attrs = [Attribute.of("output-device-job-state", Tag.ENUM, int(state))]
        if message:
            attrs.append(
                Attribute.of("output-device-job-state-message", Tag.TEXT_WITHOUT_LANGUAGE, message)
            )
        if impressions is not None:
            attrs.append(Attribute.of("job-impressions-completed", Tag.INTEGER, impressions))
        self._client.call(
            Operation.UPDATE_JOB_STATUS,
            self._job(job_id),
            self._device(),
            groups=(AttributeGroup(Tag.JOB_ATTRIBUTES, attrs),),
        )

    # --- running ---

    def run(self, stop: threading.Event, *, timeout_s: float = 60.0, retry_s: float = 5.0) -> None:
        """Register, recover, then poll until `stop` is set; cloud outages are waited out."""
        registered = False
        while not stop.is_set():
            try:
                if not registered:
                    self.register()
                    self.recover()
                    registered = True
                self.poll(wait=True, timeout_s=timeout_s)
            except (StationError, PrinterError) as exc:
                log.warning("INFRA proxy: %s; trying again in %.0f s", exc, retry_s)
                registered = registered and not isinstance(exc, InfraProxyError)
                stop.wait(retry_s)


def _release_id(job_uuid: str | None) -> str:
    if job_uuid and job_uuid.startswith("urn:uuid:"):
        return job_uuid[len("urn:uuid:") :]
    return job_uuid or ""


def _fetched(job_id: int, answer: IppMessage) -> FetchedJob:
    group = answer.group(Tag.JOB_ATTRIBUTES) or AttributeGroup(Tag.JOB_ATTRIBUTES)
    release_id = _release_id(group.get_str("job-uuid")) or f"infra-{job_id}"
    return FetchedJob(
        job_id=job_id,
        name=group.get_str("job-name") or "untitled",
        release_id=release_id,
        user_name=group.get_str("job-originating-user-name") or "pullprint",
        document_format=group.get_str("document-format") or "application/octet-stream",
        copies=group.get_int("copies") or 1,
    )
