"""App passcodes: what a user types into CUPS, macOS or iOS as the password of the secure queue.

An app passcode is issued by an admin for one user, shown once, and stored only as
HMAC-SHA256(pepper, "passcode/v1|" + passcode), like user tokens (`cloud.identity`). It is used
with the user's email over HTTP Basic (RFC 7617) on the IPP endpoint only, and can be revoked at
once without touching the user's other passcodes or API token.

Invariants: a passcode is 100 random bits, so online guessing is hopeless and no key stretching is
needed; comparisons are constant-time, and an unknown email costs the same HMAC and comparison
as a known one, so timing does not tell which emails exist. Passcodes never reach a log or an
error message.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from cloud.context import ServiceContext
from cloud.db import AppPasscode, User
from cloud.errors import NotFoundError, UnauthorizedError, UserNotFoundError
from cloud.identity import UserPrincipal

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


class Passcodes:
    """Issuing, listing, revoking and checking app passcodes."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

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
            user = db.scalar(select(User).where(User.id == user_id, User.site == site))
            if user is None:
                raise UserNotFoundError("no such user")
            db.add(
                AppPasscode(
                    id=passcode_id,
                    site=site,
                    user_id=user_id,
                    label=label,
                    secret_hash=self._hash(passcode),
                    created_at=ctx.now(),
                    revoked_at=None,
                )
            )
            ctx.audit(db, "passcode-issued", user_id=user_id, detail=str(passcode_id), site=site)
        log.info("issued app passcode %s for user %s", passcode_id, user_id)
        return IssuedPasscode(passcode_id, user_id, label, passcode)

    def list_for(self, user_id: uuid.UUID, site: str | None = None) -> list[PasscodeView]:
        """The user's passcodes, oldest first, revoked ones included."""
        site = site or self._ctx.site
        with self._ctx.read() as db:
            rows = db.scalars(
                select(AppPasscode)
                .where(AppPasscode.site == site, AppPasscode.user_id == user_id)
                .order_by(AppPasscode.created_at, AppPasscode.id)
            )
            return [
                PasscodeView(row.id, row.user_id, row.label, row.created_at, row.revoked_at)
                for row in rows
            ]

    def revoke(self, user_id: uuid.UUID, passcode_id: uuid.UUID, site: str | None = None) -> None:
        """Revoke one passcode at once (idempotent).

        Raises:
            PasscodeNotFoundError: no such passcode for this user.
        """
        ctx = self._ctx
        site = site or ctx.site
        with ctx.write() as db:
            row = db.scalar(
                select(AppPasscode).where(
                    AppPasscode.id == passcode_id,
                    AppPasscode.site == site,
                    AppPasscode.user_id == user_id,
                )
            )
            if row is None:
                raise PasscodeNotFoundError("no such passcode for this user")
            if row.revoked_at is None:
                row.revoked_at = ctx.now()
                ctx.audit(
                    db, "passcode-revoked", user_id=user_id, detail=str(passcode_id), site=site
                )
        log.info("revoked app passcode %s of user %s", passcode_id, user_id)

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
