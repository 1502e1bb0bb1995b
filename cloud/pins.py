"""Email + PIN at a station: Argon2id verifiers over keyed tags, with back-off and lockout.

The station never sends a PIN: it sends `pin_tag` = HMAC-SHA256(site_key, "pin/v1|" + lower-case
email + "|" + PIN), and the cloud (which never holds the site key) keeps only an Argon2id verifier
of the tag's 32 bytes (OWASP parameters: 19 MiB, 2 iterations, 1 lane). A PIN has so few values
that a leaked verifier is still worth guarding, hence the slow hash on top of the keyed tag.

Rules (DESIGN.md, "Security constructions"):

* a PIN is digits only, at least the site's `min_pin_digits` (6 by default, 4..12), checked
  when it is set (the only moment anyone sees it: the admin CLI computes the tag);
* failures are counted per account and per station, consecutively; from the 3rd failure in a row
  the answer is 429 with Retry-After, the wait doubling from 2 s (account: 2, 4, ... 128 s;
  station: capped at `STATION_BACKOFF_CAP_S`), and attempts during the wait are refused unseen;
* the 10th failure in a row locks the account's PIN (`pin-locked`) until an admin resets it;
* a success resets the account's counter and the station's;
* an unknown email costs the same Argon2 verification as a known one, and is answered like a
  wrong PIN, so neither timing nor answers tell which emails exist.

Two concurrent wrong attempts may both pass the gate before either is counted; the counters are
incremented atomically, so at most a handful of extra guesses slip through, never a stream.
Emails, PINs and tags are never logged; audit events hold ids only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import uuid
from datetime import datetime, timedelta

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cloud.context import ServiceContext
from cloud.db import Pin, PinStationFailures, Site, User
from cloud.errors import (
    InvalidRequestError,
    NotFoundError,
    PinLockedError,
    TooManyRequestsError,
    UnknownCredentialError,
    UserNotFoundError,
)
from cloud.identity import StationPrincipal, parse_tag

log = logging.getLogger(__name__)

PIN_TAG_CONTEXT = b"pin/v1|"
ARGON2_MEMORY_KIB = 19456
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
BACKOFF_FROM_FAILURE = 3
FIRST_BACKOFF_S = 2
PIN_LOCK_FAILURES = 10
STATION_BACKOFF_CAP_S = 300
MIN_PIN_DIGITS_RANGE = (4, 12)
MAX_PIN_DIGITS = 32
_PIN_RE = re.compile(r"^[0-9]+$")


def pin_tag(site_key: bytes, email: str, pin: str) -> str:
    """The tag a station sends for `email` + `pin` (hex), keyed by the site key."""
    message = PIN_TAG_CONTEXT + email.strip().lower().encode() + b"|" + pin.encode()
    return hmac.new(site_key, message, hashlib.sha256).hexdigest()


def backoff_s(failures: int, cap_s: int | None = None) -> int:
    """The wait after `failures` consecutive failures: 0 before the 3rd, then 2, 4, 8 ... s."""
    if failures < BACKOFF_FROM_FAILURE:
        return 0
    wait = FIRST_BACKOFF_S * (1 << min(failures - BACKOFF_FROM_FAILURE, 20))
    return wait if cap_s is None else min(wait, cap_s)


class Pins:
    """Setting, resetting and checking PINs."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._hasher = PasswordHasher(
            time_cost=ARGON2_TIME_COST,
            memory_cost=ARGON2_MEMORY_KIB,
            parallelism=ARGON2_PARALLELISM,
            type=Type.ID,
        )
        self._dummy: str | None = None  # made on first use: no work at construction

    # -- administration ----------------------------------------------------------------------

    def set_pin(self, email: str, pin: str, site_key: bytes, site: str | None = None) -> uuid.UUID:
        """Set (or replace) a user's PIN, clearing any lockout; returns the user's id.

        The PIN and the site key are used here only to compute the tag; neither is stored.

        Raises:
            InvalidRequestError: the PIN is not digits, is shorter than the site allows, or the
                site key is not 32 bytes.
            UserNotFoundError: no such user in the site.
        """
        ctx = self._ctx
        site = site or ctx.site
        if len(site_key) != 32:
            raise InvalidRequestError("a site key is 32 bytes")
        minimum = self.min_digits(site)
        if not _PIN_RE.match(pin) or not minimum <= len(pin) <= MAX_PIN_DIGITS:
            raise InvalidRequestError(f"a PIN is {minimum} to {MAX_PIN_DIGITS} digits in this site")
        verifier = self._hasher.hash(bytes.fromhex(pin_tag(site_key, email, pin)))
        now = ctx.now()
        with ctx.write() as db:
            user = _user(db, site, email)
            if user is None:
                raise UserNotFoundError("no user with this email")
            row = db.scalar(select(Pin).where(Pin.user_id == user.id, Pin.site == site))
            if row is None:
                row = Pin(user_id=user.id, site=site)
                db.add(row)
            row.verifier, row.failures, row.updated_at = verifier, 0, now
            row.blocked_until = row.locked_at = None
            ctx.audit(db, "pin-set", user_id=user.id, site=site)
            user_id = user.id
        log.info("PIN set for user %s", user_id)
        return user_id

    def reset(self, email: str, site: str | None = None) -> uuid.UUID:
        """Clear a user's failure count and lockout (the PIN itself stays); returns the user's id.

        Raises:
            UserNotFoundError: no such user in the site.
            NotFoundError: the user has no PIN.
        """
        ctx = self._ctx
        site = site or ctx.site
        with ctx.write() as db:
            user = _user(db, site, email)
            if user is None:
                raise UserNotFoundError("no user with this email")
            row = db.scalar(select(Pin).where(Pin.user_id == user.id, Pin.site == site))
            if row is None:
                raise NotFoundError("this user has no PIN")
            row.failures, row.blocked_until, row.locked_at = 0, None, None
            row.updated_at = ctx.now()
            ctx.audit(db, "pin-reset", user_id=user.id, site=site)
            user_id = user.id
        log.info("PIN lockout reset for user %s", user_id)
        return user_id

    def min_digits(self, site: str) -> int:
        """The site's shortest allowed PIN (6 when the site is not registered)."""
        with self._ctx.read() as db:
            found = db.scalar(select(Site.min_pin_digits).where(Site.name == site))
        return found if found is not None else 6

    def set_min_digits(self, site: str, digits: int) -> None:
        """Set the site's PIN policy; existing PINs stay until they are next set.

        Raises:
            InvalidRequestError: `digits` is outside 4..12.
            NotFoundError: no such site.
        """
        low, high = MIN_PIN_DIGITS_RANGE
        if not low <= digits <= high:
            raise InvalidRequestError(f"the shortest PIN is {low} to {high} digits")
        with self._ctx.write() as db:
            changed = db.execute(
                update(Site).where(Site.name == site).values(min_pin_digits=digits)
            )
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                raise NotFoundError("no such site")

    # -- authentication ----------------------------------------------------------------------

    def authenticate(self, station: StationPrincipal, email: str, tag: str) -> uuid.UUID:
        """Check email + PIN tag presented at `station`; returns the user's id.

        Raises:
            InvalidTagError: the tag is malformed.
            TooManyRequestsError: the account or the station is in back-off (3rd failure on).
            PinLockedError: 10 failures in a row; an admin must reset the PIN.
            UnknownCredentialError: a wrong PIN, an unknown email, or a user without a PIN.
        """
        ctx = self._ctx
        presented = parse_tag(tag)
        now = ctx.now()
        site = station.site
        with ctx.read() as db:
            user = _user(db, site, email)
            pin = (
                db.scalar(select(Pin).where(Pin.user_id == user.id, Pin.site == site))
                if user is not None
                else None
            )
            at_station = _station_row(db, station)
            station_blocked = at_station.blocked_until if at_station is not None else None
        _refuse_if_waiting(station_blocked, now)
        if pin is not None:
            if pin.locked_at is not None:
                raise PinLockedError("this PIN is locked after too many failures; ask an admin")
            _refuse_if_waiting(pin.blocked_until, now)
        ok = self._verify(pin.verifier if pin is not None else None, presented)
        if ok and pin is not None:
            with ctx.write() as db:
                _reset_counts(db, station, pin.user_id)
            return pin.user_id
        account_failures, station_failures = self._count_failure(
            station, pin.user_id if pin is not None else None, now
        )
        if account_failures >= PIN_LOCK_FAILURES:
            log.warning(
                "PIN of user %s locked after %d failures", pin and pin.user_id, PIN_LOCK_FAILURES
            )
            raise PinLockedError("this PIN is locked after too many failures; ask an admin")
        wait = max(backoff_s(account_failures), backoff_s(station_failures, STATION_BACKOFF_CAP_S))
        if wait:
            raise TooManyRequestsError(
                "too many wrong PINs; wait and try again", retry_after_s=wait
            )
        raise UnknownCredentialError("unknown email or wrong PIN")

    def _verify(self, verifier: str | None, presented: bytes) -> bool:
        if self._dummy is None:
            self._dummy = self._hasher.hash(b"\0" * 32)
        try:
            self._hasher.verify(verifier or self._dummy, presented)
        except (VerificationError, InvalidHashError):
            return False
        return verifier is not None

    def _count_failure(
        self, station: StationPrincipal, user_id: uuid.UUID | None, now: datetime
    ) -> tuple[int, int]:
        """Count one failure for the account (if any) and the station; returns both counts."""
        ctx = self._ctx
        account = 0
        with ctx.write() as db:
            if user_id is not None:
                db.execute(
                    update(Pin)
                    .where(Pin.user_id == user_id, Pin.site == station.site)
                    .values(failures=Pin.failures + 1, updated_at=now)
                )
                row = db.scalar(select(Pin).where(Pin.user_id == user_id, Pin.site == station.site))
                assert row is not None
                account = row.failures
                if account >= PIN_LOCK_FAILURES:
                    row.locked_at = row.locked_at or now
                elif wait := backoff_s(account):
                    row.blocked_until = now + timedelta(seconds=wait)
            # Locked: `failures += 1` is a read-modify-write, which SQLite's single writer made
            # safe; on PostgreSQL two concurrent failures would otherwise count once.
            # The row is made first with an insert that yields to a concurrent one (two first
            # failures at once would otherwise both insert it, and one would fail with a 500).
            _ensure_station_row(db, station)
            at_station = _station_row(db, station, lock=True)
            assert at_station is not None
            at_station.failures += 1
            if wait := backoff_s(at_station.failures, STATION_BACKOFF_CAP_S):
                at_station.blocked_until = now + timedelta(seconds=wait)
            ctx.audit(db, "pin-failed", user_id=user_id, station_id=station.id, site=station.site)
            return account, at_station.failures


def _user(db: Session, site: str, email: str) -> User | None:
    return db.scalar(
        select(User).where(User.site == site, func.lower(User.email) == email.strip().lower())
    )


def _ensure_station_row(db: Session, station: StationPrincipal) -> None:
    """Insert the station's zero counter unless it exists (INSERT ... ON CONFLICT DO NOTHING)."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.execute(
        insert(PinStationFailures)
        .values(station_id=station.id, site=station.site, failures=0, blocked_until=None)
        .on_conflict_do_nothing(index_elements=["station_id"])
    )


def _station_row(
    db: Session, station: StationPrincipal, *, lock: bool = False
) -> PinStationFailures | None:
    query = select(PinStationFailures).where(
        PinStationFailures.station_id == station.id, PinStationFailures.site == station.site
    )
    return db.scalar(query.with_for_update() if lock else query)


def _reset_counts(db: Session, station: StationPrincipal, user_id: uuid.UUID) -> None:
    db.execute(
        update(Pin)
        .where(Pin.user_id == user_id, Pin.site == station.site)
        .values(failures=0, blocked_until=None)
    )
    db.execute(
        update(PinStationFailures)
        .where(PinStationFailures.station_id == station.id, PinStationFailures.site == station.site)
        .values(failures=0, blocked_until=None)
    )


def _refuse_if_waiting(blocked_until: datetime | None, now: datetime) -> None:
    if blocked_until is not None and blocked_until > now:
        wait = math.ceil((blocked_until - now).total_seconds())
        raise TooManyRequestsError("too many wrong PINs; wait and try again", retry_after_s=wait)
