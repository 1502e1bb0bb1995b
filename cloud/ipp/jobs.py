"""IPP jobs: integer job-ids over parked jobs, and what state an IPP client is shown.

An IPP job (a row of `ipp_jobs`) is created by Print-Job or Create-Job with the next job-id of
the site (a counter row, so ids are stable, positive and never reused: RFC 8011 §5.3.2). Once its
document is parked, it points at the cloud job, and from then on the cloud job's state decides
what the client sees. The mapping, the heart of the "pending-held trick" (IPP-NOTES.md):

    ipp row            cloud job      job-state (RFC 8011 §5.3.7)  job-state-reasons
    incoming           -              pending / pending-held       job-incoming (+ hold reason)
    queued, held       held           pending-held                 job-hold-until-specified
      (after Release-Job: hold_until no-hold)  pending             job-release-wait
    queued             releasing      processing                   job-printing
    queued             printed        completed                    job-completed-successfully
    queued             deleted        canceled                     job-canceled-by-user
    queued             expired        aborted                      aborted-by-system
    canceled | aborted -              canceled | aborted           (as above)

Every job is held until its owner releases it at a printer's station, so right after the document
arrives the job is `pending-held`: a client's CUPS stops waiting on it at once. Release-Job lifts
only the IPP hold (`job-hold-until` becomes `no-hold`); the job still waits for its owner at a
printer (`job-release-wait`, PWG 5100.11). Jobs are only ever visible to their owner.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from cloud.context import ServiceContext
from cloud.db import IppJob, IppSequence, Job, User
from cloud.errors import ConflictError, JobNotFoundError, JobNotHeldError
from cloud.identity import UserPrincipal
from cloud.jobs import Jobs
from cloud.states import JobState as CloudState
from cloud.uploads import LinkHook
from hardware.ipp.enums import JobState

log = logging.getLogger(__name__)

INCOMING, QUEUED, CANCELED, ABORTED = "incoming", "queued", "canceled", "aborted"
HOLD_INDEFINITE, NO_HOLD = "indefinite", "no-hold"
HOLD_UNTIL_SUPPORTED = (NO_HOLD, HOLD_INDEFINITE)
# A job that never receives its document is aborted after this long (multiple-operation-time-out,
# PWG 5100.11 §5.1): it would otherwise stay "incoming" for ever.
INCOMING_TIMEOUT_S = 300

# Which states each which-jobs keyword selects (RFC 8011 §4.2.6.1, PWG 5100.7 §6.1).
WHICH_JOBS: dict[str, frozenset[JobState]] = {
    "not-completed": frozenset(
        {JobState.PENDING, JobState.PENDING_HELD, JobState.PROCESSING, JobState.PROCESSING_STOPPED}
    ),
    "completed": frozenset({JobState.CANCELED, JobState.ABORTED, JobState.COMPLETED}),
    "all": frozenset(JobState),
    "pending": frozenset({JobState.PENDING}),
    "pending-held": frozenset({JobState.PENDING_HELD}),
    "processing": frozenset({JobState.PROCESSING}),
    "canceled": frozenset({JobState.CANCELED}),
    "aborted": frozenset({JobState.ABORTED}),
    "completed-successfully": frozenset({JobState.COMPLETED}),
}


class JobNotPossibleError(ConflictError):
    """The operation does not apply to the job in its current state (client-error-not-possible)."""

    code = "ipp-not-possible"
    title = "Not possible"


@dataclass(frozen=True, slots=True)
class NewIppJob:
    """What Print-Job / Create-Job asked for (already validated)."""

    name: str
    document_format: str | None = None
    copies: int = 1
    sides: str | None = None
    color_mode: str | None = None
    media: str | None = None
    hold_until: str = HOLD_INDEFINITE


@dataclass(frozen=True, slots=True)
class IppJobView:
    """An IPP job as its owner sees it."""

    job_id: int
    owner_id: uuid.UUID
    owner_name: str
    name: str
    document_format: str | None
    copies: int
    sides: str | None
    color_mode: str | None
    media: str | None
    hold_until: str
    state: JobState
    reasons: tuple[str, ...]
    message: str
    created_at: datetime
    completed_at: datetime | None
    size_bytes: int | None
    cloud_job_id: uuid.UUID | None = field(default=None)

    @property
    def has_document(self) -> bool:
        """True once the document is parked."""
        return self.cloud_job_id is not None


def _status(row: IppJob, job: Job | None) -> tuple[JobState, tuple[str, ...], str]:
    """The IPP state, reasons and message of a job (see the table in the module docstring)."""
    held = row.hold_until != NO_HOLD
    if row.state == CANCELED:
        return JobState.CANCELED, ("job-canceled-by-user",), "Canceled by its owner."
    if row.state == ABORTED:
        return JobState.ABORTED, ("aborted-by-system",), "No document arrived."
    if job is None:  # incoming: Create-Job done, Send-Document not yet
        if held:
            return JobState.PENDING_HELD, ("job-incoming", "job-hold-until-specified"), ""
        return JobState.PENDING, ("job-incoming",), ""
    state = CloudState(job.state)
    if state is CloudState.HELD:
        if held:
            return (
                JobState.PENDING_HELD,
                ("job-hold-until-specified",),
                "Held until its owner releases it at a printer.",
            )
        return JobState.PENDING, ("job-release-wait",), "Waiting for its owner at a printer."
    if state is CloudState.RELEASING:
        return JobState.PROCESSING, ("job-printing",), "Being printed."
    if state is CloudState.PRINTED:
        return JobState.COMPLETED, ("job-completed-successfully",), "Printed."
    if state is CloudState.DELETED:
        return JobState.CANCELED, ("job-canceled-by-user",), "Deleted by its owner."
    return JobState.ABORTED, ("aborted-by-system",), "Expired before it was released."


def _view(row: IppJob, job: Job | None, user: User | UserPrincipal) -> IppJobView:
    state, reasons, message = _status(row, job)
    completed_at: datetime | None = None
    if state.is_terminal:
        completed_at = (job.printed_at if job is not None else None) or row.ended_at
    return IppJobView(
        job_id=row.job_id,
        owner_id=row.owner_id,
        owner_name=user.email,
        name=row.name,
        document_format=row.document_format,
        copies=row.copies,
        sides=row.sides,
        color_mode=row.color_mode,
        media=row.media,
        hold_until=row.hold_until,
        state=state,
        reasons=reasons,
        message=message,
        created_at=row.created_at,
        completed_at=completed_at,
        size_bytes=job.size_bytes if job is not None else None,
        cloud_job_id=row.cloud_job_id,
    )


class JobLink:
    """A `LinkHook` that remembers the IPP job it recorded (read `view` once the upload is done)."""

    def __init__(self, record: Callable[[Session, uuid.UUID], IppJobView]) -> None:
        self._record = record
        self._view: IppJobView | None = None

    def __call__(self, db: Session, cloud_job_id: uuid.UUID) -> None:
        """Record the IPP job inside the upload's transaction."""
        self._view = self._record(db, cloud_job_id)

    @property
    def view(self) -> IppJobView:
        """The job as recorded (the transaction committed, or the upload would have failed)."""
        if self._view is None:
            raise RuntimeError("the upload has not recorded its IPP job")
        return self._view


class IppJobs:
    """Creating, finding, listing and changing the IPP jobs of a site."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._jobs = Jobs(ctx)

    def _query(self, owner: UserPrincipal) -> Select[IppJob, Job, User]:
        return (
            select(IppJob, Job, User)
            .outerjoin(Job, (Job.id == IppJob.cloud_job_id) & (Job.site == owner.site))
            .join(User, (User.id == IppJob.owner_id) & (User.site == owner.site))
            .where(IppJob.site == owner.site, IppJob.owner_id == owner.id)
        )

    def _row(self, db: Session, owner: UserPrincipal, job_id: int) -> IppJob:
        row = db.scalar(
            select(IppJob).where(
                IppJob.site == owner.site, IppJob.job_id == job_id, IppJob.owner_id == owner.id
            )
        )
        if row is None:
            # Somebody else's job is reported exactly like a missing one.
            raise JobNotFoundError("no such job")
        return row

    def _add_row(
        self, db: Session, owner: UserPrincipal, new: NewIppJob, cloud_job_id: uuid.UUID | None
    ) -> IppJob:
        """Allocate the site's next job-id and add the job: incoming without a document (Create-
        Job), queued with one (Print-Job). The counter row is locked until the commit, so two
        jobs never share an id."""
        counter = db.get(IppSequence, owner.site, with_for_update=True)
        if counter is None:
            counter = IppSequence(site=owner.site, last_job_id=0)
            db.add(counter)
        counter.last_job_id += 1
        row = IppJob(
            site=owner.site,
            job_id=counter.last_job_id,
            owner_id=owner.id,
            cloud_job_id=cloud_job_id,
            name=new.name,
            document_format=new.document_format,
            copies=new.copies,
            sides=new.sides,
            color_mode=new.color_mode,
            media=new.media,
            hold_until=new.hold_until,
            state=INCOMING if cloud_job_id is None else QUEUED,
            created_at=self._ctx.now(),
            ended_at=None,
        )
        db.add(row)
        return row

    def create(self, owner: UserPrincipal, new: NewIppJob) -> IppJobView:
        """Allocate the next job-id of the site and record the job as incoming."""
        ctx = self._ctx
        with ctx.write() as db:
            row = self._add_row(db, owner, new, None)
            user = db.scalar(select(User).where(User.id == owner.id, User.site == owner.site))
            assert user is not None  # the principal was just authenticated
            view = _view(row, None, user)
        log.info("IPP job %d created for user %s", view.job_id, owner.id)
        return view

    def link(self, owner: UserPrincipal, job_id: int, document_format: str) -> LinkHook:
        """A hook for `Uploads` that attaches the parked job to this IPP job atomically.

        The hook raises JobNotPossibleError if the IPP job was canceled (or already got a
        document) meanwhile, which aborts the upload: nothing is parked then.
        """
        site = owner.site

        def attach(db: Session, cloud_job_id: uuid.UUID) -> None:
            changed = db.execute(
                update(IppJob)
                .where(
                    IppJob.site == site,
                    IppJob.job_id == job_id,
                    IppJob.owner_id == owner.id,
                    IppJob.state == INCOMING,
                )
                .values(state=QUEUED, cloud_job_id=cloud_job_id, document_format=document_format)
            )
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                raise JobNotPossibleError("the job no longer accepts a document")

        return attach

    def link_new(self, owner: UserPrincipal, new: NewIppJob) -> JobLink:
        """A hook for `Uploads` that records a new IPP job (Print-Job) with its parked document.

        The next job-id of the site is allocated in the transaction that records the parked
        job, so the IPP job exists exactly when its document does: no separate transaction to
        create it "incoming" first, and none to read it back (the hook keeps the view).
        """

        def record(db: Session, cloud_job_id: uuid.UUID) -> IppJobView:
            row = self._add_row(db, owner, new, cloud_job_id)
            # The parked job was just flushed in this session: get() finds it without a query.
            return _view(row, db.get(Job, cloud_job_id), owner)

        return JobLink(record)

    def link_existing(self, owner: UserPrincipal, job_id: int, document_format: str) -> JobLink:
        """`link()` (Send-Document) that also keeps the job's view as of the commit."""
        attach = self.link(owner, job_id, document_format)

        def record(db: Session, cloud_job_id: uuid.UUID) -> IppJobView:
            attach(db, cloud_job_id)
            row = self._row(db, owner, job_id)
            return _view(row, db.get(Job, cloud_job_id), owner)

        return JobLink(record)

    def get(self, owner: UserPrincipal, job_id: int) -> IppJobView:
        """One of the owner's jobs.

        Raises:
            JobNotFoundError: no such job, or not the owner's.
        """
        with self._ctx.read() as db:
            found = db.execute(self._query(owner).where(IppJob.job_id == job_id)).first()
            if found is None:
                raise JobNotFoundError("no such job")
            row, job, user = found
            return _view(row, job, user)

    def list_jobs(
        self, owner: UserPrincipal, which: str = "not-completed", limit: int | None = None
    ) -> list[IppJobView]:
        """The owner's jobs in the `which` states (a WHICH_JOBS key), oldest first."""
        states = WHICH_JOBS[which]
        out: list[IppJobView] = []
        with self._ctx.read() as db:
            rows = db.execute(self._query(owner).order_by(IppJob.job_id))
            for row, job, user in rows:
                view = _view(row, job, user)
                if view.state in states:
                    out.append(view)
                    if limit is not None and len(out) >= limit:
                        break
        return out

    def cancel(self, owner: UserPrincipal, job_id: int) -> None:
        """Cancel a job: before its document, or while held (its content is destroyed).

        Raises:
            JobNotFoundError: no such job of the owner.
            JobNotPossibleError: the job is printing or already finished (RFC 8011 §4.3.3).
        """
        ctx = self._ctx
        with ctx.write() as db:
            row = self._row(db, owner, job_id)
            if row.state == INCOMING:
                row.state, row.ended_at = CANCELED, ctx.now()
                return
            cloud_job_id = row.cloud_job_id
            if row.state != QUEUED or cloud_job_id is None:
                raise JobNotPossibleError("the job is already finished")
            job = db.scalar(select(Job).where(Job.id == cloud_job_id, Job.site == owner.site))
            if job is None or job.state != CloudState.HELD:
                raise JobNotPossibleError("the job is printing or already finished")
        try:
            self._jobs.delete(owner.id, cloud_job_id, owner.site)
        except JobNotHeldError as exc:  # released at a station in the meantime
            raise JobNotPossibleError("the job is printing or already finished") from exc

    def cancel_mine(self, owner: UserPrincipal, job_ids: Sequence[int] | None) -> list[int]:
        """Cancel the owner's unfinished jobs (all, or those listed); returns the ids canceled.

        Raises:
            JobNotFoundError / JobNotPossibleError: a listed job cannot be canceled (PWG 5100.11
                §5.3: then nothing else is canceled either).
        """
        if job_ids is not None:
            for job_id in job_ids:  # check them all first
                view = self.get(owner, job_id)
                if view.state not in (JobState.PENDING, JobState.PENDING_HELD):
                    raise JobNotPossibleError(f"job {job_id} cannot be canceled now")
        targets = (
            list(job_ids)
            if job_ids is not None
            else [
                v.job_id
                for v in self.list_jobs(owner, "not-completed")
                if v.state in (JobState.PENDING, JobState.PENDING_HELD)
            ]
        )
        canceled: list[int] = []
        for job_id in targets:
            try:
                self.cancel(owner, job_id)
            except JobNotPossibleError:
                continue  # printing now: left alone
            canceled.append(job_id)
        return canceled

    def set_hold(self, owner: UserPrincipal, job_id: int, hold_until: str) -> None:
        """Hold-Job (`hold_until` indefinite) or Release-Job (`no-hold`), RFC 8011 §4.3.5-6.

        Raises:
            JobNotFoundError: no such job of the owner.
            JobNotPossibleError: Release-Job on a job that is not pending-held, or Hold-Job on a
                job that is neither pending nor pending-held.
        """
        view = self.get(owner, job_id)
        allowed = (
            (JobState.PENDING_HELD,)
            if hold_until == NO_HOLD
            else (JobState.PENDING, JobState.PENDING_HELD)
        )
        if view.state not in allowed:
            raise JobNotPossibleError(f"the job is {view.state.name.lower().replace('_', '-')}")
        with self._ctx.write() as db:
            self._row(db, owner, job_id).hold_until = hold_until

    def close(self, owner: UserPrincipal, job_id: int) -> None:
        """Close-Job (PWG 5100.11 §5.2): no more documents; a job without any is aborted."""
        ctx = self._ctx
        with ctx.write() as db:
            row = self._row(db, owner, job_id)
            if row.state == INCOMING:
                row.state, row.ended_at = ABORTED, ctx.now()

    def abort_stale(self) -> int:
        """Abort jobs (of every site) that waited over INCOMING_TIMEOUT_S for their document."""
        ctx = self._ctx
        cutoff = ctx.now() - timedelta(seconds=INCOMING_TIMEOUT_S)
        with ctx.write() as db:
            result = db.execute(
                update(IppJob)
                .where(
                    IppJob.state == INCOMING,
                    IppJob.created_at < cutoff,
                )
                .values(state=ABORTED, ended_at=ctx.now())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
