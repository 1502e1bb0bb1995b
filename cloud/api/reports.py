"""Admin read-only views: the site's users, jobs and audit trail (`cloud.reports`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from cloud.api.deps import AdminDep, ServiceDep
from cloud.api.schemas import iso
from cloud.reports import MAX_LIMIT, AuditRow, JobRow, UserRow

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


class AdminUser(BaseModel):
    """A user as the admin list shows them: no token, no tag."""

    id: str
    email: str
    display_name: str
    created_at: str
    cards: int
    held_jobs: int
    held_bytes: int

    @classmethod
    def of(cls, row: UserRow) -> AdminUser:
        """From the report row."""
        return cls(
            id=str(row.id),
            email=row.email,
            display_name=row.display_name,
            created_at=iso(row.created_at) or "",
            cards=row.cards,
            held_jobs=row.held_jobs,
            held_bytes=row.held_bytes,
        )


class AdminUsers(BaseModel):
    """GET /api/v1/admin/users."""

    users: list[AdminUser]


class AdminJobRow(BaseModel):
    """A job in the admin list: metadata without the document's name."""

    id: str
    owner_email: str
    format: str
    size_bytes: int
    pages: int | None
    copies: int
    state: str
    submitted_at: str
    expires_at: str
    printed_at: str | None

    @classmethod
    def of(cls, row: JobRow) -> AdminJobRow:
        """From the report row."""
        return cls(
            id=str(row.id),
            owner_email=row.owner_email,
            format=row.document_format,
            size_bytes=row.size_bytes,
            pages=row.pages,
            copies=row.copies,
            state=row.state,
            submitted_at=iso(row.submitted_at) or "",
            expires_at=iso(row.expires_at) or "",
            printed_at=iso(row.printed_at),
        )


class AdminJobs(BaseModel):
    """GET /api/v1/admin/jobs."""

    jobs: list[AdminJobRow]


class AuditEventOut(BaseModel):
    """One audit event: ids and kinds only."""

    id: int
    at: str
    kind: str
    user_id: str | None
    station_id: str | None
    job_id: str | None
    session_id: str | None
    release_id: str | None
    detail: str | None

    @classmethod
    def of(cls, row: AuditRow) -> AuditEventOut:
        """From the report row."""

        def text(value: uuid.UUID | None) -> str | None:
            return None if value is None else str(value)

        return cls(
            id=row.id,
            at=iso(row.at) or "",
            kind=row.kind,
            user_id=text(row.user_id),
            station_id=text(row.station_id),
            job_id=text(row.job_id),
            session_id=text(row.session_id),
            release_id=text(row.release_id),
            detail=row.detail,
        )


class AuditEvents(BaseModel):
    """GET /api/v1/admin/audit: page on with `after` = the last id returned."""

    events: list[AuditEventOut]


@router.get("/users")
def list_users(admin: AdminDep, service: ServiceDep, limit: Limit = MAX_LIMIT) -> AdminUsers:
    """The site's users by email, with how many badges and held jobs each has."""
    return AdminUsers(
        users=[AdminUser.of(r) for r in service.reports.users(admin.site, limit=limit)]
    )


@router.get("/jobs")
def list_jobs(
    admin: AdminDep,
    service: ServiceDep,
    state: Annotated[str | None, Query(max_length=16)] = None,
    owner: Annotated[str | None, Query(max_length=320)] = None,
    limit: Limit = 100,
) -> AdminJobs:
    """The site's newest jobs, optionally of one state or one owner (by email)."""
    rows = service.reports.jobs(admin.site, state=state, owner_email=owner, limit=limit)
    return AdminJobs(jobs=[AdminJobRow.of(r) for r in rows])


@router.get("/audit")
def list_audit(
    admin: AdminDep,
    service: ServiceDep,
    *,
    after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    job_id: uuid.UUID | None = None,
    limit: Limit = 100,
) -> AuditEvents:
    """The site's audit events after id `after`, oldest first."""
    rows = service.reports.audit(admin.site, after=after, kind=kind, job_id=job_id, limit=limit)
    return AuditEvents(events=[AuditEventOut.of(r) for r in rows])
