"""Delegation: a user lets another user of the same site release their jobs at a station.

The delegate sees the owner's held jobs in their own session, labelled with the owner's name, and
may release them; a release records who released it. Only the owner may delete a job. An owner
grants and revokes delegations; every change is an audit event.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.orm import Session

from cloud.context import ServiceContext
from cloud.db import Delegation, User
from cloud.errors import InvalidRequestError, UserNotFoundError
from cloud.identity import UserPrincipal
from cloud.prepared import Prepared

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DelegationView:
    """One delegation, as its owner or its delegate sees it."""

    owner_id: uuid.UUID
    owner_name: str
    delegate_id: uuid.UUID
    delegate_email: str
    delegate_name: str
    created_at: datetime


def delegating_owners(db: Session, site: str, delegate_id: uuid.UUID) -> dict[uuid.UUID, User]:
    """The users of `site` who let `delegate_id` release their jobs, by id."""
    rows = db.scalars(
        select(User)
        .join(Delegation, Delegation.owner_id == User.id)
        .where(Delegation.delegate_id == delegate_id, Delegation.site == site, User.site == site)
    )
    return {row.id: row for row in rows}


# `delegating_owner_names` runs on every badge tap: prepared.
_OWNER_NAMES = Prepared(
    select(User.id, User.display_name)
    .join(Delegation, Delegation.owner_id == User.id)
    .where(
        Delegation.delegate_id == bindparam("delegate_id"),
        Delegation.site == bindparam("site"),
        User.site == bindparam("site"),
    )
)


def delegating_owner_names(
    conn: Connection, site: str, delegate_id: uuid.UUID
) -> dict[uuid.UUID, str]:
    """`delegating_owners` as names by id, on a Core connection (the badge tap's path)."""
    return dict(_OWNER_NAMES.rows(conn, {"delegate_id": delegate_id, "site": site}))


class Delegations:
    """Granting, revoking and listing delegations."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def grant(self, owner: UserPrincipal, delegate_email: str) -> DelegationView:
        """Let the user with this email (same site) release the owner's jobs (idempotent).

        Raises:
            UserNotFoundError: no such user in the owner's site.
            InvalidRequestError: delegating to oneself.
        """
        ctx = self._ctx
        with ctx.write() as db:
            delegate = db.scalar(
                select(User).where(User.site == owner.site, User.email == delegate_email.strip())
            )
            if delegate is None:
                raise UserNotFoundError("no such user in this site")
            if delegate.id == owner.id:
                raise InvalidRequestError("a user cannot delegate to themselves")
            row = db.get(Delegation, (owner.id, delegate.id))
            if row is None:
                row = Delegation(
                    owner_id=owner.id,
                    delegate_id=delegate.id,
                    site=owner.site,
                    created_at=ctx.now(),
                )
                db.add(row)
                ctx.audit(
                    db,
                    "delegation-granted",
                    user_id=owner.id,
                    detail=str(delegate.id),
                    site=owner.site,
                )
            view = DelegationView(
                owner.id,
                owner.display_name,
                delegate.id,
                delegate.email,
                delegate.display_name,
                row.created_at,
            )
        log.info("user %s delegated releasing to user %s", owner.id, delegate.id)
        return view

    def revoke(self, owner: UserPrincipal, delegate_id: uuid.UUID) -> None:
        """Withdraw a delegation (idempotent)."""
        ctx = self._ctx
        with ctx.write() as db:
            result = db.execute(
                delete(Delegation).where(
                    Delegation.owner_id == owner.id,
                    Delegation.delegate_id == delegate_id,
                    Delegation.site == owner.site,
                )
            )
            if getattr(result, "rowcount", 0):
                ctx.audit(
                    db,
                    "delegation-revoked",
                    user_id=owner.id,
                    detail=str(delegate_id),
                    site=owner.site,
                )

    def list_granted(self, owner: UserPrincipal) -> list[DelegationView]:
        """Whom the owner lets release their jobs."""
        with self._ctx.read() as db:
            rows = db.execute(
                select(Delegation, User)
                .join(User, User.id == Delegation.delegate_id)
                .where(Delegation.owner_id == owner.id, Delegation.site == owner.site)
                .order_by(User.email)
            ).all()
            return [
                DelegationView(
                    owner.id,
                    owner.display_name,
                    user.id,
                    user.email,
                    user.display_name,
                    row.created_at,
                )
                for row, user in rows
            ]
