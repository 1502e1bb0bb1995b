"""App passcodes: what a user types into CUPS, macOS or iOS as the password of the secure queue.

An app passcode is issued by an admin for one user, shown once, and stored only as
HMAC-SHA256(pepper, "passcode/v1|" + passcode), like user tokens (`cloud.identity`). It is used
with the user's email over HTTP Basic (RFC 7617) on the IPP endpoint only, and can be revoked at
once without touching the user's other passcodes or API token.

Invariants: a passcode is 100 random bits, so online guessing is hopeless and no key stretching is
needed; comparisons are constant-time, and an unknown email costs the same HMAC and comparison
as a known one, so timing does not tell which emails exist. Passcodes never reach a log or an
error message.

Release passcodes (`ReleasePasscodes`) are the other kind: digits a user types on a station's
keypad instead of tapping a badge. Per site policy they are single-use with a short expiry (10
digits, gone once used) or long-lived (12 digits, until revoked). They are stored only as
HMAC-SHA256(pepper, "release-passcode/v1|" + site + "|" + digits), unique, so the digits alone
find their row (no user is named at a keypad). Digits are few enough to guess at, so wrong
passcodes are counted per station with the PIN back-off (from the 3rd failure in a row, 2, 4 ...
s, capped at `STATION_BACKOFF_CAP_S`), and an unknown, used, expired or revoked passcode all get
the same answer. The station sends the digits themselves over TLS (as app passcodes travel in
HTTP Basic): it cannot key them, because the cloud that issues them never holds the site key.

Both kinds share one core (`_PasscodeBook`: recording an issued row with its audit entry,
listing without secrets, revoking once); each face adds how its secret is made, stored and
checked.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.context import ServiceContext
from cloud.db import AppPasscode, PasscodeStationFailures, ReleasePasscode, User
from cloud.errors import (
    NotFoundError,
    TooManyRequestsError,
    UnauthorizedError,
    UnknownPasscodeError,
    UserNotFoundError,
)
from cloud.identity import StationPrincipal, UserPrincipal, read_policy
from cloud.pins import STATION_BACKOFF_CAP_S, backoff_s

log = logging.getLogger(__name__)

# 32 symbols without the look-alikes l/1 and o/0: 5 bits each, 20 of them = 100 bits.
_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
_GROUPS, _GROUP_CHARS = 4, 5
_DUMMY_HASH = "0" * 64
_MAX_LABEL_CHARS = 200


class PasscodeNotFoundError(NotFoundError):
    """No such passcode for this user."""

    code = "passcode-not-found"
    title = "Passcode not found"


@dataclass(frozen=True, slots=True)
class IssuedPasscode:
    """A new passcode, shown exactly once."""

    id: uuid.UUID
    user_id: uuid.UUID
    label: str
    passcode: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class PasscodeView:
    """A passcode as listed (never its secret)."""

    id: uuid.UUID
    user_id: uuid.UUID
    label: str
    created_at: datetime
    revoked_at: datetime | None


def new_passcode() -> str:
    """A fresh passcode, e.g. `k7dqm-2xr9a-fh3tb-wpe5n` (URL-safe: fits in a printer URI)."""
    groups = (
        "".join(secrets.choice(_ALPHABET) for _ in range(_GROUP_CHARS)) for _ in range(_GROUPS)
    )
    return "-".join(groups)


def _normalise(passcode: str) -> bytes:
    # People retype passcodes: forgive case and surrounding blanks, nothing else.
    return passcode.strip().lower().encode()


_Row = TypeVar("_Row", AppPasscode, ReleasePasscode)
_View = TypeVar("_View")


def _require_user(db: Session, user_id: uuid.UUID, site: str) -> None:
    if db.scalar(select(User.id).where(User.id == user_id, User.site == site)) is None:
        raise UserNotFoundError("no such user")


class _PasscodeBook(Generic[_Row, _View]):
    """What both kinds of passcode share: a user's rows in one site, recorded with an audit
    entry, listed without their secrets, and revoked at once (idempotently).

    A face names its table (`_model`), what logs call it (`_kind`), the prefix of its audit
    events (`_event`), and how a row is listed (`_view`).
    """

    _model: type[_Row]
    _kind: str
    _event: str

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def _view(self, row: _Row) -> _View:
        raise NotImplementedError

    def _record(self, db: Session, row: _Row) -> None:
        """Add a new passcode row and audit its issue (in the caller's transaction)."""
        db.add(row)
        db.flush()  # a taken secret fails here, before the audit entry
        self._ctx.audit(
            db, f"{self._event}-issued", user_id=row.user_id, detail=str(row.id), site=row.site
        )

    def list_for(self, user_id: uuid.UUID, site: str | None = None) -> list[_View]:
        """The user's passcodes, oldest first, spent and revoked ones included."""
        model = self._model
        site = site or self._ctx.site
        with self._ctx.read() as db:
            rows = db.scalars(
                select(model)
                .where(model.site == site, model.user_id == user_id)
                .order_by(model.created_at, model.id)
            )
            return [self._view(row) for row in rows]

    def revoke(self, user_id: uuid.UUID, passcode_id: uuid.UUID, site: str | None = None) -> None:
        """Revoke one passcode at once (idempotent).

        Raises:
            PasscodeNotFoundError: no such passcode for this user.
        """
        ctx, model = self._ctx, self._model
        site = site or ctx.site
        with ctx.write() as db:
            row = db.scalar(
                select(model).where(
                    model.id == passcode_id, model.site == site, model.user_id == user_id
                )
            )
            if row is None:
                raise PasscodeNotFoundError("no such passcode for this user")
            if row.revoked_at is None:
                row.revoked_at = ctx.now()
                ctx.audit(
                    db,
                    f"{self._event}-revoked",
                    user_id=user_id,
                    detail=str(passcode_id),
                    site=site,
                )
        log.info("revoked %s %s of user %s", self._kind, passcode_id, user_id)


class Passcodes(_PasscodeBook[AppPasscode, PasscodeView]):
    """Issuing, listing, revoking and checking app passcodes."""

    _model = AppPasscode
    _kind = "app passcode"
    _event = "passcode"

    def _view(self, row: AppPasscode) -> PasscodeView:
        return PasscodeView(row.id, row.user_id, row.label, row.created_at, row.revoked_at)

    def _hash(self, passcode: str) -> str:
        return self._ctx.keyed_hash(b"passcode/v1|" + _normalise(passcode))

    def user_by_email(self, email: str, site: str | None = None) -> UserPrincipal:
        """The user with this email in `site` (default: the config's; case-insensitive).

        Raises:
            UserNotFoundError: no such user.
        """
        with self._ctx.read() as db:
            user = db.scalar(
                select(User).where(
                    User.site == (site or self._ctx.site),
                    func.lower(User.email) == email.strip().lower(),
                )
            )
            if user is None:
                raise UserNotFoundError("no user with this email")
            return UserPrincipal(user.id, user.site, user.email, user.display_name)

    def issue(self, user_id: uuid.UUID, label: str = "", site: str | None = None) -> IssuedPasscode:
        """Issue a passcode for a user (returned once, stored only as an HMAC).

        Raises:
            UserNotFoundError: no such user in this site.
        """
        ctx = self._ctx
        passcode = new_passcode()
        passcode_id = uuid.uuid4()
        label = label.strip()[:_MAX_LABEL_CHARS]
        site = site or ctx.site
        with ctx.write() as db:
            _require_user(db, user_id, site)
            self._record(
                db,
                AppPasscode(
                    id=passcode_id,
                    site=site,
                    user_id=user_id,
                    label=label,
                    secret_hash=self._hash(passcode),
                    created_at=ctx.now(),
                    revoked_at=None,
                ),
            )
        log.info("issued app passcode %s for user %s", passcode_id, user_id)
        return IssuedPasscode(passcode_id, user_id, label, passcode)

    def authenticate(self, email: str, passcode: str) -> UserPrincipal:
        """Resolve HTTP Basic credentials (email, app passcode) to a user of the default site.

        Emails are unique only within a site, so Basic authentication names users of the
        config's site; users of other sites authenticate on IPP with their bearer token.

        Raises:
            UnauthorizedError: unknown email, or no unrevoked passcode of that user matches.
        """
        ctx = self._ctx
        presented = self._hash(passcode)
        with ctx.read() as db:
            user = db.scalar(
                select(User).where(
                    User.site == ctx.site, func.lower(User.email) == email.strip().lower()
                )
            )
            stored: list[str] = []
            if user is not None:
                stored = list(
                    db.scalars(
                        select(AppPasscode.secret_hash).where(
                            AppPasscode.user_id == user.id,
                            AppPasscode.site == user.site,
                            AppPasscode.revoked_at.is_(None),
                        )
                    )
                )
            # Compare against every candidate (at least one) so the work does not depend on
            # whether, or where, a match is found.
            matched = False
            for candidate in stored or [_DUMMY_HASH]:
                matched |= hmac.compare_digest(presented, candidate)
            if user is None or not stored or not matched:
                raise UnauthorizedError("invalid email or app passcode")
            return UserPrincipal(user.id, user.site, user.email, user.display_name)


# --- release passcodes (typed at a station) ---

SINGLE_USE_DIGITS = 10
LONG_LIVED_DIGITS = 12
# What a station may send: anything else is refused before any lookup (and still counted).
RELEASE_PASSCODE_DIGITS_RANGE = (6, 16)
_ISSUE_ATTEMPTS = 5  # a fresh random passcode colliding with a live one is rare; retry


@dataclass(frozen=True, slots=True)
class IssuedReleasePasscode:
    """A new release passcode, shown exactly once."""

    id: uuid.UUID
    user_id: uuid.UUID
    label: str
    single_use: bool
    expires_at: datetime | None
    passcode: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ReleasePasscodeView:
    """A release passcode as listed (never its digits)."""

    id: uuid.UUID
    user_id: uuid.UUID
    label: str
    single_use: bool
    created_at: datetime
    expires_at: datetime | None
    used_at: datetime | None
    revoked_at: datetime | None


def new_release_passcode(digits: int) -> str:
    """`digits` random decimal digits (a keypad has nothing else)."""
    return "".join(secrets.choice("0123456789") for _ in range(digits))


class ReleasePasscodes(_PasscodeBook[ReleasePasscode, ReleasePasscodeView]):
    """Issuing, listing, revoking and checking the passcodes typed at a station's keypad."""

    _model = ReleasePasscode
    _kind = "release passcode"
    _event = "release-passcode"

    def _view(self, row: ReleasePasscode) -> ReleasePasscodeView:
        return ReleasePasscodeView(
            row.id,
            row.user_id,
            row.label,
            row.single_use,
            row.created_at,
            row.expires_at,
            row.used_at,
            row.revoked_at,
        )

    def _lookup(self, site: str, passcode: str) -> str:
        return self._ctx.keyed_hash(
            b"release-passcode/v1|" + site.encode() + b"|" + passcode.encode()
        )

    def issue(
        self, user_id: uuid.UUID, site: str | None = None, label: str = ""
    ) -> IssuedReleasePasscode:
        """Issue a release passcode under the site's policy (returned once, kept as an HMAC).

        Raises:
            UserNotFoundError: no such user in this site.
        """
        ctx = self._ctx
        site = site or ctx.site
        label = label.strip()[:_MAX_LABEL_CHARS]
        for attempt in range(_ISSUE_ATTEMPTS):
            passcode_id, now = uuid.uuid4(), ctx.now()
            try:
                with ctx.write() as db:
                    _require_user(db, user_id, site)
                    policy = read_policy(db, site)
                    single_use = policy.passcode_mode == "single-use"
                    passcode = new_release_passcode(
                        SINGLE_USE_DIGITS if single_use else LONG_LIVED_DIGITS
                    )
                    expires_at = (
                        now + timedelta(seconds=policy.passcode_ttl_s) if single_use else None
                    )
                    self._record(
                        db,
                        ReleasePasscode(
                            id=passcode_id,
                            site=site,
                            user_id=user_id,
                            lookup=self._lookup(site, passcode),
                            label=label,
                            single_use=single_use,
                            created_at=now,
                            expires_at=expires_at,
                            used_at=None,
                            revoked_at=None,
                        ),
                    )
            except IntegrityError:
                # The same digits are live already (for anyone): draw again.
                if attempt == _ISSUE_ATTEMPTS - 1:
                    raise
                continue
            log.info("issued release passcode %s for user %s", passcode_id, user_id)
            return IssuedReleasePasscode(
                passcode_id, user_id, label, single_use, expires_at, passcode
            )
        raise AssertionError("unreachable: the last attempt returns or raises")

    def authenticate(self, station: StationPrincipal, passcode: str) -> uuid.UUID:
        """The user whose passcode was typed at `station`; a single-use passcode is spent.

        Raises:
            TooManyRequestsError: the station is in back-off (3rd wrong passcode in a row on).
            UnknownPasscodeError: no usable passcode matches (the same answer for every reason).
        """
        ctx = self._ctx
        now = ctx.now()
        site = station.site
        low, high = RELEASE_PASSCODE_DIGITS_RANGE
        well_formed = passcode.isascii() and passcode.isdigit() and low <= len(passcode) <= high
        presented = self._lookup(site, passcode if well_formed else "")
        with ctx.write() as db:
            counter = db.get(PasscodeStationFailures, station.id)
            if counter is not None and counter.site == site:
                _refuse_while_blocked(counter.blocked_until, now)
            row = (
                db.scalar(
                    select(ReleasePasscode).where(
                        ReleasePasscode.lookup == presented, ReleasePasscode.site == site
                    )
                )
                if well_formed
                else None
            )
            usable = (
                row is not None
                and hmac.compare_digest(row.lookup, presented)
                and row.revoked_at is None
                and (row.expires_at is None or row.expires_at > now)
                and not (row.single_use and row.used_at is not None)
            )
            if usable and row is not None and row.single_use:
                spent = db.execute(
                    update(ReleasePasscode)
                    .where(ReleasePasscode.id == row.id, ReleasePasscode.used_at.is_(None))
                    .values(used_at=now)
                )
                usable = spent.rowcount == 1  # type: ignore[attr-defined]
            if usable and row is not None:
                if counter is not None:
                    counter.failures, counter.blocked_until = 0, None
                ctx.audit(
                    db,
                    "release-passcode-used",
                    user_id=row.user_id,
                    station_id=station.id,
                    detail=str(row.id),
                    site=site,
                )
                return row.user_id
            failures = _count_station_failure(db, station, counter, now)
            ctx.audit(db, "release-passcode-failed", station_id=station.id, site=site)
        log.info("wrong release passcode at station %s", station.id)
        wait = backoff_s(failures, STATION_BACKOFF_CAP_S)
        if wait:
            raise TooManyRequestsError(
                "too many wrong passcodes; wait and try again", retry_after_s=wait
            )
        raise UnknownPasscodeError("this passcode is not valid")


def _count_station_failure(
    db: Session,
    station: StationPrincipal,
    counter: PasscodeStationFailures | None,
    now: datetime,
) -> int:
    if counter is None:
        counter = PasscodeStationFailures(
            station_id=station.id, site=station.site, failures=0, blocked_until=None
        )
        db.add(counter)
    counter.failures += 1
    if wait := backoff_s(counter.failures, STATION_BACKOFF_CAP_S):
        counter.blocked_until = now + timedelta(seconds=wait)
    return counter.failures


def _refuse_while_blocked(blocked_until: datetime | None, now: datetime) -> None:
    if blocked_until is not None and blocked_until > now:
        wait = math.ceil((blocked_until - now).total_seconds())
        raise TooManyRequestsError(
            "too many wrong passcodes; wait and try again", retry_after_s=wait
        )
