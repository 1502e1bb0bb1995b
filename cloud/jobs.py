"""Parked jobs: the held list, deletion, expiry, and how their content is destroyed.

Invariants:

* destroying content erases the wrapped data key in the same transaction as the state change
  (that alone makes the ciphertext unreadable), then deletes the blob; `blob_key` is cleared only
  once the blob is gone, so `purge_orphan_blobs` can finish a deletion that failed;
* a job counts as expired from `expires_at` on, whether or not the sweeper has run yet;
* a site that keeps printed jobs for reprint (`cloud.policies`) leaves a printed job's content in
  place until its expiry; the sweeper then destroys it (the job stays `printed`). Content is
  destroyed once: every destruction is a compare-and-set on the state *and* a present key.

How jobs arrive is `cloud.uploads`.
"""

from __future__ import annotations

import logging
import operator
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Select, bindparam, select, update
from sqlalchemy.orm import Session

from cloud.context import ServiceContext
from cloud.db import Job
from cloud.errors import JobNotFoundError, JobNotHeldError, StorageError
from cloud.states import JOB_FINISHED, JobState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobView:
    """A job's metadata as the domain hands it out (never its key or content)."""

    id: uuid.UUID
    owner_id: uuid.UUID
    site: str
    name: str
    document_format: str
    size_bytes: int
    content_bytes: int
    sha256: str | None
    copies: int
    pages: int | None
    state: JobState
    submitted_at: datetime
    expires_at: datetime
    printed_at: datetime | None
    content_held: bool
    sides: str | None = None
    color_mode: str | None = None
    key_wrap: str = "master"
    replayed: bool = False  # the answer to an idempotent retry: the job already existed

    @property
    def zero_knowledge(self) -> bool:
        """The data key is wrapped to the site key: the cloud cannot read this job."""
        return self.key_wrap == "hpke"

    @property
    def reprintable(self) -> bool:
        """Printed, and kept for reprint: a new release may print it again."""
        return self.state is JobState.PRINTED and self.content_held

    @classmethod
    def from_row(cls, row: Sequence[Any], name: str) -> JobView:
        """A view of a plain row of `JOB_ROW_COLUMNS` (`HELD_JOB_ROWS`, `REPRINTABLE_JOB_ROWS`),
        shown under `name` (the site's privacy setting decides it).

        By position, not by attribute: a badge tap lists every held job, and a row's
        attribute lookups were the largest single cost of the tap (`pullprint
        bench-throughput`, profiled).
        """
        (
            job_id,
            owner_id,
            site,
            document_format,
            size_bytes,
            content_bytes,
            sha256,
            copies,
            pages,
            state,
            submitted_at,
            expires_at,
            printed_at,
            wrapped_key,
            sides,
            color_mode,
            key_wrap,
        ) = _VIEW_FIELDS(row)
        return cls(
            job_id,
            owner_id,
            site,
            name,
            document_format,
            size_bytes,
            content_bytes,
            sha256,
            copies,
            pages,
            JobState(state),
            submitted_at,
            expires_at,
            printed_at,
            wrapped_key is not None,
            sides,
            color_mode,
            key_wrap,
        )

    @classmethod
    def of(cls, job: Job) -> JobView:
        """Copy a row into a view (detached from the database session)."""
        return cls(
            id=job.id,
            owner_id=job.owner_id,
            site=job.site,
            name=job.name,
            document_format=job.document_format,
            size_bytes=job.size_bytes,
            content_bytes=job.content_bytes,
            sha256=job.sha256,
            copies=job.copies,
            pages=job.pages,
            state=JobState(job.state),
            submitted_at=job.submitted_at,
            expires_at=job.expires_at,
            printed_at=job.printed_at,
            content_held=job.wrapped_key is not None,
            sides=job.sides,
            color_mode=job.color_mode,
            key_wrap=job.key_wrap,
        )


def _held_where(site: Any, owner_id: Any, now: Any) -> tuple[ColumnElement[bool], ...]:
    return (
        Job.site == site,
        Job.owner_id == owner_id,
        Job.state == JobState.HELD,
        Job.expires_at > now,
    )


def _reprintable_where(site: Any, owner_id: Any, now: Any) -> tuple[ColumnElement[bool], ...]:
    return (
        Job.site == site,
        Job.owner_id == owner_id,
        Job.state == JobState.PRINTED,
        Job.wrapped_key.is_not(None),
        Job.expires_at > now,
    )


def held_jobs_query(site: str, owner_id: uuid.UUID, now: datetime) -> Select[Job]:
    """The owner's held, unexpired jobs in `site`, oldest first (expiry counts before sweeping)."""
    return select(Job).where(*_held_where(site, owner_id, now)).order_by(Job.submitted_at, Job.id)


def reprintable_jobs_query(site: str, owner_id: uuid.UUID, now: datetime) -> Select[Job]:
    """The owner's printed jobs still kept for reprint, most recently printed first."""
    return (
        select(Job)
        .where(*_reprintable_where(site, owner_id, now))
        .order_by(Job.printed_at.desc(), Job.id)
    )


# The same two lists as plain rows, built once with parameters `site`, `owner_id` and `now`:
# a badge tap runs them, and building a statement costs more than running a cached one.
_PARAMS: tuple[Any, ...] = (bindparam("site"), bindparam("owner_id"), bindparam("now"))
JOB_ROW_COLUMNS = tuple(Job.__table__.columns)
HELD_JOB_ROWS = (
    select(*JOB_ROW_COLUMNS).where(*_held_where(*_PARAMS)).order_by(Job.submitted_at, Job.id)
)
REPRINTABLE_JOB_ROWS = (
    select(*JOB_ROW_COLUMNS)
    .where(*_reprintable_where(*_PARAMS))
    .order_by(Job.printed_at.desc(), Job.id)
)
_POSITION = {column.name: n for n, column in enumerate(JOB_ROW_COLUMNS)}
JOB_ROW_NAME = _POSITION["name"]  # where a row of `JOB_ROW_COLUMNS` holds the job's name
# What `JobView.from_row` takes from a row, in its order (every field but the shown name).
_VIEW_FIELDS = operator.itemgetter(
    *(
        _POSITION[name]
        for name in (
            "id",
            "owner_id",
            "site",
            "document_format",
            "size_bytes",
            "content_bytes",
            "sha256",
            "copies",
            "pages",
            "state",
            "submitted_at",
            "expires_at",
            "printed_at",
            "wrapped_key",
            "sides",
            "color_mode",
            "key_wrap",
        )
    )
)


def destroy_content(
    ctx: ServiceContext,
    db: Session,
    job_id: uuid.UUID,
    *,
    to: JobState,
    from_states: Collection[JobState],
) -> bool:
    """Move a job to a finished state and erase its wrapped key, if it is in `from_states` (CAS).

    Returns False, changing nothing, if the job is in any other state. The caller must call
    `remove_blob` after its transaction commits.
    """
    values: dict[str, object] = {"state": to, "wrapped_key": None}
    if to is JobState.PRINTED and JobState.PRINTED not in from_states:
        values["printed_at"] = ctx.now()
    result = db.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.state.in_(list(from_states)),
            Job.wrapped_key.is_not(None),
        )
        .values(**values)
    )
    if cast("CursorResult[Any]", result).rowcount != 1:
        return False
    site = db.execute(select(Job.site).where(Job.id == job_id)).scalar_one()
    ctx.audit(db, "content-destroyed", job_id=job_id, detail=str(to), site=site)
    return True


def remove_blob(ctx: ServiceContext, job_id: uuid.UUID) -> None:
    """Delete a finished job's blob, then forget its key; a failure is retried by the sweeper."""
    with ctx.read() as db:
        blob_key = db.scalar(select(Job.blob_key).where(Job.id == job_id))
    if blob_key is None:
        return
    try:
        ctx.blobs.delete(blob_key)
    except StorageError as exc:
        log.warning("could not delete the blob of job %s (will retry): %s", job_id, exc)
        return
    with ctx.write() as db:
        db.execute(update(Job).where(Job.id == job_id).values(blob_key=None))
        site = db.execute(select(Job.site).where(Job.id == job_id)).scalar_one()
        ctx.audit(db, "blob-deleted", job_id=job_id, site=site)


class Jobs:
    """Submission, listing, deletion and expiry of parked jobs."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def list_held(
        self, owner_id: uuid.UUID, site: str | None = None, *, reprintable: bool = False
    ) -> list[JobView]:
        """The owner's held jobs in `site` (default: the config's), oldest first; with
        `reprintable`, then the printed jobs kept for reprint."""
        site = site or self._ctx.site
        now = self._ctx.now()
        with self._ctx.read() as db:
            views = [JobView.of(job) for job in db.scalars(held_jobs_query(site, owner_id, now))]
            if reprintable:
                kept = db.scalars(reprintable_jobs_query(site, owner_id, now))
                views += [JobView.of(job) for job in kept]
            return views

    def get(self, job_id: uuid.UUID, site: str | None = None) -> JobView:
        """Any job of `site` (default: the config's), in any state (for admins).

        Raises:
            JobNotFoundError: no such job in this site.
        """
        site = site or self._ctx.site
        with self._ctx.read() as db:
            job = db.scalar(select(Job).where(Job.id == job_id, Job.site == site))
            if job is None:
                raise JobNotFoundError("no such job")
            return JobView.of(job)

    def delete(self, owner_id: uuid.UUID, job_id: uuid.UUID, site: str | None = None) -> None:
        """Delete one of the owner's jobs and destroy its content (idempotent).

        Raises:
            JobNotFoundError: no such job, or not the owner's.
            JobNotHeldError: the job is on its way to a printer right now.
        """
        ctx = self._ctx
        site = site or ctx.site
        with ctx.write() as db:
            job = db.scalar(
                select(Job).where(Job.id == job_id, Job.site == site, Job.owner_id == owner_id)
            )
            if job is None:
                raise JobNotFoundError("no such job")
            if job.state in JOB_FINISHED and job.wrapped_key is None:
                return  # already gone; deleting again changes nothing
            if not destroy_content(
                ctx, db, job_id, to=JobState.DELETED, from_states=[JobState.HELD, JobState.PRINTED]
            ):
                raise JobNotHeldError("the job is being released and cannot be deleted now")
            ctx.audit(db, "job-deleted", user_id=owner_id, job_id=job_id, site=site)
        log.info("job %s deleted by its owner", job_id)
        remove_blob(ctx, job_id)

    def expire_due(self) -> int:
        """Expire held jobs (of every site) whose expiry has passed, and destroy the content of
        printed jobs kept for reprint whose expiry has passed; returns how many."""
        ctx = self._ctx
        now = ctx.now()
        with ctx.read() as db:
            due = list(
                db.execute(
                    select(Job.id, Job.state).where(
                        Job.state.in_([JobState.HELD, JobState.PRINTED]),
                        Job.wrapped_key.is_not(None),
                        Job.expires_at <= now,
                    )
                )
            )
        expired = []
        for job_id, state in due:
            # One transaction per job: a job released meanwhile simply fails the CAS.
            to = JobState.EXPIRED if state == JobState.HELD else JobState.PRINTED
            with ctx.write() as db:
                if destroy_content(ctx, db, job_id, to=to, from_states=[JobState(state)]):
                    expired.append(job_id)
        for job_id in expired:
            remove_blob(ctx, job_id)
        if expired:
            log.info("expired %d job(s)", len(expired))
        return len(expired)

    def purge_orphan_blobs(self) -> int:
        """Retry blob deletions of finished jobs that failed earlier; returns how many it tried."""
        with self._ctx.read() as db:
            leftover = list(
                db.scalars(
                    select(Job.id).where(
                        Job.state.in_(list(JOB_FINISHED)),
                        Job.blob_key.is_not(None),
                    )
                )
            )
        for job_id in leftover:
            remove_blob(self._ctx, job_id)
        return len(leftover)
