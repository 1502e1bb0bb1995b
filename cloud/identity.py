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
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cloud.context import ServiceContext
from cloud.db import Credential, User
from cloud.errors import (
    CredentialExistsError,
    InvalidTagError,
    UnauthorizedError,
    UserExistsError,
    UserNotFoundError,
)
from cloud.sites import require_site

log = logging.getLogger(__name__)

USER_TOKEN_PREFIX = "ppu_"  # noqa: S105 - a prefix, not a secret
_TAG_RE = re.compile(r"^[0-9a-f]{64}$")
# Compared against when the id is unknown, so both paths do the same work.
_DUMMY_HASH = "0" * 64


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
        card_id = uuid.uuid4()
        try:
            with ctx.write() as db:
                user = db.scalar(select(User).where(User.id == user_id, User.site == site))
                if user is None:
                    raise UserNotFoundError("no such user")
                if db.scalar(select(Credential.id).where(Credential.lookup == lookup)):
                    raise CredentialExistsError("this credential is already enrolled")
                db.add(
                    Credential(
                        id=card_id,
                        site=site,
                        user_id=user_id,
                        kind="card",
                        lookup=lookup,
                        label=label,
                        created_at=ctx.now(),
                    )
                )
                ctx.audit(db, "credential-added", user_id=user_id, site=site)
        except IntegrityError as exc:
            raise CredentialExistsError("this credential is already enrolled") from exc
        log.info("enrolled a card for user %s", user_id)
        return CardView(card_id, user_id, label)

    # -- authentication ----------------------------------------------------------------------

    def authenticate_user(self, token: str) -> UserPrincipal:
        """Resolve a user bearer token.

        Raises:
            UnauthorizedError: malformed, unknown or wrong token.
        """
        parsed = _split_token(token, USER_TOKEN_PREFIX)
        ident, secret = parsed if parsed is not None else (None, token)
        with self._ctx.read() as db:
            user = db.get(User, ident) if ident is not None else None
            if not self._check(secret, user.token_hash if user is not None else None):
                raise UnauthorizedError("invalid user token")
            assert user is not None
            return UserPrincipal(user.id, user.site, user.email, user.display_name)

    def _check(self, secret: str, stored_hash: str | None) -> bool:
        presented = self._ctx.keyed_hash(secret.encode())
        matches = hmac.compare_digest(presented, stored_hash or _DUMMY_HASH)
        return matches and stored_hash is not None
