"""IPP INFRA (PWG 5100.18) domain: output devices, the jobs they may fetch, events, subscriptions.

The cloud is the Infrastructure Printer; a Proxy (a paired station acting for the printer beside
it, or a cloud-aware printer holding an admin-issued token) pulls work for its Output Device.

Invariants:

* a job is fetchable by an Output Device only after its owner authorised the release at the
  station of that device's printer (`release()`, called with the station's open session): the
  release row, made by `cloud.releases.Releases.create`, stays the truth, and its lease applies;
* fetch life (`InfraJob.state`): fetchable -> fetched -> acknowledged -> processing ->
  completed | aborted | canceled. Fetch-Job renews the release lease and moves it to delivering;
  a completed Update-Job-Status reports the release printed (content destroyed), an aborted or
  canceled one reports it failed (the job returns to the held list). Each step is a
  compare-and-set; a repeated report is answered the same and changes nothing, so nothing prints
  twice;
* every query names the caller's site and device: one device never sees another's jobs;
* Fetch-Document needs the cloud to unwrap the job's data key with its master key: a
  zero-knowledge site (data keys wrapped to the site key, which the cloud never holds) cannot be
  served to cloud-aware printers; its stations deliver as usual (station pull);
* device tokens (`ppd_<id>.<secret>`) are stored as HMAC(pepper) only and compared in constant
  time; neither tokens nor document content reach a log.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.container import ContainerError, Decryptor, unwrap_key
from cloud.context import ServiceContext
from cloud.db import (
    InfraDevice,
    InfraEvent,
    InfraJob,
    InfraSubscription,
    Job,
    Release,
    Station,
    User,
)
from cloud.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ReleaseConflictError,
    StationNotFoundError,
    UnauthorizedError,
)
from cloud.identity import StationPrincipal
from cloud.releases import CONTENT_CHUNK_BYTES, Releases
from cloud.states import RELEASE_ACTIVE, ReleaseState

log = logging.getLogger(__name__)

TOKEN_PREFIX = "ppd_"  # noqa: S105 (a prefix, not a secret)
_DUMMY_HASH = "0" * 64
MAX_ATTRIBUTES_BYTES = 256 * 1024  # what Update-Output-Device-Attributes may store
EVENT_RETENTION = timedelta(days=1)
MAX_EVENTS_RETURNED = 100

FETCHABLE = "fetchable"
FETCHED = "fetched"
ACKNOWLEDGED = "acknowledged"
PROCESSING = "processing"
COMPLETED = "completed"
ABORTED = "aborted"
CANCELED = "canceled"
TERMINAL = frozenset({COMPLETED, ABORTED, CANCELED})
IN_PROGRESS = frozenset({FETCHED, ACKNOWLEDGED, PROCESSING})

# RFC 3995 §5.3.3 and PWG 5100.18 §5.3: "none" subscribes to nothing; printer-stopped is never
# sent (the Infrastructure Printer does not stop) but may be subscribed to.
EVENTS_SUPPORTED = (
    "none",
    "job-created",
    "job-fetchable",
    "job-state-changed",
    "job-completed",
    "printer-config-changed",
    "printer-state-changed",
    "printer-stopped",
)
MAX_USER_DATA = 63  # RFC 3995 §5.3.2: notify-user-data is at most 63 octets


class OutputDeviceNotFoundError(NotFoundError):
    """No registered Output Device for this printer, or not this caller's."""

    code = "output-device-not-found"
    title = "Output device not found"


class OutputDeviceMismatchError(UnauthorizedError):
    """The request names another Output Device than the caller's credentials."""

    code = "output-device-mismatch"
    title = "Output device mismatch"


class InfraJobNotFoundError(NotFoundError):
    """No such job for this Output Device."""

    code = "infra-job-not-found"
    title = "Job not found"


class NotFetchableError(ConflictError):
    """The job is not (or no longer) fetchable by this Output Device."""

    code = "not-fetchable"
    title = "Job not fetchable"


class DocumentUnavailableError(ConflictError):
    """The cloud cannot serve the document (destroyed, or a key the cloud cannot unwrap)."""

    code = "document-unavailable"
    title = "Document unavailable"


class SubscriptionNotFoundError(NotFoundError):
    """No such subscription for this Output Device."""

    code = "subscription-not-found"
    title = "Subscription not found"


@dataclass(frozen=True, slots=True)
class ProxyPrincipal:
    """An authenticated Proxy: the station of its printer, and its device once it has one."""

    site: str
    station: StationPrincipal
    device_id: uuid.UUID | None
    via: str  # "signature" (a paired station) or "token" (an admin-issued device token)


@dataclass(frozen=True, slots=True)
class IssuedDeviceToken:
    """A device token, shown exactly once."""

    device_id: uuid.UUID
    station_id: uuid.UUID
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class DeviceView:
    """An Output Device as the Infrastructure Printer knows it."""

    id: uuid.UUID
    site: str
    station_id: uuid.UUID
    name: str
    output_device_uuid: str | None
    registered: bool
    attributes: bytes | None


@dataclass(frozen=True, slots=True)
class InfraJobView:
    """A job as its Output Device sees it."""

    job_id: int
    release_id: uuid.UUID
    cloud_job_id: uuid.UUID
    name: str
    document_format: str
    copies: int
    sides: str | None
    color_mode: str | None
    size_bytes: int
    user_name: str
    state: str
    release_state: str
    document_state: str | None
    impressions: int | None
    output_device_uuid: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def fetchable(self) -> bool:
        """True while the device may still fetch it."""
        return self.state == FETCHABLE and self.release_state in RELEASE_ACTIVE


@dataclass(frozen=True, slots=True)
class InfraReleaseView:
    """A release made in infra delivery mode."""

    release_id: uuid.UUID
    cloud_job_id: uuid.UUID
    infra_job_id: int


@dataclass(frozen=True, slots=True)
class EventView:
    """One event for a subscription."""

    sequence: int
    subscription_id: int
    kind: str
    job_id: int | None
    at: datetime
    user_data: bytes | None = None  # the subscription's notify-user-data, echoed


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """A subscription (lease 0: until canceled)."""

    id: int
    events: tuple[str, ...]
    expires_at: datetime | None
    user_data: bytes | None = None
    subscriber: str = ""
    lease_s: int = 0


def _sub_view(row: InfraSubscription) -> SubscriptionView:
    lease = 0
    if row.expires_at is not None:
        lease = max(1, int((row.expires_at - row.created_at).total_seconds()))
    return SubscriptionView(
        row.id, tuple(row.events.split(",")), row.expires_at, row.user_data, row.subscriber, lease
    )


class PlainDocument:
    """The decrypted document of an infra job, authenticated in full before the first byte.

    Like the station's verify-then-print, a damaged container yields no byte: `open_document`
    runs one authenticating pass over the whole container (constant memory) before this is
    returned; iterating decrypts it again chunk by chunk.
    """

    def __init__(
        self, data_key: bytes, job_id: uuid.UUID, site: str, blob: Any, size_bytes: int
    ) -> None:
        self._key = data_key
        self._job_id = job_id
        self._site = site
        self._blob = blob
        self.size_bytes = size_bytes

    def __iter__(self) -> Iterator[bytes]:
        try:
            self._blob.seek(0)
            decryptor = Decryptor(self._key, self._job_id, self._site)
            while chunk := self._blob.read(CONTENT_CHUNK_BYTES):
                if plain := decryptor.update(chunk):
                    yield plain
            if plain := decryptor.finalize():
                yield plain
        finally:
            self._blob.close()

    def close(self) -> None:
        """Close the blob if the reader gives up."""
        self._blob.close()


def _cas(db: Session, statement: Any) -> bool:
    return cast("CursorResult[Any]", db.execute(statement)).rowcount == 1


class Infra:
    """The Infrastructure Printer's state: devices, fetchable jobs, events, subscriptions."""

    def __init__(self, ctx: ServiceContext, releases: Releases) -> None:
        self._ctx = ctx
        self._releases = releases
        self._changed = threading.Condition()  # wakes long polls in this process
        self._listeners: list[Callable[[], None]] = []

    # --- devices and credentials ---

    def _hash(self, secret: str) -> str:
        return self._ctx.keyed_hash(b"infra-device/v1|" + secret.encode())

    def issue_token(self, site: str, station_id: uuid.UUID) -> IssuedDeviceToken:
        """Issue (or reissue, revoking the previous) the device token for a station's printer.

        Raises:
            StationNotFoundError: no such (unrevoked) station in `site`.
        """
        ctx = self._ctx
        secret = secrets.token_urlsafe(32)
        with ctx.write() as db:
            station = db.scalar(
                select(Station).where(Station.id == station_id, Station.site == site)
            )
            if station is None or station.revoked_at is not None:
                raise StationNotFoundError("no such station")
            device = db.scalar(select(InfraDevice).where(InfraDevice.station_id == station_id))
            if device is None:
                device = InfraDevice(
                    id=uuid.uuid4(),
                    site=site,
                    station_id=station_id,
                    name=station.name,
                    created_at=ctx.now(),
                )
                db.add(device)
            device.token_hash = self._hash(secret)
            device.revoked_at = None
            ctx.audit(db, "infra-token-issued", station_id=station_id, site=site)
            device_id = device.id
        log.info("issued an INFRA device token for station %s", station_id)
        return IssuedDeviceToken(device_id, station_id, f"{TOKEN_PREFIX}{device_id.hex}.{secret}")

    def revoke(self, site: str, station_id: uuid.UUID) -> None:
        """Revoke a station's Output Device at once (token and registration)."""
        with self._ctx.write() as db:
            device = db.scalar(
                select(InfraDevice).where(
                    InfraDevice.station_id == station_id, InfraDevice.site == site
                )
            )
            if device is None:
                raise OutputDeviceNotFoundError("no output device for this station")
            device.revoked_at = self._ctx.now()
            device.token_hash = None
            self._ctx.audit(db, "infra-device-revoked", station_id=station_id, site=site)

    def authenticate_token(self, token: str) -> ProxyPrincipal:
        """Resolve a device token; constant-time, and the same work for unknown ids.

        Raises:
            UnauthorizedError: malformed, unknown, revoked or wrong.
        """
        presented = self._hash(token.partition(".")[2]) if "." in token else _DUMMY_HASH
        device_id: uuid.UUID | None = None
        if token.startswith(TOKEN_PREFIX):
            try:
                device_id = uuid.UUID(hex=token[len(TOKEN_PREFIX) :].partition(".")[0])
            except ValueError:
                device_id = None
        with self._ctx.read() as db:
            row = None if device_id is None else db.get(InfraDevice, device_id)
            stored = row.token_hash if row is not None and row.token_hash else _DUMMY_HASH
            good = hmac.compare_digest(presented, stored) and stored != _DUMMY_HASH
            if row is None or not good or row.revoked_at is not None:
                raise UnauthorizedError("invalid output device credentials")
            station = db.get(Station, row.station_id)
            if station is None or station.revoked_at is not None:
                raise UnauthorizedError("the printer's station has been revoked")
            principal = StationPrincipal(
                station.id, station.site, station.name, station.printer_uri
            )
            return ProxyPrincipal(row.site, principal, row.id, "token")

    def for_station(self, station: StationPrincipal) -> ProxyPrincipal:
        """The Proxy principal of a paired station (signed requests)."""
        with self._ctx.read() as db:
            device = db.scalar(
                select(InfraDevice).where(
                    InfraDevice.station_id == station.id, InfraDevice.site == station.site
                )
            )
            revoked = device is not None and device.revoked_at is not None
            if revoked:
                raise UnauthorizedError("this output device has been revoked")
            return ProxyPrincipal(
                station.site, station, None if device is None else device.id, "signature"
            )

    def _device(self, db: Session, proxy: ProxyPrincipal, uuid_named: str | None) -> InfraDevice:
        """The caller's registered, unrevoked device; `uuid_named` must be its uuid if given."""
        if proxy.device_id is None:
            raise OutputDeviceNotFoundError("register the output device first")
        device = db.scalar(
            select(InfraDevice).where(
                InfraDevice.id == proxy.device_id, InfraDevice.site == proxy.site
            )
        )
        if device is None or device.revoked_at is not None:
            raise OutputDeviceNotFoundError("no such output device")
        if device.output_device_uuid is None or device.deregistered_at is not None:
            raise OutputDeviceNotFoundError("register the output device first")
        if uuid_named is not None and uuid_named.lower() != device.output_device_uuid:
            raise OutputDeviceMismatchError("output-device-uuid is not this proxy's device")
        return device

    def register(self, proxy: ProxyPrincipal, output_device_uuid: str) -> DeviceView:
        """Register-Output-Device: bind the uuid to the caller's device (creating it for a station).

        Raises:
            InvalidRequestError: the uuid is not a `urn:uuid:` URI.
            ConflictError: another device of the site already uses this uuid.
        """
        named = _normalise_uuid(output_device_uuid)
        ctx = self._ctx
        now = ctx.now()
        try:
            with ctx.write() as db:
                device = None
                if proxy.device_id is not None:
                    device = db.scalar(
                        select(InfraDevice).where(
                            InfraDevice.id == proxy.device_id, InfraDevice.site == proxy.site
                        )
                    )
                if device is None:
                    device = InfraDevice(
                        id=uuid.uuid4(),
                        site=proxy.site,
                        station_id=proxy.station.id,
                        name=proxy.station.name,
                        created_at=now,
                    )
                    db.add(device)
                if device.revoked_at is not None:
                    raise OutputDeviceNotFoundError("this output device has been revoked")
                device.output_device_uuid = named
                device.registered_at = device.registered_at or now
                device.deregistered_at = None
                device.last_seen_at = now
                ctx.audit(
                    db, "infra-device-registered", station_id=proxy.station.id, site=proxy.site
                )
                db.flush()
                view = _device_view(device)
        except IntegrityError:
            raise ConflictError("another output device of this site uses this uuid") from None
        self._wake()
        return view

    def device(self, proxy: ProxyPrincipal, uuid_named: str | None = None) -> DeviceView:
        """The caller's registered device (Get-Output-Device-Attributes)."""
        with self._ctx.read() as db:
            return _device_view(self._device(db, proxy, uuid_named))

    def update_attributes(
        self, proxy: ProxyPrincipal, uuid_named: str | None, encoded: bytes
    ) -> DeviceView:
        """Update-Output-Device-Attributes: keep the printer attributes as reported."""
        if len(encoded) > MAX_ATTRIBUTES_BYTES:
            raise InvalidRequestError("too many output device attributes")
        with self._ctx.write() as db:
            device = self._device(db, proxy, uuid_named)
            device.attributes = encoded
            device.last_seen_at = self._ctx.now()
            self._event(db, device, "printer-config-changed", None)
            self._event(db, device, "printer-state-changed", None)
            view = _device_view(device)
        self._wake()
        return view

    def deregister(self, proxy: ProxyPrincipal, uuid_named: str | None) -> int:
        """Deregister-Output-Device: jobs it had not started go back to their owners' held lists.

        Returns how many releases were failed.
        """
        with self._ctx.write() as db:
            device = self._device(db, proxy, uuid_named)
            device.deregistered_at = self._ctx.now()
            pending = list(
                db.scalars(
                    select(InfraJob).where(
                        InfraJob.device_id == device.id,
                        InfraJob.site == proxy.site,
                        InfraJob.state.in_([FETCHABLE, FETCHED]),
                    )
                )
            )
            for row in pending:
                row.state = CANCELED
                row.updated_at = self._ctx.now()
            release_ids = [row.release_id for row in pending]
        failed = 0
        for release_id in release_ids:
            try:
                self._releases.report_outcome(
                    proxy.station, release_id, ReleaseState.FAILED, "output device deregistered"
                )
                failed += 1
            except ReleaseConflictError:
                pass  # finished meanwhile (lease expired): the job is already back
        return failed

    # --- releases in infra delivery mode ---

    def release(
        self,
        station: StationPrincipal,
        session_id: uuid.UUID,
        job_ids: Sequence[uuid.UUID] | None,
    ) -> list[InfraReleaseView]:
        """Release jobs at this station to its printer's Output Device, which will fetch them.

        Raises:
            OutputDeviceNotFoundError: the printer has no registered Output Device (nothing is
                released then).
            and whatever `Releases.create` raises.
        """
        with self._ctx.read() as db:
            device = db.scalar(
                select(InfraDevice).where(
                    InfraDevice.station_id == station.id,
                    InfraDevice.site == station.site,
                    InfraDevice.revoked_at.is_(None),
                    InfraDevice.deregistered_at.is_(None),
                    InfraDevice.output_device_uuid.is_not(None),
                )
            )
            if device is None:
                raise OutputDeviceNotFoundError("this printer has no registered output device")
            device_id = device.id
        grants = self._releases.create(station, session_id, job_ids)
        now = self._ctx.now()
        out: list[InfraReleaseView] = []
        with self._ctx.write() as db:
            device = db.get(InfraDevice, device_id)
            assert device is not None
            for grant in grants:
                row = InfraJob(
                    site=station.site,
                    release_id=grant.id,
                    device_id=device_id,
                    state=FETCHABLE,
                    document_state=None,
                    output_device_job_id=None,
                    impressions=None,
                    created_at=now,
                    updated_at=now,
                )
                db.add(row)
                db.flush()
                self._event(db, device, "job-created", row.id)
                self._event(db, device, "job-fetchable", row.id)
                out.append(InfraReleaseView(grant.id, grant.job_id, row.id))
        self._wake()
        log.info("station %s: %d job(s) fetchable by its output device", station.id, len(out))
        return out

    # --- jobs as the device sees them ---

    def _views(self, db: Session, device: InfraDevice, *where: Any) -> list[InfraJobView]:
        rows = db.execute(
            select(InfraJob, Release, Job, User)
            .join(Release, Release.id == InfraJob.release_id)
            .join(Job, Job.id == Release.job_id)
            .join(User, User.id == Job.owner_id)
            .where(InfraJob.device_id == device.id, InfraJob.site == device.site, *where)
            .order_by(InfraJob.id)
        ).all()
        return [_job_view(i, r, j, u, device) for i, r, j, u in rows]

    def list_jobs(self, proxy: ProxyPrincipal, which: str, limit: int) -> list[InfraJobView]:
        """Get-Jobs: `fetchable`, `not-completed` (fetchable or in progress) or `completed`."""
        with self._ctx.read() as db:
            device = self._device(db, proxy, None)
            if which == "fetchable":
                views = self._views(
                    db,
                    device,
                    InfraJob.state == FETCHABLE,
                    Release.state.in_(list(RELEASE_ACTIVE)),
                )
            elif which == "completed":
                views = [v for v in self._views(db, device) if _ipp_terminal(v)]
            else:
                views = [v for v in self._views(db, device) if not _ipp_terminal(v)]
            return views[:limit]

    def job(self, proxy: ProxyPrincipal, job_id: int) -> InfraJobView:
        """Get-Job-Attributes for one of the device's jobs."""
        with self._ctx.read() as db:
            device = self._device(db, proxy, None)
            views = self._views(db, device, InfraJob.id == job_id)
            if not views:
                raise InfraJobNotFoundError("no such job for this output device")
            return views[0]

    def _own(self, db: Session, device: InfraDevice, job_id: int) -> tuple[InfraJob, Release]:
        row = db.execute(
            select(InfraJob, Release)
            .join(Release, Release.id == InfraJob.release_id)
            .where(
                InfraJob.id == job_id,
                InfraJob.device_id == device.id,
                InfraJob.site == device.site,
            )
        ).first()
        if row is None:
            raise InfraJobNotFoundError("no such job for this output device")
        return row[0], row[1]

    def _renew(self, db: Session, release: Release) -> bool:
        """Move the release to delivering and renew its lease, if it is still active."""
        lease = self._ctx.now() + timedelta(seconds=self._ctx.config.release_lease_s)
        return _cas(
            db,
            update(Release)
            .where(Release.id == release.id, Release.state.in_(list(RELEASE_ACTIVE)))
            .values(state=ReleaseState.DELIVERING, lease_expires_at=lease),
        )

    def fetch_job(self, proxy: ProxyPrincipal, uuid_named: str | None, job_id: int) -> InfraJobView:
        """Fetch-Job: the job's attributes; it stays fetchable (by this device) until acknowledged.

        Raises:
            InfraJobNotFoundError, NotFetchableError.
        """
        ctx = self._ctx
        with ctx.write() as db:
            device = self._device(db, proxy, uuid_named)
            row, release = self._own(db, device, job_id)
            if row.state not in (FETCHABLE, FETCHED) or not self._renew(db, release):
                raise NotFetchableError("the job is no longer fetchable")
            if row.state == FETCHABLE:
                row.state = FETCHED
                row.updated_at = ctx.now()
                ctx.audit(
                    db,
                    "release-delivering",
                    station_id=proxy.station.id,
                    job_id=release.job_id,
                    release_id=release.id,
                    site=proxy.site,
                )
            db.flush()
            return self._views(db, device, InfraJob.id == job_id)[0]

    def acknowledge_job(
        self,
        proxy: ProxyPrincipal,
        uuid_named: str | None,
        job_id: int,
        fetch_error: str | None = None,
    ) -> InfraJobView:
        """Acknowledge-Job: the device takes the job (or, with `fetch_error`, gives it back).

        Raises:
            InfraJobNotFoundError; NotFetchableError (not fetched by this device, or finished).
        """
        ctx = self._ctx
        with ctx.write() as db:
            device = self._device(db, proxy, uuid_named)
            row, release = self._own(db, device, job_id)
            if fetch_error is None:
                if row.state == FETCHED and release.state in RELEASE_ACTIVE:
                    row.state = ACKNOWLEDGED
                    row.updated_at = ctx.now()
                elif row.state not in (ACKNOWLEDGED, PROCESSING, COMPLETED):
                    raise NotFetchableError("fetch the job before acknowledging it")
                return self._views(db, device, InfraJob.id == job_id)[0]
            if row.state in TERMINAL:
                return self._views(db, device, InfraJob.id == job_id)[0]
            row.state = ABORTED
            row.updated_at = ctx.now()
            release_id = release.id
        self._fail(proxy, release_id, f"the printer could not take the job: {fetch_error}")
        return self.job(proxy, job_id)

    def open_document(
        self,
        proxy: ProxyPrincipal,
        uuid_named: str | None,
        job_id: int,
        document_number: int,
    ) -> tuple[InfraJobView, PlainDocument]:
        """Fetch-Document: the decrypted document, authenticated in full first.

        Raises:
            InfraJobNotFoundError; NotFetchableError (not fetched, or finished);
            DocumentUnavailableError (destroyed, damaged, or a key the cloud cannot unwrap).
        """
        if document_number != 1:
            raise InfraJobNotFoundError("each job has one document, number 1")
        ctx = self._ctx
        with ctx.write() as db:
            device = self._device(db, proxy, uuid_named)
            row, release = self._own(db, device, job_id)
            if row.state not in IN_PROGRESS or not self._renew(db, release):
                raise NotFetchableError("the document is not fetchable: fetch the job first")
            job = db.scalar(select(Job).where(Job.id == release.job_id, Job.site == proxy.site))
            assert job is not None  # foreign key
            if job.blob_key is None or job.wrapped_key is None:
                raise DocumentUnavailableError("the job's content has been destroyed")
            blob_key, wrapped, cloud_job_id = job.blob_key, job.wrapped_key, job.id
            size = job.size_bytes
            view = self._views(db, device, InfraJob.id == job_id)[0]
        try:
            data_key = unwrap_key(ctx.config.master_key, wrapped, cloud_job_id)
        except ContainerError:
            raise DocumentUnavailableError(
                "the infrastructure printer cannot decrypt this job (zero-knowledge site): "
                "release it at the station instead"
            ) from None
        blob = ctx.blobs.open(blob_key)
        try:
            # Verify-then-serve: authenticate every chunk before the proxy gets the first byte.
            decryptor = Decryptor(data_key, cloud_job_id, proxy.site)
            total = 0
            while chunk := blob.read(CONTENT_CHUNK_BYTES):
                total += len(decryptor.update(chunk))
            total += len(decryptor.finalize())
        except ContainerError as exc:
            blob.close()
            log.warning("infra job %d: stored container failed to authenticate", job_id)
            raise DocumentUnavailableError("the stored document is damaged") from exc
        except BaseException:
            blob.close()
            raise
        if total != size:
            blob.close()
            raise DocumentUnavailableError("the stored document is damaged")
        return view, PlainDocument(data_key, cloud_job_id, proxy.site, blob, total)

    def acknowledge_document(
        self,
        proxy: ProxyPrincipal,
        uuid_named: str | None,
        job_id: int,
        fetch_error: str | None = None,
    ) -> InfraJobView:
        """Acknowledge-Document: the device has the document (or could not take it)."""
        ctx = self._ctx
        with ctx.write() as db:
            device = self._device(db, proxy, uuid_named)
            row, release = self._own(db, device, job_id)
            if row.state not in IN_PROGRESS and row.state not in TERMINAL:
                raise NotFetchableError("fetch the document before acknowledging it")
            if fetch_error is None or row.state in TERMINAL:
                if row.state not in TERMINAL:
                    row.document_state = "acknowledged"
                    row.updated_at = ctx.now()
                return self._views(db, device, InfraJob.id == job_id)[0]
            row.state = ABORTED
            row.updated_at = ctx.now()
            release_id = release.id
        self._fail(proxy, release_id, f"the printer could not take the document: {fetch_error}")
        return self.job(proxy, job_id)

    def update_job_status(
        self,
        proxy: ProxyPrincipal,
        uuid_named: str | None,
        job_id: int,
        state: str,
        *,
        reason: str | None = None,
        impressions: int | None = None,
        output_device_job_id: int | None = None,
    ) -> InfraJobView:
        """Update-Job-Status: `state` is processing, completed, aborted or canceled.

        completed reports the release printed (content destroyed); aborted or canceled report it
        failed (the job is held again). A repeat of the recorded state changes nothing.

        Raises:
            InfraJobNotFoundError; NotFetchableError (never acknowledged); ReleaseConflictError
            (a different outcome was recorded).
        """
        if state not in (PROCESSING, COMPLETED, ABORTED, CANCELED):
            raise InvalidRequestError(f"unsupported output device job state {state!r}")
        ctx = self._ctx
        with ctx.write() as db:
            device = self._device(db, proxy, uuid_named)
            row, release = self._own(db, device, job_id)
            if row.state == state or (state == PROCESSING and row.state in TERMINAL):
                return self._views(db, device, InfraJob.id == job_id)[0]  # a repeat or a late one
            if row.state in TERMINAL:
                raise ReleaseConflictError(f"the job is already {row.state}")
            if row.state == FETCHABLE:
                raise NotFetchableError("fetch and acknowledge the job first")
            if impressions is not None:
                row.impressions = impressions
            if output_device_job_id is not None:
                row.output_device_job_id = output_device_job_id
            row.updated_at = ctx.now()
            if state == PROCESSING:
                if not self._renew(db, release):
                    raise NotFetchableError("the release has ended (its lease expired)")
                row.state = PROCESSING
                self._event(db, device, "job-state-changed", job_id)
                return self._views(db, device, InfraJob.id == job_id)[0]
            release_id = release.id
            printer_job = row.output_device_job_id
        if state == COMPLETED:
            self._releases.report_outcome(
                proxy.station, release_id, ReleaseState.PRINTED, None, printer_job
            )
        else:
            self._fail(proxy, release_id, reason or f"the printer {state} the job")
        with ctx.write() as db:
            device = self._device(db, proxy, None)
            row, _ = self._own(db, device, job_id)
            row.state = state
            row.updated_at = ctx.now()
            self._event(db, device, "job-completed", job_id)
        self._wake()
        return self.job(proxy, job_id)

    def update_document_status(
        self, proxy: ProxyPrincipal, uuid_named: str | None, job_id: int, state: str
    ) -> InfraJobView:
        """Update-Document-Status: recorded, and the lease renewed while the job is active."""
        with self._ctx.write() as db:
            device = self._device(db, proxy, uuid_named)
            row, release = self._own(db, device, job_id)
            if row.state in IN_PROGRESS:
                row.document_state = state[:16]
                row.updated_at = self._ctx.now()
                self._renew(db, release)
            return self._views(db, device, InfraJob.id == job_id)[0]

    def active_jobs(
        self, proxy: ProxyPrincipal, uuid_named: str | None, job_ids: Sequence[int]
    ) -> tuple[list[InfraJobView], list[int]]:
        """Update-Active-Jobs: the device's views of the named jobs, and the ids it does not own."""
        with self._ctx.read() as db:
            device = self._device(db, proxy, uuid_named)
            views = self._views(db, device, InfraJob.id.in_(list(job_ids)))
        known = {v.job_id for v in views}
        return views, [j for j in job_ids if j not in known]

    def _fail(self, proxy: ProxyPrincipal, release_id: uuid.UUID, reason: str) -> None:
        # Already failed (lease expired) or printed: nothing more to undo.
        with contextlib.suppress(ReleaseConflictError):
            self._releases.report_outcome(proxy.station, release_id, ReleaseState.FAILED, reason)

    # --- events and subscriptions (RFC 3995 / RFC 3996) ---

    def _event(self, db: Session, device: InfraDevice, kind: str, job_id: int | None) -> None:
        now = self._ctx.now()
        db.add(InfraEvent(site=device.site, device_id=device.id, kind=kind, job_id=job_id, at=now))
        db.execute(
            delete(InfraEvent).where(
                InfraEvent.device_id == device.id, InfraEvent.at < now - EVENT_RETENTION
            )
        )

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from any thread) whenever an event is recorded in this process."""
        self._listeners.append(listener)

    def _wake(self) -> None:
        with self._changed:
            self._changed.notify_all()
        for listener in self._listeners:
            listener()

    def subscribe(
        self,
        proxy: ProxyPrincipal,
        events: Sequence[str],
        lease_s: int,
        *,
        user_data: bytes | None = None,
        subscriber: str = "",
    ) -> SubscriptionView:
        """Create-Printer-Subscriptions (ippget): events are filtered to those supported."""
        wanted = tuple(e for e in dict.fromkeys(events) if e in EVENTS_SUPPORTED)
        if not wanted:
            raise InvalidRequestError("none of the notify-events is supported")
        if user_data is not None and len(user_data) > MAX_USER_DATA:
            raise InvalidRequestError("notify-user-data is longer than 63 octets")
        now = self._ctx.now()
        expires = None if lease_s <= 0 else now + timedelta(seconds=lease_s)
        with self._ctx.write() as db:
            device = self._device(db, proxy, None)
            row = InfraSubscription(
                site=proxy.site,
                device_id=device.id,
                events=",".join(wanted),
                user_data=user_data,
                subscriber=subscriber[:255] or proxy.station.name,
                created_at=now,
                expires_at=expires,
            )
            db.add(row)
            db.flush()
            return _sub_view(row)

    def _subscription(self, db: Session, device: InfraDevice, sub_id: int) -> InfraSubscription:
        row = db.scalar(
            select(InfraSubscription).where(
                InfraSubscription.id == sub_id,
                InfraSubscription.device_id == device.id,
                InfraSubscription.site == device.site,
            )
        )
        if row is None or (row.expires_at is not None and row.expires_at <= self._ctx.now()):
            raise SubscriptionNotFoundError("no such subscription")
        return row

    def subscription(self, proxy: ProxyPrincipal, sub_id: int) -> SubscriptionView:
        """Get-Subscription-Attributes."""
        with self._ctx.read() as db:
            row = self._subscription(db, self._device(db, proxy, None), sub_id)
            return _sub_view(row)

    def subscriptions(self, proxy: ProxyPrincipal) -> list[SubscriptionView]:
        """Get-Subscriptions: the device's live subscriptions."""
        now = self._ctx.now()
        with self._ctx.read() as db:
            device = self._device(db, proxy, None)
            rows = db.scalars(
                select(InfraSubscription)
                .where(
                    InfraSubscription.device_id == device.id, InfraSubscription.site == proxy.site
                )
                .order_by(InfraSubscription.id)
            )
            return [_sub_view(r) for r in rows if r.expires_at is None or r.expires_at > now]

    def renew(self, proxy: ProxyPrincipal, sub_id: int, lease_s: int) -> SubscriptionView:
        """Renew-Subscription."""
        with self._ctx.write() as db:
            row = self._subscription(db, self._device(db, proxy, None), sub_id)
            row.expires_at = None if lease_s <= 0 else self._ctx.now() + timedelta(seconds=lease_s)
            view = _sub_view(row)
            return SubscriptionView(
                view.id, view.events, view.expires_at, view.user_data, view.subscriber, lease_s
            )

    def cancel_subscription(self, proxy: ProxyPrincipal, sub_id: int) -> None:
        """Cancel-Subscription."""
        with self._ctx.write() as db:
            row = self._subscription(db, self._device(db, proxy, None), sub_id)
            db.delete(row)

    def notifications(
        self,
        proxy: ProxyPrincipal,
        wanted: Sequence[tuple[int, int]],
        wait_s: float = 0.0,
    ) -> list[EventView]:
        """Get-Notifications: events with sequence >= the one given, per (subscription, sequence).

        With `wait_s`, waits up to that long for a first event (a long poll); a notification
        from this process wakes it at once, and the database is looked at again every second so
        events recorded by another replica are found too.

        Raises:
            SubscriptionNotFoundError: one of the subscriptions is not the caller's.
        """
        deadline = self._ctx.now() + timedelta(seconds=wait_s)
        while True:
            events = self._events_now(proxy, wanted)
            remaining = (deadline - self._ctx.now()).total_seconds()
            if events or remaining <= 0:
                return events
            with self._changed:
                self._changed.wait(min(remaining, 1.0))

    def _events_now(
        self, proxy: ProxyPrincipal, wanted: Sequence[tuple[int, int]]
    ) -> list[EventView]:
        out: list[EventView] = []
        with self._ctx.read() as db:
            device = self._device(db, proxy, None)
            for sub_id, first in wanted:
                sub = self._subscription(db, device, sub_id)
                kinds = sub.events.split(",")
                rows = db.scalars(
                    select(InfraEvent)
                    .where(
                        InfraEvent.device_id == device.id,
                        InfraEvent.site == device.site,
                        InfraEvent.id >= first,
                        InfraEvent.at >= sub.created_at,  # a subscription's own events only
                        InfraEvent.kind.in_(kinds),
                    )
                    .order_by(InfraEvent.id)
                    .limit(MAX_EVENTS_RETURNED)
                )
                data = sub.user_data
                out += [EventView(r.id, sub_id, r.kind, r.job_id, r.at, data) for r in rows]
        return out


def _normalise_uuid(value: str) -> str:
    text = value.strip().lower()
    if not text.startswith("urn:uuid:"):
        raise InvalidRequestError("output-device-uuid must be a urn:uuid: URI")
    try:
        return "urn:uuid:" + str(uuid.UUID(text[len("urn:uuid:") :]))
    except ValueError:
        raise InvalidRequestError("output-device-uuid is not a valid UUID") from None


def _device_view(device: InfraDevice) -> DeviceView:
    return DeviceView(
        device.id,
        device.site,
        device.station_id,
        device.name,
        device.output_device_uuid,
        device.output_device_uuid is not None and device.deregistered_at is None,
        device.attributes,
    )


def _job_view(
    row: InfraJob, release: Release, job: Job, user: User, device: InfraDevice
) -> InfraJobView:
    return InfraJobView(
        job_id=row.id,
        release_id=release.id,
        cloud_job_id=job.id,
        name=job.name,
        document_format=job.document_format,
        copies=job.copies,
        sides=job.sides,
        color_mode=job.color_mode,
        size_bytes=job.size_bytes,
        user_name=user.display_name,
        state=row.state,
        release_state=release.state,
        document_state=row.document_state,
        impressions=row.impressions,
        output_device_uuid=device.output_device_uuid if row.state != FETCHABLE else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _ipp_terminal(view: InfraJobView) -> bool:
    return view.state in TERMINAL or view.release_state not in RELEASE_ACTIVE
