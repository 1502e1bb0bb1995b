"""Station updates in the cloud: signed bundles stored per site, the site's policy, the offer.

The cloud is a store and a messenger, not a trust anchor: an admin signs a bundle with a key
only they hold (`pullprint update sign`), stations verify it against keys pinned in their image,
and the cloud never sees a private key. It reads the manifest (version, min_version, created) so
it can choose what to offer and show admins what is published, and refuses an upload that is
not a signed bundle, so a mistake shows at publication rather than on every station.

Policy per site: `off` (nothing offered, bundles not served), `notify` (the default: stations
learn of the version and show it; nothing installs by itself), `automatic` (stations install).
The offer is the pinned `target_version`, else the site's highest published version.

Invariants: every query carries the caller's site; a bundle row exists only once its blob is
committed (a failed or refused upload leaves neither); versions are never replaced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from packaging.version import InvalidVersion, Version
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cloud.blobstore import BlobWriter
from cloud.context import ServiceContext
from cloud.db import StationUpdateStatus, UpdateBundle, UpdatePolicy
from cloud.errors import (
    BlobNotFoundError,
    BundleExistsError,
    BundleNotFoundError,
    InvalidBundleError,
    InvalidRequestError,
    UpdatesOffError,
)
from cloud.identity import StationPrincipal

log = logging.getLogger(__name__)

POLICIES = ("off", "notify", "automatic")
DEFAULT_POLICY = "notify"
MAX_BUNDLE_BYTES = 1024 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
_FORMAT = "pullprint-update/1"
_MAX_MANIFEST_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class BundleView:
    """A published bundle."""

    id: uuid.UUID
    version: str
    min_version: str
    created_at: datetime
    published_at: datetime
    size_bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class PolicyView:
    """A site's update policy."""

    policy: str
    target_version: str | None


@dataclass(frozen=True, slots=True)
class Offer:
    """What a station is told: the policy and, unless off, the bundle to run."""

    policy: str
    bundle: BundleView | None


@dataclass(frozen=True, slots=True)
class StationUpdateReport:
    """What a station reports about its updates (short, no secrets)."""

    state: str
    current_version: str | None
    available_version: str | None
    step: str | None
    detail: str | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class StationUpdateView:
    """A station's last update report."""

    station_id: uuid.UUID
    report: StationUpdateReport
    reported_at: datetime


class BundleStream:
    """A bundle's blob, open and ready to stream (a missing blob fails before any response)."""

    def __init__(self, length: int, source: BinaryIO) -> None:
        self.length = length
        self._source = source

    def __iter__(self) -> Iterator[bytes]:
        try:
            while chunk := self._source.read(CHUNK_BYTES):
                yield chunk
        finally:
            self._source.close()


class BundleUpload:
    """A bundle being uploaded: staged in the blob store, hashed as it arrives."""

    def __init__(self, key: str, writer: BlobWriter) -> None:
        self.key = key
        self._writer = writer
        self._sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append bytes (InvalidBundleError past the size limit; the upload is then dropped)."""
        self.size += len(data)
        if self.size > MAX_BUNDLE_BYTES:
            self._writer.abort()
            raise InvalidBundleError(f"a bundle is at most {MAX_BUNDLE_BYTES} bytes")
        self._sha256.update(data)
        self._writer.write(data)

    def abort(self) -> None:
        """Drop the staged bytes."""
        self._writer.abort()

    @property
    def sha256(self) -> str:
        """The hex sha256 of what arrived."""
        return self._sha256.hexdigest()

    def commit(self) -> None:
        """Publish the blob."""
        self._writer.commit()


def _version(text: object, what: str) -> str:
    if not isinstance(text, str) or len(text) > 64:
        raise InvalidBundleError(f"the manifest's {what} is not a version")
    try:
        Version(text)
    except InvalidVersion as exc:
        raise InvalidBundleError(f"the manifest's {what} is not a version") from exc
    return text


def read_manifest(source: BinaryIO) -> tuple[str, str, datetime]:
    """Version, min_version and created time of a signed bundle (the signature unverified).

    Raises:
        InvalidBundleError: not a tar starting with manifest.json then manifest.sig, or the
            manifest is not the station update format.
    """
    try:
        with tarfile.open(fileobj=source, mode="r:") as tar:
            first, second = tar.next(), tar.next()
            if first is None or first.name != "manifest.json" or not first.isfile():
                raise InvalidBundleError("a bundle starts with manifest.json")
            if first.size > _MAX_MANIFEST_BYTES:
                raise InvalidBundleError("the manifest is too large")
            if second is None or second.name != "manifest.sig" or second.size != 64:
                raise InvalidBundleError("the bundle is not signed: run `pullprint update sign`")
            fh = tar.extractfile(first)
            assert fh is not None
            doc = json.loads(fh.read().decode("utf-8"))
    except (tarfile.TarError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidBundleError(f"not an update bundle ({type(exc).__name__})") from exc
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise InvalidBundleError(f"the manifest is not {_FORMAT}")
    version = _version(doc.get("version"), "version")
    min_version = _version(doc.get("min_version"), "min_version")
    try:
        created = datetime.strptime(str(doc.get("created")), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError as exc:
        raise InvalidBundleError("the manifest's created time is malformed") from exc
    return version, min_version, created.replace(tzinfo=UTC)


def _view(row: UpdateBundle) -> BundleView:
    return BundleView(
        row.id,
        row.version,
        row.min_version,
        row.created_at,
        row.published_at,
        row.size_bytes,
        row.sha256,
    )


class Updates:
    """Bundles, policies, offers and station reports, each confined to one site."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    # ---- admins ----

    def open_upload(self) -> BundleUpload:
        """Start staging a bundle (nothing is visible until `publish`)."""
        key = f"update-{uuid.uuid4().hex}"
        return BundleUpload(key, self._ctx.blobs.open_writer(key))

    def publish(self, site: str, upload: BundleUpload) -> BundleView:
        """Commit a staged bundle and record it for `site`.

        Raises:
            InvalidBundleError: not a signed bundle (the blob is deleted again).
            BundleExistsError: the site has this version already.
        """
        ctx = self._ctx
        upload.commit()
        try:
            with ctx.blobs.open(upload.key) as fh:
                version, min_version, created = read_manifest(fh)
            row = UpdateBundle(
                id=uuid.uuid4(),
                site=site,
                version=version,
                min_version=min_version,
                created_at=created,
                published_at=ctx.now(),
                size_bytes=upload.size,
                sha256=upload.sha256,
                blob_key=upload.key,
            )
            try:
                with ctx.write() as db:
                    taken = db.scalar(
                        select(UpdateBundle.id).where(
                            UpdateBundle.site == site, UpdateBundle.version == version
                        )
                    )
                    if taken is not None:
                        raise BundleExistsError(f"version {version} is published already")
                    db.add(row)
                    ctx.audit(db, "update-published", detail=version, site=site)
            except IntegrityError as exc:
                raise BundleExistsError(f"version {version} is published already") from exc
        except BaseException:
            ctx.blobs.delete(upload.key)
            raise
        log.info("site %s published update %s", site, version)
        return _view(row)

    def published(self, site: str) -> list[BundleView]:
        """The site's bundles, highest version first."""
        with self._ctx.read() as db:
            rows = db.scalars(select(UpdateBundle).where(UpdateBundle.site == site)).all()
            views = [_view(row) for row in rows]
        return sorted(views, key=lambda v: Version(v.version), reverse=True)

    def withdraw(self, site: str, version: str) -> None:
        """Delete a published bundle (its row, then its blob).

        Raises:
            BundleNotFoundError: no such version in the site.
        """
        ctx = self._ctx
        with ctx.write() as db:
            row = db.scalar(
                select(UpdateBundle).where(
                    UpdateBundle.site == site, UpdateBundle.version == version
                )
            )
            if row is None:
                raise BundleNotFoundError("no such version in this site")
            key = row.blob_key
            db.delete(row)
            ctx.audit(db, "update-withdrawn", detail=version, site=site)
        ctx.blobs.delete(key)

    def policy(self, site: str) -> PolicyView:
        """The site's policy (the default when never set)."""
        with self._ctx.read() as db:
            row = db.get(UpdatePolicy, site)
            if row is None:
                return PolicyView(DEFAULT_POLICY, None)
            return PolicyView(row.policy, row.target_version)

    def set_policy(self, site: str, policy: str, target_version: str | None) -> PolicyView:
        """Set the site's policy and optionally pin the offered version.

        Raises:
            InvalidRequestError: an unknown policy.
            BundleNotFoundError: the pinned version is not published in the site.
        """
        if policy not in POLICIES:
            raise InvalidRequestError(f"the policy is one of: {', '.join(POLICIES)}")
        ctx = self._ctx
        with ctx.write() as db:
            if target_version is not None and (
                db.scalar(
                    select(UpdateBundle.id).where(
                        UpdateBundle.site == site, UpdateBundle.version == target_version
                    )
                )
                is None
            ):
                raise BundleNotFoundError("no such version in this site")
            row = db.get(UpdatePolicy, site)
            if row is None:
                row = UpdatePolicy(site=site, policy=policy, changed_at=ctx.now())
                db.add(row)
            row.policy, row.target_version, row.changed_at = policy, target_version, ctx.now()
            ctx.audit(db, "update-policy", detail=f"{policy} {target_version or ''}", site=site)
        return PolicyView(policy, target_version)

    def station_statuses(self, site: str) -> list[StationUpdateView]:
        """The last update report of each of the site's stations."""
        with self._ctx.read() as db:
            rows = db.scalars(
                select(StationUpdateStatus).where(StationUpdateStatus.site == site)
            ).all()
            return [
                StationUpdateView(
                    row.station_id,
                    StationUpdateReport(
                        row.state,
                        row.current_version,
                        row.available_version,
                        row.step,
                        row.detail,
                        row.last_error,
                    ),
                    row.reported_at,
                )
                for row in rows
            ]

    # ---- stations ----

    def offer(self, station: StationPrincipal) -> Offer:
        """The station's site policy and the bundle it should run (none when off)."""
        policy = self.policy(station.site)
        if policy.policy == "off":
            return Offer("off", None)
        views = self.published(station.site)
        if policy.target_version is not None:
            views = [v for v in views if v.version == policy.target_version]
        return Offer(policy.policy, views[0] if views else None)

    def open_bundle(self, station: StationPrincipal, bundle_id: uuid.UUID) -> BundleStream:
        """Open one of the station's site's bundles for streaming.

        Raises:
            UpdatesOffError: the site's policy is off.
            BundleNotFoundError: no such bundle in the station's site.
        """
        if self.policy(station.site).policy == "off":
            raise UpdatesOffError("updates are off for this site")
        with self._ctx.read() as db:
            row = db.scalar(
                select(UpdateBundle).where(
                    UpdateBundle.id == bundle_id, UpdateBundle.site == station.site
                )
            )
            if row is None:
                raise BundleNotFoundError("no such bundle")
            key, size = row.blob_key, row.size_bytes
        try:
            return BundleStream(size, self._ctx.blobs.open(key))
        except BlobNotFoundError as exc:
            raise BundleNotFoundError("the bundle's content is missing") from exc

    def report(self, station: StationPrincipal, report: StationUpdateReport) -> None:
        """Record the station's latest update status (the latest report wins)."""
        ctx = self._ctx
        with ctx.write() as db:
            row = db.get(StationUpdateStatus, station.id)
            changed = row is None or row.state != report.state
            if row is None:
                row = StationUpdateStatus(
                    station_id=station.id, site=station.site, reported_at=ctx.now()
                )
                db.add(row)
            row.state = report.state
            row.current_version = report.current_version
            row.available_version = report.available_version
            row.step = report.step
            row.detail = report.detail
            row.last_error = report.last_error
            row.reported_at = ctx.now()
            if changed and report.state in ("rolled-back", "refused", "failed"):
                ctx.audit(db, f"update-{report.state}", station_id=station.id, site=station.site)
