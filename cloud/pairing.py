"""Station pairing, OAuth device-grant style (RFC 8628), ending in a sealed grant.

1. A new station POSTs its Ed25519 signing key and X25519 exchange key. The cloud answers a short
   *user code* for people (8 letters from RFC 8628 §6.1's 20-consonant alphabet, shown
   `XXXX-XXXX`: 20^8 ≈ 2^34.6) and a long *device code* for the station to poll with.
2. The station shows the user code and its key fingerprint. An admin runs `pullprint pair CODE`
   on the cloud host, compares the fingerprint, picks the printer and approves (or denies).
3. Approval creates the station row (with its public key) and seals the grant (station id, site,
   printer, site key) to the station's exchange key (`cloud.sealing`). The site key comes from the
   admin's site-key file, is passed in by the CLI, and is never written anywhere by the cloud: the
   database holds it only sealed, and the sealed copy is swept when the request expires.
4. The station polls with its device code and gets RFC 8628 §3.5 answers: `authorization_pending`,
   `slow_down` (polled faster than `interval`; the interval grows by 5 s), `expired_token`,
   `access_denied`, or the sealed grant (repeatable until expiry: only the station can open it).

Invariants: codes are stored only as HMAC(pepper, code) and never logged; requests are rate-limited
per source address and globally, counted in the database so replicas share the budget, and
counted under one lock on PostgreSQL so concurrent requests cannot overrun it; a request
lives `PAIRING_TTL_S` (an approval restarts the clock so the station has time to collect it).
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.context import ServiceContext
from cloud.db import PairingRequest, Station
from cloud.errors import (
    AccessDeniedError,
    AuthorizationPendingError,
    ConflictError,
    ExpiredTokenError,
    InvalidGrantError,
    InvalidRequestError,
    PairingNotFoundError,
    SlowDownError,
    TooManyRequestsError,
)
from cloud.policies import Policy, load_policy
from cloud.sealing import KEY_BYTES, fingerprint, grant_aad, seal
from cloud.sites import require_site

log = logging.getLogger(__name__)

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # RFC 8628 §6.1: no vowels, no look-alikes
USER_CODE_CHARS = 8
PAIRING_TTL_S = 600
POLL_INTERVAL_S = 5
SLOW_DOWN_STEP_S = 5  # RFC 8628 §3.5
RATE_WINDOW_S = 600
MAX_REQUESTS_PER_SOURCE = 10
MAX_REQUESTS_GLOBAL = 200
_POLL_TOLERANCE_S = 1.0  # network jitter between two polls spaced exactly `interval` apart
# The PostgreSQL advisory lock that serialises counting pairing requests (one 64-bit key in a
# namespace shared with any other advisory lock of the database: the bytes of "ppPAIRrl").
_RATE_LIMIT_LOCK = int.from_bytes(b"ppPAIRrl", "big", signed=True)


class PairingState:
    """The states of a pairing request."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


@dataclass(frozen=True, slots=True)
class IssuedPairing:
    """The RFC 8628 §3.2 device authorization response (codes shown to the station only)."""

    request_id: uuid.UUID
    user_code: str = field(repr=False)
    device_code: str = field(repr=False)
    expires_in_s: int
    interval_s: int


@dataclass(frozen=True, slots=True)
class PendingView:
    """A pending request as the approving admin sees it."""

    request_id: uuid.UUID
    fingerprint: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ApprovedStation:
    """What an approval created."""

    station_id: uuid.UUID
    site: str
    name: str
    printer_uri: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class SealedGrant:
    """The answer to a successful poll: the grant, sealed to the station's exchange key."""

    request_id: uuid.UUID
    station_id: uuid.UUID
    sealed: bytes = field(repr=False)


def format_user_code(raw: str) -> str:
    """`BCDFGHJK` -> `BCDF-GHJK`."""
    half = USER_CODE_CHARS // 2
    return f"{raw[:half]}-{raw[half:]}"


def normalise_user_code(code: str) -> str | None:
    """People retype codes: forgive case, blanks and dashes; None if it cannot be a user code."""
    text = "".join(ch for ch in code.upper() if ch not in " -")
    if len(text) != USER_CODE_CHARS or any(ch not in USER_CODE_ALPHABET for ch in text):
        return None
    return text


class Pairing:
    """The device grant: requests, polls, and the admin's approval or denial."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def request(self, signing_key: bytes, exchange_key: bytes, source: str) -> IssuedPairing:
        """Start pairing a station (RFC 8628 §3.1-3.2).

        Args:
            signing_key: the station's raw Ed25519 public key.
            exchange_key: the station's raw X25519 public key (the grant is sealed to it).
            source: the client's address, for rate limiting (stored only as a keyed hash).

        Raises:
            InvalidRequestError: a key is malformed.
            TooManyRequestsError: too many requests from this source, or overall.
        """
        _check_keys(signing_key, exchange_key)
        ctx = self._ctx
        now = ctx.now()
        source_hash = ctx.keyed_hash(b"pairing-source/v1|" + source.encode())
        raw_user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_CHARS))
        device_code = secrets.token_urlsafe(32)
        request_id = uuid.uuid4()
        try:
            with ctx.write() as db:
                self._rate_limit(db, source_hash, now)
                db.add(
                    PairingRequest(
                        id=request_id,
                        site="",
                        user_code_hash=self._user_hash(raw_user_code),
                        device_code_hash=self._device_hash(device_code),
                        signing_key=signing_key,
                        exchange_key=exchange_key,
                        source_hash=source_hash,
                        state=PairingState.PENDING,
                        interval_s=POLL_INTERVAL_S,
                        created_at=now,
                        expires_at=now + timedelta(seconds=PAIRING_TTL_S),
                        last_polled_at=None,
                        station_id=None,
                        sealed_grant=None,
                    )
                )
        except IntegrityError as exc:
            # A user-code collision among live requests (about 1 in 10^8 with 200 pending):
            # the station simply asks again.
            raise TooManyRequestsError("please retry", retry_after_s=1) from exc
        log.info("pairing request %s opened (key %s)", request_id, fingerprint(signing_key))
        return IssuedPairing(
            request_id,
            format_user_code(raw_user_code),
            device_code,
            PAIRING_TTL_S,
            POLL_INTERVAL_S,
        )

    def poll(self, device_code: str) -> SealedGrant:
        """The station polls for its grant (RFC 8628 §3.4-3.5).

        Raises:
            InvalidGrantError: unknown device code.
            ExpiredTokenError, AccessDeniedError, SlowDownError, AuthorizationPendingError:
                the RFC 8628 §3.5 outcomes.
        """
        ctx = self._ctx
        now = ctx.now()
        error: Exception | None = None
        with ctx.write() as db:
            row = db.scalar(
                select(PairingRequest).where(
                    PairingRequest.device_code_hash == self._device_hash(device_code)
                )
            )
            if row is None:
                raise InvalidGrantError("unknown device code")
            if row.expires_at <= now:
                raise ExpiredTokenError("the pairing request expired; start again")
            if row.state == PairingState.DENIED:
                raise AccessDeniedError("an admin denied this pairing request")
            if row.state == PairingState.APPROVED and row.sealed_grant is not None:
                assert row.station_id is not None
                return SealedGrant(row.id, row.station_id, row.sealed_grant)
            last, row.last_polled_at = row.last_polled_at, now
            if last is not None and (now - last).total_seconds() < (
                row.interval_s - _POLL_TOLERANCE_S
            ):
                row.interval_s += SLOW_DOWN_STEP_S
                error = SlowDownError(f"poll at most every {row.interval_s} s")
            else:
                error = AuthorizationPendingError("waiting for an admin to approve")
        # Raised after the commit, so the poll time (and a grown interval) is kept.
        assert error is not None
        raise error

    def find(self, user_code: str) -> PendingView:
        """The pending, unexpired request with this user code.

        Raises:
            PairingNotFoundError: no such pending request.
        """
        with self._ctx.read() as db:
            row = self._pending(db, user_code)
            return PendingView(row.id, fingerprint(row.signing_key), row.created_at, row.expires_at)

    def approve(
        self,
        user_code: str,
        *,
        site_key: bytes,
        printer_name: str,
        printer_uri: str,
        site: str | None = None,
        site_private_key: bytes | None = None,
    ) -> ApprovedStation:
        """Approve a pending request: create the station and seal its grant.

        Args:
            user_code: what the station shows.
            site_key: the site's 32-byte credential-tag key, from the admin's site-key file.
            printer_name: the printer's name (also the station's name).
            printer_uri: where the station delivers, e.g. `ipps://printer.local/ipp/print`.
            site: the site to pair into (default: the cloud's site).
            site_private_key: the site's X25519 private key, required for a zero-knowledge site
                (it must match the site's public key) and refused for any other: the station
                needs it to unwrap job keys, and it is sealed into the grant like the site key.

        Raises:
            PairingNotFoundError: no such pending request.
            InvalidRequestError: the site key is not 32 bytes, a name is empty, or the site
                private key is missing, given for a site that is not zero-knowledge, or does
                not match the site's public key.
            ConflictError: this key is already a station's.
            NotFoundError: the site was never added (`pullprint admin site add`).
        """
        if len(site_key) != KEY_BYTES:
            raise InvalidRequestError("a site key is 32 bytes")
        if not printer_name.strip() or not printer_uri.strip():
            raise InvalidRequestError("the printer needs a name and a URI")
        ctx = self._ctx
        site = site or ctx.site
        now = ctx.now()
        station_id = uuid.uuid4()
        try:
            with ctx.write() as db:
                require_site(db, site)
                row = self._pending(db, user_code)
                _check_private_key(load_policy(ctx, db, site), site_private_key)
                grant: dict[str, object] = {
                    "version": 1,
                    "station_id": str(station_id),
                    "site": site,
                    "printer": {"name": printer_name, "uri": printer_uri},
                    "site_key": site_key.hex(),
                }
                if site_private_key is not None:
                    grant["site_private_key"] = site_private_key.hex()
                plaintext = json.dumps(grant, separators=(",", ":")).encode()
                db.add(
                    Station(
                        id=station_id,
                        site=site,
                        name=printer_name,
                        printer_uri=printer_uri,
                        public_key=row.signing_key,
                        created_at=now,
                        revoked_at=None,
                    )
                )
                db.flush()  # the station row first: the request refers to it
                row.state = PairingState.APPROVED
                row.site = site
                row.station_id = station_id
                row.sealed_grant = seal(row.exchange_key, plaintext, grant_aad(str(row.id)))
                row.expires_at = now + timedelta(seconds=PAIRING_TTL_S)
                ctx.audit(
                    db, "station-paired", station_id=station_id, detail=str(row.id), site=site
                )
                view = ApprovedStation(
                    station_id, site, printer_name, printer_uri, fingerprint(row.signing_key)
                )
        except IntegrityError as exc:
            raise ConflictError("this station key is already paired") from exc
        log.info("pairing approved: station %s in site %s", station_id, site)
        return view

    def deny(self, user_code: str) -> None:
        """Deny a pending request; the station's next poll gets `access_denied`.

        Raises:
            PairingNotFoundError: no such pending request.
        """
        ctx = self._ctx
        with ctx.write() as db:
            row = self._pending(db, user_code)
            row.state = PairingState.DENIED
            ctx.audit(db, "pairing-denied", detail=str(row.id), site=row.site)
        log.info("pairing request denied")

    def sweep(self) -> int:
        """Delete expired requests (and with them any sealed grant); returns how many."""
        ctx = self._ctx
        with ctx.write() as db:
            result = db.execute(
                delete(PairingRequest).where(PairingRequest.expires_at <= ctx.now())
            )
        return int(getattr(result, "rowcount", 0) or 0)

    # -- helpers -----------------------------------------------------------------------------

    def _pending(self, db: Session, user_code: str) -> PairingRequest:
        raw = normalise_user_code(user_code)
        row = None
        if raw is not None:
            row = db.scalar(
                select(PairingRequest).where(
                    PairingRequest.user_code_hash == self._user_hash(raw),
                    PairingRequest.state == PairingState.PENDING,
                    PairingRequest.expires_at > self._ctx.now(),
                )
            )
        if row is None:
            raise PairingNotFoundError("no pending pairing request has this code")
        return row

    def _rate_limit(self, db: Session, source_hash: str, now: datetime) -> None:
        """Refuse a request over the per-source or the global budget; the caller's insert
        follows in the same transaction.

        Counting and then inserting is a race when two transactions count at once: both see
        room for one more and both insert. SQLite has one writer at a time (BEGIN IMMEDIATE),
        so the count there already includes every committed request. PostgreSQL runs writers
        side by side, so the count waits for a transaction-scoped advisory lock first: pairing
        requests are then counted and inserted one at a time across every replica, and the
        lock is released by the commit (or rollback) that ends the transaction. At READ
        COMMITTED the count, a new statement after the wait, sees what the previous holder
        committed.
        """
        if db.get_bind().dialect.name == "postgresql":
            db.execute(select(func.pg_advisory_xact_lock(_RATE_LIMIT_LOCK)))
        since = now - timedelta(seconds=RATE_WINDOW_S)
        recent = select(func.count()).select_from(PairingRequest)
        recent = recent.where(PairingRequest.created_at > since)
        if (db.scalar(recent) or 0) >= MAX_REQUESTS_GLOBAL:
            log.warning("pairing requests rate-limited globally")
            raise TooManyRequestsError("too many pairing requests", retry_after_s=RATE_WINDOW_S)
        mine = recent.where(PairingRequest.source_hash == source_hash)
        if (db.scalar(mine) or 0) >= MAX_REQUESTS_PER_SOURCE:
            raise TooManyRequestsError(
                "too many pairing requests from this address", retry_after_s=RATE_WINDOW_S
            )

    def _user_hash(self, raw_user_code: str) -> str:
        return self._ctx.keyed_hash(b"pairing-user/v1|" + raw_user_code.encode())

    def _device_hash(self, device_code: str) -> str:
        return self._ctx.keyed_hash(b"pairing-device/v1|" + device_code.encode())


def _check_private_key(policy: Policy, private_key: bytes | None) -> None:
    if not policy.zero_knowledge:
        if private_key is not None:
            raise InvalidRequestError("only a zero-knowledge site has a site private key")
        return
    if private_key is None:
        raise InvalidRequestError("a zero-knowledge site's station needs the site private key")
    try:
        public = X25519PrivateKey.from_private_bytes(private_key).public_key()
    except ValueError:
        raise InvalidRequestError("the site private key is a raw 32-byte X25519 key") from None
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if policy.public_key is None or not hmac.compare_digest(raw, policy.public_key):
        raise InvalidRequestError("the site private key does not match the site's public key")


def _check_keys(signing_key: bytes, exchange_key: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(signing_key)
        X25519PublicKey.from_public_bytes(exchange_key)
    except ValueError:
        raise InvalidRequestError("keys are raw 32-byte Ed25519 and X25519 public keys") from None
