"""Who is calling: users, their badges, and the admin, and how each is authenticated.

User bearer tokens are `ppu_<user id>.<secret>`, issued once; the cloud keeps only
HMAC-SHA256(pepper, secret). Stations do not use bearer tokens: they are paired
(`cloud.pairing`) and sign every request (`cloud.stations`); `StationPrincipal` is defined here
because every station-facing module takes one. Badge tags arrive already keyed
by the station's site key and are stored as HMAC-SHA256(pepper, tag bytes), so neither a database
dump nor the cloud's logs can be turned back into a badge number. Comparisons are constant-time,
and an unknown id costs the same HMAC as a known one, so timing tells nothing about which ids exist.

Neither tokens nor tags are ever logged or put in an error message.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.context import ServiceContext
from cloud.db import Credential, SiteIdentityPolicy, StationSession, User
from cloud.errors import (
    CredentialExistsError,
    CredentialNotFoundError,
    InvalidRequestError,
    InvalidTagError,
    UnauthorizedError,
    UserExistsError,
    UserNotFoundError,
)
from cloud.prepared import Prepared
from cloud.sites import require_site

log = logging.getLogger(__name__)

USER_TOKEN_PREFIX = "ppu_"  # noqa: S105 - a prefix, not a secret
_TAG_RE = re.compile(r"^[0-9a-f]{64}$")
# Compared against when the id is unknown, so both paths do the same work.
_DUMMY_HASH = "0" * 64
_MAX_LABEL_CHARS = 200

PasscodeMode = Literal["single-use", "long-lived"]
PASSCODE_MODES: tuple[str, ...] = ("single-use", "long-lived")
# A single-use passcode lives minutes, not days: it is typed once, soon after it is issued.
PASSCODE_TTL_RANGE_S = (60, 7 * 24 * 3600)


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """How a site's users identify at a station (the defaults when the site set nothing).

    Attributes:
        card_pin: a badge tap asks for the user's PIN before the job list.
        self_enrolment: an unknown badge gets a one-time enrolment code on the station.
        passcode_mode: release passcodes are "single-use" (and expire after `passcode_ttl_s`)
            or "long-lived" (until revoked).
        passcode_ttl_s: the life of a single-use release passcode.
    """

    card_pin: bool = False
    self_enrolment: bool = False
    passcode_mode: PasscodeMode = "single-use"
    passcode_ttl_s: int = 900


@dataclass(frozen=True, slots=True)
class UserPrincipal:
    """An authenticated user."""

    id: uuid.UUID
    site: str
    email: str
    display_name: str


@dataclass(frozen=True, slots=True)
class StationPrincipal:
    """An authenticated, unrevoked station."""

    id: uuid.UUID
    site: str
    name: str
    printer_uri: str


@dataclass(frozen=True, slots=True)
class IssuedUser:
    """A new user and their API token, shown exactly once."""

    id: uuid.UUID
    email: str
    display_name: str
    api_token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class CardView:
    """An enrolled card (never its tag)."""

    id: uuid.UUID
    user_id: uuid.UUID
    label: str
    created_at: datetime | None = None


def parse_tag(tag: str) -> bytes:
    """Validate a credential tag (64 lowercase hex characters) and return its 32 bytes.

    Raises:
        InvalidTagError: the tag is malformed (the message does not repeat it).
    """
    if not isinstance(tag, str) or not _TAG_RE.match(tag):
        raise InvalidTagError("a tag is 64 lowercase hex characters")
    return bytes.fromhex(tag)


def _split_token(token: str, prefix: str) -> tuple[uuid.UUID, str] | None:
    if not token.startswith(prefix):
        return None
    ident, sep, secret = token[len(prefix) :].partition(".")
    if not sep or not secret:
        return None
    try:
        return uuid.UUID(ident), secret
    except ValueError:
        return None


class Identity:
    """Enrolment and authentication of users and cards (admins: `cloud.sites`)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    # -- enrolment ---------------------------------------------------------------------------

    def create_user(self, email: str, display_name: str, site: str | None = None) -> IssuedUser:
        """Create a user in `site` (default: the config's) and issue their API token.

        The token is returned once and stored only as an HMAC.

        Raises:
            UserExistsError: the email is already taken in this site.
            NotFoundError: the site was never added.
        """
        ctx = self._ctx
        site = site or ctx.site
        user_id = uuid.uuid4()
        secret = secrets.token_urlsafe(32)
        email = email.strip()
        try:
            with ctx.write() as db:
                require_site(db, site)
                taken = db.scalar(select(User.id).where(User.site == site, User.email == email))
                if taken is not None:
                    raise UserExistsError("a user with this email already exists")
                db.add(
                    User(
                        id=user_id,
                        site=site,
                        email=email,
                        display_name=display_name,
                        token_hash=ctx.keyed_hash(secret.encode()),
                        created_at=ctx.now(),
                    )
                )
                ctx.audit(db, "user-created", user_id=user_id, site=site)
        except IntegrityError as exc:  # a concurrent insert won the race
            raise UserExistsError("a user with this email already exists") from exc
        log.info("created user %s", user_id)
        return IssuedUser(user_id, email, display_name, f"{USER_TOKEN_PREFIX}{user_id}.{secret}")

    def add_card(
        self, user_id: uuid.UUID, tag: str, label: str = "", site: str | None = None
    ) -> CardView:
        """Enrol a badge for a user of `site` (default: the config's), by its station tag.

        Raises:
            InvalidTagError: the tag is malformed.
            UserNotFoundError: no such user in this site.
            CredentialExistsError: the tag is already enrolled (to anyone).
        """
        ctx = self._ctx
        site = site or ctx.site
        lookup = ctx.keyed_hash(parse_tag(tag))
        try:
            with ctx.write() as db:
                view = add_card_row(ctx, db, user_id, lookup, label=label, site=site)
        except IntegrityError as exc:
            raise CredentialExistsError("this credential is already enrolled") from exc
        log.info("enrolled a card for user %s", user_id)
        return view

    def card_owner(self, tag: str, site: str | None = None) -> uuid.UUID | None:
        """The user a badge tag is enrolled to in `site`, or None (for idempotent imports).

        Raises:
            InvalidTagError: the tag is malformed.
        """
        lookup = self._ctx.keyed_hash(parse_tag(tag))
        with self._ctx.read() as db:
            return db.scalar(
                select(Credential.user_id).where(
                    Credential.lookup == lookup, Credential.site == (site or self._ctx.site)
                )
            )

    def list_cards(self, user_id: uuid.UUID, site: str | None = None) -> list[CardView]:
        """A user's badges, oldest first (labels only, never tags).

        Raises:
            UserNotFoundError: no such user in this site.
        """
        site = site or self._ctx.site
        with self._ctx.read() as db:
            if db.scalar(select(User.id).where(User.id == user_id, User.site == site)) is None:
                raise UserNotFoundError("no such user")
            rows = db.scalars(
                select(Credential)
                .where(Credential.user_id == user_id, Credential.site == site)
                .order_by(Credential.created_at, Credential.id)
            )
            return [CardView(row.id, row.user_id, row.label, row.created_at) for row in rows]

    def remove_card(self, user_id: uuid.UUID, card_id: uuid.UUID, site: str | None = None) -> None:
        """Remove one of a user's badges at once; the badge may be enrolled again later.

        Sessions it opened keep their history but no longer point at it.

        Raises:
            CredentialNotFoundError: no such badge for this user in this site.
        """
        ctx = self._ctx
        site = site or ctx.site
        with ctx.write() as db:
            row = db.scalar(
                select(Credential).where(
                    Credential.id == card_id,
                    Credential.user_id == user_id,
                    Credential.site == site,
                )
            )
            if row is None:
                raise CredentialNotFoundError("no such badge for this user")
            db.execute(
                update(StationSession)
                .where(StationSession.credential_id == card_id, StationSession.site == site)
                .values(credential_id=None)
            )
            db.delete(row)
            ctx.audit(db, "credential-removed", user_id=user_id, detail=str(card_id), site=site)
        log.info("removed card %s of user %s", card_id, user_id)

    # -- site policy -------------------------------------------------------------------------

    def policy(self, site: str | None = None) -> IdentityPolicy:
        """The site's identity policy (the defaults if it never set one)."""
        with self._ctx.read() as db:
            return read_policy(db, site or self._ctx.site)

    def set_policy(
        self,
        site: str | None = None,
        *,
        card_pin: bool | None = None,
        self_enrolment: bool | None = None,
        passcode_mode: str | None = None,
        passcode_ttl_s: int | None = None,
    ) -> IdentityPolicy:
        """Change the given parts of a site's identity policy; returns the whole new policy.

        Raises:
            InvalidRequestError: an unknown passcode mode or a TTL out of range.
            NotFoundError: no such site.
        """
        ctx = self._ctx
        site = site or ctx.site
        if passcode_mode is not None and passcode_mode not in PASSCODE_MODES:
            raise InvalidRequestError(f"passcode mode is one of {', '.join(PASSCODE_MODES)}")
        low, high = PASSCODE_TTL_RANGE_S
        if passcode_ttl_s is not None and not low <= passcode_ttl_s <= high:
            raise InvalidRequestError(f"a passcode lives {low} to {high} seconds")
        with ctx.write() as db:
            require_site(db, site)
            policy = read_policy(db, site)
            if card_pin is not None:
                policy = replace(policy, card_pin=card_pin)
            if self_enrolment is not None:
                policy = replace(policy, self_enrolment=self_enrolment)
            if passcode_mode is not None:
                mode: PasscodeMode = "long-lived" if passcode_mode == "long-lived" else "single-use"
                policy = replace(policy, passcode_mode=mode)
            if passcode_ttl_s is not None:
                policy = replace(policy, passcode_ttl_s=passcode_ttl_s)
            row = db.get(SiteIdentityPolicy, site)
            if row is None:
                row = SiteIdentityPolicy(site=site)
                db.add(row)
            row.card_pin, row.self_enrolment = policy.card_pin, policy.self_enrolment
            row.passcode_mode, row.passcode_ttl_s = policy.passcode_mode, policy.passcode_ttl_s
            row.updated_at = ctx.now()
            ctx.audit(db, "identity-policy-set", site=site)
        return policy

    # -- authentication ----------------------------------------------------------------------

    def authenticate_user(self, token: str) -> UserPrincipal:
        """Resolve a user bearer token.

        Raises:
            UnauthorizedError: malformed, unknown or wrong token.
        """
        parsed = _split_token(token, USER_TOKEN_PREFIX)
        ident, secret = parsed if parsed is not None else (None, token)
        row = None
        if ident is not None:
            with self._ctx.read_core() as db:
                row = _USER_BY_TOKEN_ID.first(db, {"id": ident})
        if not self._check(secret, row[4] if row is not None else None):
            raise UnauthorizedError("invalid user token")
        assert row is not None
        user_id, site, email, display_name, _token_hash = row
        return UserPrincipal(user_id, site, email, display_name)

    def _check(self, secret: str, stored_hash: str | None) -> bool:
        presented = self._ctx.keyed_hash(secret.encode())
        matches = hmac.compare_digest(presented, stored_hash or _DUMMY_HASH)
        return matches and stored_hash is not None


# Read before every request a user signs with their token: prepared.
_USER_BY_TOKEN_ID = Prepared(
    select(User.id, User.site, User.email, User.display_name, User.token_hash).where(
        User.id == bindparam("id")
    )
)
# Read on every badge tap (`read_policy` on a Core connection): prepared.
_IDENTITY_POLICY_ROW = Prepared(
    select(*SiteIdentityPolicy.__table__.columns).where(
        SiteIdentityPolicy.site == bindparam("site")
    )
)


def read_policy(db: Session | Connection, site: str) -> IdentityPolicy:
    """The site's identity policy inside the caller's transaction (see `load_policy`)."""
    row: Any = (
        db.get(SiteIdentityPolicy, site)
        if isinstance(db, Session)
        else _IDENTITY_POLICY_ROW.first_named(db, {"site": site})
    )
    if row is None:
        return IdentityPolicy()
    mode: PasscodeMode = "long-lived" if row.passcode_mode == "long-lived" else "single-use"
    return IdentityPolicy(row.card_pin, row.self_enrolment, mode, row.passcode_ttl_s)


def add_card_row(
    ctx: ServiceContext,
    db: Session,
    user_id: uuid.UUID,
    lookup: str,
    *,
    label: str,
    site: str,
) -> CardView:
    """Enrol a badge by its keyed lookup inside the caller's transaction.

    Raises:
        UserNotFoundError: no such user in this site.
        CredentialExistsError: the badge is already enrolled (to anyone).
    """
    user = db.scalar(select(User).where(User.id == user_id, User.site == site))
    if user is None:
        raise UserNotFoundError("no such user")
    if db.scalar(select(Credential.id).where(Credential.lookup == lookup)):
        raise CredentialExistsError("this credential is already enrolled")
    card_id, now = uuid.uuid4(), ctx.now()
    label = label.strip()[:_MAX_LABEL_CHARS]
    db.add(
        Credential(
            id=card_id,
            site=site,
            user_id=user_id,
            kind="card",
            lookup=lookup,
            label=label,
            created_at=now,
        )
    )
    db.flush()  # the unique lookup is checked here, inside the caller's transaction
    ctx.audit(db, "credential-added", user_id=user_id, detail=str(card_id), site=site)
    return CardView(card_id, user_id, label, now)
