"""Sites (tenants) and their admins.

Every row of the schema belongs to a site by name. The config's site is the default site, created
at start; its admin is the bootstrap `admin_token` from the config. Other sites are added by an
operator (`pullprint admin site add`), each with its own admin token `ppa_<site id>.<secret>`, of
which the cloud keeps only HMAC-SHA256(pepper, secret).

An admin principal carries its site, and every admin operation is confined to it. Authentication
is constant-time: the bootstrap comparison and a keyed-hash comparison run on every attempt,
whether or not the id names a site, so timing says nothing about which sites exist.
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
from sqlalchemy.orm import Session

from cloud.context import ServiceContext
from cloud.db import Site
from cloud.errors import InvalidRequestError, NotFoundError, SiteExistsError, UnauthorizedError

log = logging.getLogger(__name__)

SITE_ADMIN_PREFIX = "ppa_"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_DUMMY_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class AdminPrincipal:
    """An authenticated admin of one site."""

    site: str


@dataclass(frozen=True, slots=True)
class IssuedSite:
    """A new site and its admin token, shown exactly once."""

    id: uuid.UUID
    name: str
    admin_token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SiteView:
    """A site (never its token)."""

    id: uuid.UUID
    name: str


class Sites:
    """The site registry and admin authentication."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def ensure_default(self) -> None:
        """Create the config's site if it is not there yet (idempotent, race-safe)."""
        ctx = self._ctx
        try:
            with ctx.write() as db:
                if db.scalar(select(Site.id).where(Site.name == ctx.site)) is None:
                    db.add(
                        Site(
                            id=uuid.uuid4(),
                            name=ctx.site,
                            admin_token_hash=None,
                            created_at=ctx.now(),
                        )
                    )
        except IntegrityError:  # another replica created it first
            pass

    def add(self, name: str) -> IssuedSite:
        """Create a site and issue its admin token (returned once, stored only as an HMAC).

        Raises:
            InvalidRequestError: the name is not a lowercase slug of at most 63 characters.
            SiteExistsError: the name is taken.
        """
        ctx = self._ctx
        if not _NAME_RE.match(name):
            raise InvalidRequestError("a site name is a lowercase slug (a-z, 0-9, . _ -)")
        site_id = uuid.uuid4()
        secret = secrets.token_urlsafe(32)
        try:
            with ctx.write() as db:
                if db.scalar(select(Site.id).where(Site.name == name)) is not None:
                    raise SiteExistsError("a site with this name already exists")
                db.add(
                    Site(
                        id=site_id,
                        name=name,
                        admin_token_hash=ctx.keyed_hash(secret.encode()),
                        created_at=ctx.now(),
                    )
                )
                ctx.audit(db, "site-created", detail=name, site=name)
        except IntegrityError as exc:
            raise SiteExistsError("a site with this name already exists") from exc
        log.info("created site %s", name)
        return IssuedSite(site_id, name, f"{SITE_ADMIN_PREFIX}{site_id}.{secret}")

    def list(self) -> list[SiteView]:
        """Every site, by name."""
        with self._ctx.read() as db:
            rows = db.scalars(select(Site).order_by(Site.name)).all()
            return [SiteView(row.id, row.name) for row in rows]

    def authenticate_admin(self, token: str) -> AdminPrincipal:
        """Resolve an admin bearer token to the site it administers.

        Raises:
            UnauthorizedError: neither the bootstrap token nor a site admin token.
        """
        ctx = self._ctx
        bootstrap = hmac.compare_digest(token.encode(), ctx.config.admin_token.encode())
        site_id, secret = _split(token)
        with ctx.read() as db:
            row = (
                db.scalar(
                    select(Site).where(Site.id == site_id, Site.admin_token_hash.is_not(None))
                )
                if site_id is not None
                else None
            )
            stored = row.admin_token_hash if row is not None else None
            presented = ctx.keyed_hash(secret.encode())
            matches = hmac.compare_digest(presented, stored or _DUMMY_HASH) and stored is not None
            if matches and row is not None:
                return AdminPrincipal(row.name)
        if bootstrap:
            return AdminPrincipal(ctx.site)
        raise UnauthorizedError("invalid admin token")


def require_site(db: Session, name: str) -> None:
    """Refuse to put rows into a site that was never added (a typo would orphan them).

    Raises:
        NotFoundError: no such site.
    """
    if db.scalar(select(Site.id).where(Site.name == name)) is None:
        raise NotFoundError("no such site")


def _split(token: str) -> tuple[uuid.UUID | None, str]:
    if not token.startswith(SITE_ADMIN_PREFIX):
        return None, token
    ident, sep, secret = token[len(SITE_ADMIN_PREFIX) :].partition(".")
    if not sep or not secret:
        return None, token
    try:
        return uuid.UUID(ident), secret
    except ValueError:
        return None, token
