"""The cloud's metadata schema (SQLAlchemy 2 typed ORM) and engine factory.

Invariants:

* every row carries a `site` (tenancy is enforced in a later issue; the column exists from the
  first migration so no backfill is ever needed);
* no secret is stored in a reversible form: credential tags, token secrets and pairing codes are
  stored as HMAC-SHA256(pepper, value) in hex, a job's data key only wrapped by the master key,
  and the site key never (a pairing grant holds it only sealed to the station's key);
* a job's `wrapped_key` is erased when its content is destroyed, which destroys the content
  cryptographically even if a copy of the blob survives; `blob_key` is cleared once the blob
  itself is deleted (so the sweeper can retry a deletion that failed);
* audit events hold ids and kinds only: never a tag, token, key or document content.

All datetimes are timezone-aware UTC in Python (`UTCDateTime`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    create_engine,
    event,
    make_url,
    text,
)
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool

# Explicit constraint names, so migrations and the ORM agree and can be compared.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 5000
# As many connections as AnyIO's worker threads (40) may want at once, per replica.
POSTGRES_POOL_SIZE = 20
POSTGRES_POOL_TIMEOUT_S = 10
POSTGRES_CONNECT_TIMEOUT_S = 5


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime that is always timezone-aware UTC in Python.

    SQLite has no time zones, so values are stored as naive UTC there (in a fixed format, so SQL
    comparisons stay correct); other engines get `TIMESTAMP WITH TIME ZONE`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC; refuse naive datetimes, which would be ambiguous."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """On SQLite, parse the stored text in C: SQLAlchemy's own parser (a regular
        expression) was a tenth of a badge tap's CPU, reading each listed job's times."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            # The stored form is `YYYY-MM-DD HH:MM:SS[.ffffff]`, naive UTC (`process_bind_param`).
            return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)

        return process


class Base(DeclarativeBase):
    """Declarative base holding the metadata the migrations must reproduce."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Site(Base):
    """A tenant: every other row's `site` is a site's `name`.

    `admin_token_hash` is HMAC(pepper, secret) of the site admin token `ppa_<id>.<secret>`, NULL
    for the default site, whose admin is the bootstrap token from the config.
    """

    __tablename__ = "sites"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    admin_token_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The shortest PIN the site accepts (4..12); DESIGN.md: 6 unless a site allows fewer.
    min_pin_digits: Mapped[int] = mapped_column(Integer, server_default="6")


class User(Base):
    """A person who submits and releases jobs."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("site", "email"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    email: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Credential(Base):
    """An enrolled badge (or other credential), found by `lookup` = HMAC(pepper, tag) hex."""

    __tablename__ = "credentials"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    lookup: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Pin(Base):
    """A user's PIN: an Argon2id verifier over the keyed tag, and its failure counter.

    The station computes the tag as HMAC(site_key, "pin/v1|" + email + "|" + PIN); the cloud keeps
    only the Argon2id hash of the tag bytes. `failures` counts consecutive failures; from
    `PIN_LOCK_FAILURES` on the PIN is locked (`locked_at`) until an admin resets it.
    """

    __tablename__ = "pins"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    verifier: Mapped[str] = mapped_column(String(255))
    failures: Mapped[int] = mapped_column(Integer)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PinStationFailures(Base):
    """Consecutive PIN failures at one station (whichever accounts they named), for back-off."""

    __tablename__ = "pin_station_failures"

    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stations.id"), primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    failures: Mapped[int] = mapped_column(Integer)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Station(Base):
    """A release station fixed to one printer, known by its Ed25519 public key.

    `public_key` is the raw 32-byte key the station signs its requests with (RFC 9421); it is
    NULL only for stations from before pairing (migration 0004 revokes those).
    """

    __tablename__ = "stations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    printer_uri: Mapped[str] = mapped_column(String(2048))
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StationNonce(Base):
    """A signature nonce a station has used, kept while its `created` is inside the window.

    The primary key makes the replay check atomic: of two requests with the same nonce, on any
    replica, exactly one INSERT succeeds.
    """

    __tablename__ = "station_nonces"

    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stations.id"), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class PairingRequest(Base):
    """A station asking to be paired (the RFC 8628 device authorization request).

    Codes are stored as HMAC(pepper, code) only. `site` is empty until an admin approves the
    request into a site; `sealed_grant` is the grant encrypted to `exchange_key`, so the row never
    holds the site key in the clear. `state` is pending -> approved | denied.
    """

    __tablename__ = "pairing_requests"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    user_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    device_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    signing_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    exchange_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    source_hash: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16))
    interval_s: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    station_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("stations.id"))
    sealed_grant: Mapped[bytes | None] = mapped_column(LargeBinary)


class Job(Base):
    """A parked document: metadata here, the encrypted container in the blob store."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index(None, "owner_id", "state", "expires_at"),
        Index(None, "state", "expires_at"),
        # The per-user quota sums what a user's jobs hold (cloud.uploads.held_bytes) twice per
        # submission: from this index alone, over live content only (migration 0012). The key
        # column is there only so that SQLite can answer without reading rows.
        Index(
            "ix_jobs_held_content",
            "owner_id",
            "site",
            "content_bytes",
            "wrapped_key",
            sqlite_where=text("wrapped_key IS NOT NULL"),
            postgresql_where=text("wrapped_key IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(255))
    document_format: Mapped[str] = mapped_column(String(127))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    content_bytes: Mapped[int] = mapped_column(BigInteger)
    # SHA-256 of the plaintext; None for zero-knowledge jobs (a digest of a guessable document
    # would let the cloud confirm what it holds).
    sha256: Mapped[str | None] = mapped_column(String(64))
    copies: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    # How `wrapped_key` is wrapped (`cloud.container.KeyWrap`): "master" or "hpke" (zero-knowledge).
    key_wrap: Mapped[str] = mapped_column(String(16), server_default="master")
    blob_key: Mapped[str | None] = mapped_column(String(128))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # IPP job template values (RFC 8011 §5.2; PWG 5100.13 for print-color-mode), None when the
    # submitter did not say (REST submissions).
    sides: Mapped[str | None] = mapped_column(String(32))
    color_mode: Mapped[str | None] = mapped_column(String(32))


class AppPasscode(Base):
    """A revocable app passcode for HTTP Basic on the IPP endpoint; `secret_hash` = HMAC hex."""

    __tablename__ = "app_passcodes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IppSequence(Base):
    """The last IPP job-id handed out in a site (a per-site counter, RFC 8011 §5.3.2)."""

    __tablename__ = "ipp_sequences"

    site: Mapped[str] = mapped_column(String(63), primary_key=True)
    last_job_id: Mapped[int] = mapped_column(Integer)


class IppJob(Base):
    """An IPP job: its integer job-id, its owner, and its document once one arrived.

    `job_id` is the stable positive integer the IPP client sees; `cloud_job_id` points at the
    parked job once the document is in (NULL between Create-Job and Send-Document). `state` is
    the IPP-only part of the life: `incoming` (no document yet), `queued` (document in), or
    `canceled` / `aborted` before any document arrived; once a document is parked, the cloud
    job's state decides what the client sees.
    """

    __tablename__ = "ipp_jobs"
    __table_args__ = (Index(None, "owner_id", "job_id"),)

    site: Mapped[str] = mapped_column(String(63), primary_key=True)
    job_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    cloud_job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id"), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    document_format: Mapped[str | None] = mapped_column(String(127))
    copies: Mapped[int] = mapped_column(Integer)
    sides: Mapped[str | None] = mapped_column(String(32))
    color_mode: Mapped[str | None] = mapped_column(String(32))
    media: Mapped[str | None] = mapped_column(String(64))
    hold_until: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StationSession(Base):
    """A short session opened at a station by a credential tap."""

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stations.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    credential_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("credentials.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Release(Base):
    """One job on its way to one printer: requested -> delivering -> printed | failed."""

    __tablename__ = "releases"
    __table_args__ = (Index(None, "state", "lease_expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id"), index=True)
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stations.id"))
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id"))
    state: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)
    printer_job_id: Mapped[int | None] = mapped_column(BigInteger)
    # The printer the station delivers to, copied at creation (a station may be re-pointed later).
    printer_uri: Mapped[str | None] = mapped_column(String(2048))
    # A reprint of a job kept after printing: when it ends unprinted the job goes back to printed.
    reprint: Mapped[bool] = mapped_column(Boolean, server_default="0")
    # Who released it: the job's owner, or a user the owner delegated releasing to.
    released_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class AuditEvent(Base):
    """Something that happened, by kind and subject ids; never secrets or content.

    Subject ids carry no foreign keys on purpose: the trail must outlive what it describes.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    station_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    release_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    detail: Mapped[str | None] = mapped_column(Text)


# --- ipp-infra ---


class InfraDevice(Base):
    """An Output Device that pulls work from the Infrastructure Printer (PWG 5100.18).

    One per station (the printer beside it): a paired station acting as the Proxy signs its
    requests; a cloud-aware printer (or ipptool) presents the per-device token issued by an admin,
    stored only as HMAC(pepper, secret) in `token_hash`. `output_device_uuid` is bound at the
    first Register-Output-Device and must match on every later request; `attributes` holds the
    printer attributes the Proxy last reported, IPP-encoded (what Get-Output-Device-Attributes
    answers).
    """

    __tablename__ = "infra_devices"
    __table_args__ = (UniqueConstraint("site", "output_device_uuid"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stations.id"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    output_device_uuid: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str | None] = mapped_column(String(64))
    attributes: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deregistered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InfraJob(Base):
    """A release made in "infra" delivery mode: fetchable by one Output Device.

    `id` is the job-id the Proxy sees. `state` is the fetch life (fetchable -> fetched ->
    acknowledged -> processing -> completed | aborted | canceled); the release row stays the
    truth for whether the job may still print (its lease, its outcome).
    """

    __tablename__ = "infra_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(63))
    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("releases.id"), unique=True)
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("infra_devices.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    document_state: Mapped[str | None] = mapped_column(String(16))
    output_device_job_id: Mapped[int | None] = mapped_column(Integer)
    impressions: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InfraEvent(Base):
    """An event for one Output Device (RFC 3995 notification); `id` orders them."""

    __tablename__ = "infra_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(63))
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("infra_devices.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class InfraSubscription(Base):
    """A Proxy's printer subscription (RFC 3995, pull method ippget, RFC 3996)."""

    __tablename__ = "infra_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(63))
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("infra_devices.id"), index=True)
    events: Mapped[str] = mapped_column(String(500))
    user_data: Mapped[bytes | None] = mapped_column(LargeBinary(63))  # notify-user-data, echoed
    subscriber: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- jobs-zk ---


class SitePolicy(Base):
    """A site's job policies; a site without a row has the defaults (`cloud.policies`).

    `public_key` is the site's raw X25519 public key, set for zero-knowledge sites: submitters
    wrap each job's data key to it with HPKE. The private key never reaches the cloud: the admin
    keeps it and `pullprint pair` seals it into each new station's grant.
    """

    __tablename__ = "site_policies"

    site: Mapped[str] = mapped_column(String(63), primary_key=True)
    zero_knowledge: Mapped[bool] = mapped_column(Boolean, server_default="0")
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    job_names: Mapped[str] = mapped_column(String(8), server_default="keep")
    job_expiry_h: Mapped[int | None] = mapped_column(Integer)
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    keep_printed: Mapped[bool] = mapped_column(Boolean, server_default="0")
    release_all_on_tap: Mapped[bool] = mapped_column(Boolean, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JobIdempotencyKey(Base):
    """An `Idempotency-Key` a user submitted with, and the job it created.

    `fingerprint` is SHA-256 over the submission's parameters and body, so a retry with the same
    key and the same request gets the same job, and the same key with another request is refused.
    """

    __tablename__ = "job_idempotency_keys"

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Delegation(Base):
    """`owner_id` lets `delegate_id` (same site) release the owner's jobs at a station."""

    __tablename__ = "delegations"

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    delegate_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id"), primary_key=True, index=True
    )
    site: Mapped[str] = mapped_column(String(63))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- devices ---


class Printer(Base):
    """A registered printer: how stations reach it (`hardware.printers.fallback.PrinterPolicy`).

    `mode` is None for a printer reached by `uri` alone, else "ipps-only", "ipps-then-ipp" or
    "any"; `pin` is the base64 SHA-256 of the printer's SPKI (ipps://), recorded by an admin.
    `capabilities` is JSON (what the admin or discovery knows: color, duplex, pdl...).
    `snmp_community` goes to the assigned stations (they read the printer's SNMP); it is never
    logged or shown in listings. `config_version` grows with every change of what stations get.
    """

    __tablename__ = "printers"
    __table_args__ = (UniqueConstraint("site", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    uri: Mapped[str] = mapped_column(String(2048))
    mode: Mapped[str | None] = mapped_column(String(16))
    ipp_uri: Mapped[str | None] = mapped_column(String(2048))
    raw_uri: Mapped[str | None] = mapped_column(String(2048))
    pin: Mapped[str | None] = mapped_column(String(64))
    raw_pjl: Mapped[bool] = mapped_column(Boolean)
    snmp_community: Mapped[str | None] = mapped_column(String(255))
    location: Mapped[str] = mapped_column(String(200))
    capabilities: Mapped[str] = mapped_column(Text)
    config_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StationAssignment(Base):
    """Which registered printer a station serves (one printer per station, many per printer)."""

    __tablename__ = "station_assignments"

    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stations.id"), primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    printer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("printers.id"), index=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StationHealth(Base):
    """A station's last heartbeat: when, which config it runs (ETag) and its health report."""

    __tablename__ = "station_health"

    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stations.id"), primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    config_etag: Mapped[str | None] = mapped_column(String(64))
    health: Mapped[str] = mapped_column(Text)  # JSON, as last reported (small)
    heartbeats: Mapped[int] = mapped_column(BigInteger)


class PrinterReading(Base):
    """The latest status and supplies a station read from a printer (JSON), one row per printer."""

    __tablename__ = "printer_readings"

    printer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("printers.id"), primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    station_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(Text)


class PrinterMeter(Base):
    """One page-counter reading: the meter history of a printer."""

    __tablename__ = "printer_meters"
    __table_args__ = (Index(None, "printer_id", "read_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(63))
    printer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("printers.id"))
    read_at: Mapped[datetime] = mapped_column(UTCDateTime)
    page_count: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str | None] = mapped_column(String(64))


class PrinterAlert(Base):
    """A printer alert or error as reported, de-duplicated by `key` while it is open."""

    __tablename__ = "printer_alerts"
    __table_args__ = (Index(None, "printer_id", "key", "cleared_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(63))
    printer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("printers.id"))
    key: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(32))
    words: Mapped[str] = mapped_column(String(255))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DiscoveredDeviceRow(Base):
    """A device found by discovery (mDNS + SNMP, merged), keyed per site by its identity key.

    `identity` is the strongest key the finding had (uuid:, mac:, serial:, else address:), so a
    device reported again updates its row. `printer_id` is set once an admin registered it.
    """

    __tablename__ = "discovered_devices"
    __table_args__ = (UniqueConstraint("site", "identity"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    identity: Mapped[str] = mapped_column(String(255))
    data: Mapped[str] = mapped_column(Text)  # the merged finding, JSON
    reported_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the station, if one did
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    printer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("printers.id"))


# --- updates ---


class UpdateBundle(Base):
    """A signed station update bundle an admin published to a site (the bytes are a blob).

    The cloud never verifies or holds the signing key: stations check the signature against the
    keys pinned in their image. `version`, `min_version` and `created_at` are read from the
    bundle's manifest at publication, to choose the offer and show it to admins.
    """

    __tablename__ = "update_bundles"
    __table_args__ = (UniqueConstraint("site", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    version: Mapped[str] = mapped_column(String(64))
    min_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    blob_key: Mapped[str] = mapped_column(String(128))


class UpdatePolicy(Base):
    """A site's update policy: off | notify | automatic, and an optional pinned version.

    A site without a row has the default policy (`notify`: stations learn of a version, an admin
    decides). `target_version` None offers the site's highest published version.
    """

    __tablename__ = "update_policies"

    site: Mapped[str] = mapped_column(String(63), primary_key=True)
    policy: Mapped[str] = mapped_column(String(16))
    target_version: Mapped[str | None] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StationUpdateStatus(Base):
    """The last update status a station reported (the update part of its health)."""

    __tablename__ = "station_update_status"

    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stations.id"), primary_key=True)
    site: Mapped[str] = mapped_column(String(63), index=True)
    state: Mapped[str] = mapped_column(String(32))
    current_version: Mapped[str | None] = mapped_column(String(64))
    available_version: Mapped[str | None] = mapped_column(String(64))
    step: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- identity ---


class SiteIdentityPolicy(Base):
    """How a site's users identify at a station, beyond a badge tap (no row: the defaults).

    `card_pin`: a badge tap asks for the user's PIN before the job list. `self_enrolment`: an
    unknown badge gets a one-time enrolment code. `passcode_mode`: release passcodes are
    "single-use" (valid `passcode_ttl_s`, then gone) or "long-lived" (until revoked).
    """

    __tablename__ = "site_identity_policies"

    site: Mapped[str] = mapped_column(String(63), primary_key=True)
    card_pin: Mapped[bool] = mapped_column(Boolean)
    self_enrolment: Mapped[bool] = mapped_column(Boolean)
    passcode_mode: Mapped[str] = mapped_column(String(16))
    passcode_ttl_s: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReleasePasscode(Base):
    """A passcode typed on a station's keypad to release a user's jobs.

    `lookup` = HMAC(pepper, "release-passcode/v1|" + site + "|" + digits) hex, unique, so the
    passcode alone finds its row; `used_at` is set when a single-use passcode is spent.
    """

    __tablename__ = "release_passcodes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    lookup: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    single_use: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PasscodeStationFailures(Base):
    """Consecutive wrong release passcodes typed at one station, for back-off (as PINs)."""

    __tablename__ = "passcode_station_failures"

    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stations.id"), primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    failures: Mapped[int] = mapped_column(Integer)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EnrolmentCode(Base):
    """A one-time code shown at a station for an unknown badge; redeeming it binds the badge.

    `code_hash` = HMAC(pepper, "enrolment/v1|" + code); `card_lookup` is the badge's
    HMAC(pepper, tag), exactly what `credentials.lookup` will hold once redeemed.
    """

    __tablename__ = "enrolment_codes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63), index=True)
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stations.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    card_lookup: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))


def database_url(url: str) -> URL:
    """Parse a database URL; a PostgreSQL URL without a driver gets psycopg 3.

    `postgresql://` would otherwise mean psycopg2, which is not a dependency.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _postgres_engine(url: URL) -> Engine:
    """PostgreSQL through psycopg 3, at READ COMMITTED.

    The domain's state changes are compare-and-set `UPDATE ... WHERE state = ...` statements and
    unique-key inserts, which are race-free at READ COMMITTED (an UPDATE re-checks its WHERE on
    the newest row version after waiting for a concurrent writer); counters read-then-written
    lock their row (`with_for_update`). So no engine-wide SERIALIZABLE (and no retry loops).
    `pool_pre_ping` replaces connections a restarted server has closed, so a database restart
    costs the requests in flight at that moment, not every pooled connection afterwards.
    """
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=POSTGRES_POOL_SIZE,
        max_overflow=POSTGRES_POOL_SIZE,
        pool_timeout=POSTGRES_POOL_TIMEOUT_S,
        connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S},
    )


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys, a busy timeout and real transactions.

    PostgreSQL URLs (`postgresql://` or `postgresql+psycopg://`) get psycopg 3 (see
    `_postgres_engine`); everything below about BEGIN modes is SQLite's alone.

    pysqlite's own transaction handling starts transactions late (reads run outside them) and
    ignores BEGIN modes, so it is switched off and SQLAlchemy emits BEGIN itself: IMMEDIATE by
    default (SQLite has one writer; taking the write lock up front avoids lock-upgrade
    deadlocks), DEFERRED for sessions bound with `execution_options(sqlite_begin="DEFERRED")`.
    """
    parsed = database_url(url)
    if parsed.get_backend_name() == "postgresql":
        return _postgres_engine(parsed)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed)
    memory = parsed.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if memory:
        # One shared connection, or every pooled connection would see its own empty database.
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql("BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")

    return engine
