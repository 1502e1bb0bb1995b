"""Read-only views for operators: the site's users, jobs and audit trail.

Every query is scoped to one site (the caller's). Nothing here returns a secret: users come
without token hashes or tags, jobs without names (a document's name can say more than its
owner would like an admin to read, and some sites hide it), audit events as the ids and kinds
they were written with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from cloud.context import ServiceContext
from cloud.db import AuditEvent, Credential, Job, User
from cloud.errors import InvalidRequestError

MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class UserRow:
    """One user, with counts of what they hold."""

    id: uuid.UUID
    email: str
    display_name: str
    created_at: datetime
    cards: int
    held_jobs: int
    held_bytes: int


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job's metadata, without its name."""

    id: uuid.UUID
    owner_email: str
    document_format: str
    size_bytes: int
    pages: int | None
    copies: int
    state: str
    submitted_at: datetime
    expires_at: datetime
    printed_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit event."""

    id: int
    at: datetime
    kind: str
    user_id: uuid.UUID | None
    station_id: uuid.UUID | None
    job_id: uuid.UUID | None
    session_id: uuid.UUID | None
    release_id: uuid.UUID | None
    detail: str | None


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequestError(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


class Reports:
    """The operators' read-only queries."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def users(self, site: str | None = None, *, limit: int = MAX_LIMIT) -> list[UserRow]:
        """The site's users by email, with card and held-job counts."""
        site = site or self._ctx.site
        cards = (
            select(Credential.user_id, func.count().label("n"))
            .where(Credential.site == site)
            .group_by(Credential.user_id)
            .subquery()
        )
        held = (
            select(
                Job.owner_id,
                func.count().label("n"),
                func.coalesce(func.sum(Job.size_bytes), 0).label("bytes"),
            )
            .where(Job.site == site, Job.state == "held")
            .group_by(Job.owner_id)
            .subquery()
        )
        query = (
            select(
                User,
                func.coalesce(cards.c.n, 0),
                func.coalesce(held.c.n, 0),
                func.coalesce(held.c.bytes, 0),
            )
            .outerjoin(cards, cards.c.user_id == User.id)
            .outerjoin(held, held.c.owner_id == User.id)
            .where(User.site == site)
            .order_by(User.email)
            .limit(_limit(limit))
        )
        with self._ctx.read() as db:
            return [
                UserRow(
                    user.id,
                    user.email,
                    user.display_name,
                    user.created_at,
                    int(n_cards),
                    int(n_held),
                    int(n_bytes),
                )
                for user, n_cards, n_held, n_bytes in db.execute(query).all()
            ]

    def jobs(
        self,
        site: str | None = None,
        *,
        state: str | None = None,
        owner_email: str | None = None,
        limit: int = 100,
    ) -> list[JobRow]:
        """The site's newest jobs, optionally of one state or one owner."""
        site = site or self._ctx.site
        query = (
            select(Job, User.email)
            .join(User, User.id == Job.owner_id)
            .where(Job.site == site)
            .order_by(Job.submitted_at.desc(), Job.id)
            .limit(_limit(limit))
        )
        if state is not None:
            query = query.where(Job.state == state)
        if owner_email is not None:
            query = query.where(User.email == owner_email.strip())
        with self._ctx.read() as db:
            return [
                JobRow(
                    job.id,
                    email,
                    job.document_format,
                    job.size_bytes,
                    job.pages,
                    job.copies,
                    job.state,
                    job.submitted_at,
                    job.expires_at,
                    job.printed_at,
                )
                for job, email in db.execute(query).all()
            ]

    def audit(
        self,
        site: str | None = None,
        *,
        after: int = 0,
        kind: str | None = None,
        job_id: uuid.UUID | None = None,
        limit: int = 100,
    ) -> list[AuditRow]:
        """Audit events after id `after`, oldest first (so a reader can page with the last id)."""
        site = site or self._ctx.site
        query = (
            select(AuditEvent)
            .where(AuditEvent.site == site, AuditEvent.id > after)
            .order_by(AuditEvent.id)
            .limit(_limit(limit))
        )
        if kind is not None:
            query = query.where(AuditEvent.kind == kind)
        if job_id is not None:
            query = query.where(AuditEvent.job_id == job_id)
        with self._ctx.read() as db:
            return [
                AuditRow(
                    event.id,
                    event.at,
                    event.kind,
                    event.user_id,
                    event.station_id,
                    event.job_id,
                    event.session_id,
                    event.release_id,
                    event.detail,
                )
                for event in db.scalars(query)
            ]
