"""Releases: a held job on its way to one station's printer, confirmed or failed, under a lease.

The state machine is drawn in `cloud.states`. Invariants:

* only the station that requested a release may fetch its content or report its outcome;
* creating releases is all-or-nothing: if one chosen job is not held, none is released;
* a session user releases their own jobs and those of users who delegated releasing to them
  (`cloud.delegations`); a release records who released it;
* the data key goes only to the station, in the create response; in a zero-knowledge site the
  cloud has no data key to give: the station gets the HPKE-wrapped key and unwraps it with the
  site private key from its pairing grant. The content endpoint serves ciphertext exactly as
  stored (the station decrypts chunk by chunk);
* "printed" destroys the content (wrapped key erased in the same transaction, blob deleted right
  after) unless the site keeps printed jobs for reprint; "failed" and "cancelled" return the job
  to the held list (a reprint: to the printed list);
* a lease that runs out (station crashed, lost power) fails the release and returns the job to
  the held list; content fetches renew the lease;
* every state change is an audit event, in the transaction that makes it.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, BinaryIO, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from cloud.container import KeyWrap, unwrap_key
from cloud.context import ServiceContext
from cloud.db import Job, Release, Station, StationAssignment, StationSession, User
from cloud.delegations import delegating_owners
from cloud.errors import (
    InvalidRequestError,
    JobNotFoundError,
    JobNotHeldError,
    PrinterNoStationError,
    ReleaseConflictError,
    ReleaseNotActiveError,
    ReleaseNotFoundError,
)
from cloud.events import station_topic
from cloud.identity import StationPrincipal, UserPrincipal
from cloud.jobs import destroy_content, held_jobs_query, remove_blob
from cloud.policies import Policy, load_policy, shown_name
from cloud.registry import find_printer
from cloud.sessions import active_session, insert_session
from cloud.states import LEASE_EXPIRED_REASON, RELEASE_ACTIVE, JobState, ReleaseState

log = logging.getLogger(__name__)

CONTENT_CHUNK_BYTES = 64 * 1024
_MAX_REASON_CHARS = 500
OUTCOMES = frozenset({ReleaseState.PRINTED, ReleaseState.FAILED, ReleaseState.CANCELLED})


@dataclass(frozen=True, slots=True)
class ReleaseGrant:
    """What a station needs to print one released job; keys are never in the repr.

    Exactly one of `data_key` (cloud storage mode) and `wrapped_key` (zero-knowledge: HPKE to
    the site key, `key_wrap` "hpke") is set.
    """

    id: uuid.UUID
    job_id: uuid.UUID
    name: str
    document_format: str
    copies: int
    size_bytes: int
    content_bytes: int
    user_name: str
    site: str
    state: ReleaseState
    data_key: bytes | None = field(repr=False)
    wrapped_key: bytes | None = field(default=None, repr=False)
    key_wrap: KeyWrap = KeyWrap.MASTER
    owner_name: str | None = None  # set when a delegate released another user's job
    reprint: bool = False


@dataclass(frozen=True, slots=True)
class OutcomeView:
    """A release's state after an outcome report."""

    id: uuid.UUID
    state: ReleaseState


@dataclass(frozen=True, slots=True)
class RemoteRelease:
    """Releases made from a phone for the station serving a printer (`create_for_printer`)."""

    station_id: uuid.UUID
    printer_id: uuid.UUID
    grants: tuple[ReleaseGrant, ...]


def _grant(
    ctx: ServiceContext,
    policy: Policy,
    job: Job,
    release: Release,
    owner: User,
    *,
    delegated: bool,
) -> ReleaseGrant:
    """The grant of a release: the job's data key (or, zero-knowledge, its wrapped key)."""
    assert job.wrapped_key is not None  # the caller checked the content is not destroyed
    hpke = job.key_wrap == KeyWrap.HPKE
    return ReleaseGrant(
        id=release.id,
        job_id=job.id,
        name=shown_name(policy, job.name),
        document_format=job.document_format,
        copies=job.copies,
        size_bytes=job.size_bytes,
        content_bytes=job.content_bytes,
        user_name=owner.display_name,
        site=job.site,
        state=ReleaseState(release.state),
        data_key=None if hpke else unwrap_key(ctx.config.master_key, job.wrapped_key, job.id),
        wrapped_key=job.wrapped_key if hpke else None,
        key_wrap=KeyWrap.HPKE if hpke else KeyWrap.MASTER,
        owner_name=owner.display_name if delegated else None,
        reprint=release.reprint,
    )


class ContentStream:
    """The stored container of a release's job, opened and ready to stream.

    The blob is opened before this object is returned, so a missing blob fails before any
    response starts; iterate to read it in `CONTENT_CHUNK_BYTES` pieces; the file is closed at
    the end, or by `close()` if the reader gives up.
    """

    def __init__(self, release_id: uuid.UUID, length: int, source: BinaryIO) -> None:
        self.release_id = release_id
        self.length = length
        self._source = source

    def __iter__(self) -> Iterator[bytes]:
        try:
            while chunk := self._source.read(CONTENT_CHUNK_BYTES):
                yield chunk
        finally:
            self._source.close()

    def close(self) -> None:
        """Close the blob early."""
        self._source.close()


def _cas(db: Session, statement: Any) -> bool:
    """Run a compare-and-set UPDATE; True if it changed exactly one row."""
    return cast("CursorResult[Any]", db.execute(statement)).rowcount == 1


class Releases:
    """Creating releases, serving their content, and recording their outcome."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def create(
        self,
        station: StationPrincipal,
        session_id: uuid.UUID,
        job_ids: Sequence[uuid.UUID] | None,
    ) -> list[ReleaseGrant]:
        """Release the given jobs (None: all held jobs the session user may release) to this
        station's printer. A chosen printed job kept for reprint is released again.

        Raises:
            SessionNotFoundError, SessionExpiredError: see `cloud.sessions.active_session`.
            JobNotFoundError: a job does not exist, or is neither the session user's nor
                delegated to them.
            JobNotHeldError: a job is not held (nothing is released then).
            InvalidRequestError: an empty list of jobs.
        """
        ctx = self._ctx
        now = ctx.now()
        lease = now + timedelta(seconds=ctx.config.release_lease_s)
        grants: list[ReleaseGrant] = []
        with ctx.write() as db:
            session = active_session(ctx, db, station, session_id)
            user = db.scalar(
                select(User).where(User.id == session.user_id, User.site == station.site)
            )
            assert user is not None  # foreign key, and a session is in its user's site
            policy = load_policy(ctx, db, station.site)
            owners = {user.id: user, **delegating_owners(db, station.site, user.id)}
            if job_ids is None:
                ids = []
                for owner_id in owners:
                    held = held_jobs_query(station.site, owner_id, now).with_only_columns(Job.id)
                    ids += list(db.scalars(held))
            elif not job_ids:
                raise InvalidRequestError("no jobs chosen")
            else:
                ids = list(dict.fromkeys(job_ids))  # keep order, drop repeats
            for job_id in ids:
                job = db.scalar(
                    select(Job).where(
                        Job.id == job_id, Job.site == station.site, Job.owner_id.in_(list(owners))
                    )
                )
                # Release-all skips a job that stopped being held after it was listed (on
                # PostgreSQL another transaction may cancel or release it in between; SQLite's
                # single writer hid that); a job chosen by id is refused instead.
                if job is None:
                    if job_ids is None:
                        continue
                    raise JobNotFoundError("no such job")
                if job.expires_at <= now or job.wrapped_key is None:
                    if job_ids is None:
                        continue
                    raise JobNotHeldError("the job is no longer held")
                reprint = job.state == JobState.PRINTED and policy.keep_printed
                from_state = JobState.PRINTED if reprint else JobState.HELD
                if not _cas(
                    db,
                    update(Job)
                    .where(Job.id == job_id, Job.state == from_state, Job.wrapped_key.is_not(None))
                    .values(state=JobState.RELEASING),
                ):
                    if job_ids is None:
                        continue
                    raise JobNotHeldError("the job is not held (already released or deleted)")
                release = Release(
                    id=uuid.uuid4(),
                    site=station.site,
                    job_id=job_id,
                    station_id=station.id,
                    session_id=session_id,
                    state=ReleaseState.REQUESTED,
                    requested_at=now,
                    lease_expires_at=lease,
                    finished_at=None,
                    reason=None,
                    printer_job_id=None,
                    printer_uri=station.printer_uri,
                    reprint=reprint,
                    released_by=user.id,
                )
                db.add(release)
                owner = owners[job.owner_id]
                delegated = owner.id != user.id
                notes = [
                    note for note, on in (("delegated", delegated), ("reprint", reprint)) if on
                ]
                ctx.audit(
                    db,
                    "release-requested",
                    user_id=user.id,
                    station_id=station.id,
                    session_id=session_id,
                    job_id=job_id,
                    release_id=release.id,
                    detail=",".join(notes) or None,
                    site=station.site,
                )
                grants.append(_grant(ctx, policy, job, release, owner, delegated=delegated))
        log.info("station %s: %d release(s) in session %s", station.id, len(grants), session_id)
        if grants:  # after the commit: a woken station must find the rows
            ctx.events.publish(station_topic(station.id), "release")
        return grants

    # --- station-entry: releases made from a phone, and their grants ---

    def create_for_printer(
        self, user: UserPrincipal, printer_id: uuid.UUID, job_ids: Sequence[uuid.UUID] | None
    ) -> RemoteRelease:
        """A signed-in user (a phone that scanned the printer's QR code) releases jobs to the
        station serving `printer_id`: the same releases, lease, checks and audit events as a tap
        (`create`), in a session opened for the user at that station and ended at once.

        Raises:
            PrinterNotFoundError: no such printer in the user's site (another site's printer
                is not found either).
            PrinterNoStationError: no active station serves the printer.
            JobNotFoundError, JobNotHeldError, InvalidRequestError: as `create`.
        """
        ctx = self._ctx
        with ctx.write() as db:
            find_printer(db, printer_id, user.site)
            row = db.execute(
                select(Station.id, Station.name, Station.printer_uri)
                .join(StationAssignment, StationAssignment.station_id == Station.id)
                .where(
                    StationAssignment.printer_id == printer_id,
                    StationAssignment.site == user.site,
                    Station.site == user.site,
                    Station.revoked_at.is_(None),
                )
                .order_by(StationAssignment.assigned_at)
                .limit(1)
            ).first()
            if row is None:
                raise PrinterNoStationError("no active station serves this printer")
            station = StationPrincipal(row.id, user.site, row.name, row.printer_uri)
            # `create` releases within a session at the station (the release rows point at
            # one); this one has no credential: the user signed in elsewhere.
            session_id, _ = insert_session(ctx, db, station, user.id, None, detail="remote")
        try:
            grants = self.create(station, session_id, job_ids)
        finally:
            with ctx.write() as db:
                db.execute(
                    update(StationSession)
                    .where(StationSession.id == session_id, StationSession.ended_at.is_(None))
                    .values(ended_at=ctx.now())
                )
                ctx.audit(
                    db,
                    "session-ended",
                    station_id=station.id,
                    session_id=session_id,
                    site=user.site,
                )
        return RemoteRelease(station.id, printer_id, tuple(grants))

    def grant(self, station: StationPrincipal, release_id: uuid.UUID) -> ReleaseGrant:
        """What the station needs to print a release it did not create itself (one made from a
        phone): the same grant as `create` returns, while the release is still requested.

        Raises:
            ReleaseNotFoundError: no such release for this station.
            ReleaseNotActiveError: it is no longer requested (fetched, finished or expired).
        """
        ctx = self._ctx
        with ctx.read() as db:
            release = self._owned(db, station, release_id)
            if release.state != ReleaseState.REQUESTED:
                raise ReleaseNotActiveError(f"the release is {release.state}")
            job = db.scalar(select(Job).where(Job.id == release.job_id, Job.site == station.site))
            assert job is not None  # foreign key; a release is in its job's site
            if job.wrapped_key is None:
                raise ReleaseNotActiveError("the job's content has been destroyed")
            owner = db.scalar(select(User).where(User.id == job.owner_id, User.site == job.site))
            assert owner is not None  # foreign key
            policy = load_policy(ctx, db, station.site)
            delegated = release.released_by is not None and release.released_by != owner.id
            return _grant(ctx, policy, job, release, owner, delegated=delegated)

    # --- end station-entry ---

    def awaiting(self, station: StationPrincipal) -> list[uuid.UUID]:
        """Releases requested for this station and not yet fetched (what a long-poll reports)."""
        with self._ctx.read() as db:
            return list(
                db.scalars(
                    select(Release.id)
                    .where(
                        Release.site == station.site,
                        Release.station_id == station.id,
                        Release.state == ReleaseState.REQUESTED,
                    )
                    .order_by(Release.requested_at)
                )
            )

    def _owned(self, db: Session, station: StationPrincipal, release_id: uuid.UUID) -> Release:
        release = db.scalar(
            select(Release).where(
                Release.id == release_id,
                Release.site == station.site,
                Release.station_id == station.id,
            )
        )
        if release is None:
            raise ReleaseNotFoundError("no such release for this station")
        return release

    def open_content(self, station: StationPrincipal, release_id: uuid.UUID) -> ContentStream:
        """Mark the release delivering (renewing its lease) and open its stored container.

        Raises:
            ReleaseNotFoundError: no such release for this station.
            ReleaseNotActiveError: the release has already finished.
            BlobNotFoundError: the content is missing from the store.
        """
        ctx = self._ctx
        now = ctx.now()
        with ctx.write() as db:
            release = self._owned(db, station, release_id)
            first_fetch = release.state == ReleaseState.REQUESTED
            renewed = _cas(
                db,
                update(Release)
                .where(Release.id == release_id, Release.state.in_(list(RELEASE_ACTIVE)))
                .values(
                    state=ReleaseState.DELIVERING,
                    lease_expires_at=now + timedelta(seconds=ctx.config.release_lease_s),
                ),
            )
            if not renewed:
                raise ReleaseNotActiveError("the release has finished")
            job = db.scalar(select(Job).where(Job.id == release.job_id, Job.site == station.site))
            assert job is not None  # foreign key; a release is in its job's site
            if job.blob_key is None:
                raise ReleaseNotActiveError("the job's content has been destroyed")
            blob_key, length = job.blob_key, job.content_bytes
            if first_fetch:
                ctx.audit(
                    db,
                    "release-delivering",
                    station_id=station.id,
                    job_id=job.id,
                    release_id=release_id,
                    site=station.site,
                )
        handle = ctx.blobs.open(blob_key)
        # Serve what is stored, not what was recorded: a blob damaged at rest (cut short, grown)
        # must reach the station as it is, where authentication refuses it with a clear reason,
        # rather than break the HTTP framing mid-stream and look like a network fault.
        stored = handle.seek(0, os.SEEK_END)
        handle.seek(0)
        if stored != length:
            log.warning(
                "release %s: stored content is %d bytes, %d were recorded: damaged at rest",
                release_id,
                stored,
                length,
            )
        return ContentStream(release_id, stored, handle)

    def report_outcome(
        self,
        station: StationPrincipal,
        release_id: uuid.UUID,
        outcome: ReleaseState,
        reason: str | None = None,
        printer_job_id: int | None = None,
    ) -> OutcomeView:
        """Record what the printer did (or that the release was cancelled before printing);
        idempotent for a repeated report.

        Raises:
            InvalidRequestError: `outcome` is not printed, failed or cancelled.
            ReleaseNotFoundError: no such release for this station.
            ReleaseConflictError: a different outcome was already recorded.
        """
        if outcome not in OUTCOMES:
            raise InvalidRequestError("the outcome is printed, failed or cancelled")
        ctx = self._ctx
        reason = reason[:_MAX_REASON_CHARS] if reason else None
        destroyed = False
        with ctx.write() as db:
            release = self._owned(db, station, release_id)
            job_id = release.job_id
            if release.state == outcome:
                return OutcomeView(release_id, outcome)  # a retry: already recorded
            late_print = (
                release.state == ReleaseState.FAILED
                and release.reason == LEASE_EXPIRED_REASON
                and outcome is ReleaseState.PRINTED
            )
            if release.state not in RELEASE_ACTIVE and not late_print:
                raise ReleaseConflictError(f"the release is already {release.state}")
            recorded = _cas(
                db,
                update(Release)
                .where(Release.id == release_id, Release.state == release.state)
                .values(
                    state=outcome,
                    finished_at=ctx.now(),
                    reason=reason,
                    printer_job_id=printer_job_id,
                ),
            )
            if not recorded:
                # A concurrent report won. If it recorded this same outcome, this one is its
                # retry (PostgreSQL lets both read the old state; SQLite's single writer did not).
                now_state = db.scalar(select(Release.state).where(Release.id == release_id))
                if now_state == outcome:
                    return OutcomeView(release_id, outcome)
                raise ReleaseConflictError("the release changed meanwhile; report again")
            resting = JobState.PRINTED if release.reprint else JobState.HELD
            if outcome is ReleaseState.PRINTED:
                # A late confirmation finds the job back where it rested; accept it only if the
                # job was not released again meanwhile, or it could print twice.
                from_state = resting if late_print else JobState.RELEASING
                destroyed = self._printed(db, station.site, job_id, from_state)
            else:
                db.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.state == JobState.RELEASING)
                    .values(state=resting)
                )
            ctx.audit(
                db,
                f"release-{outcome}",
                station_id=station.id,
                job_id=job_id,
                release_id=release_id,
                detail=reason,
                site=station.site,
            )
        log.info("release %s %s at station %s", release_id, outcome, station.id)
        if destroyed:
            remove_blob(ctx, job_id)
        return OutcomeView(release_id, outcome)

    def _printed(self, db: Session, site: str, job_id: uuid.UUID, from_state: JobState) -> bool:
        """Settle a printed job: destroy its content, or keep it for reprint; True if destroyed.

        Raises:
            ReleaseConflictError: the job is no longer in `from_state` (released again).
        """
        ctx = self._ctx
        if load_policy(ctx, db, site).keep_printed:
            if from_state is JobState.PRINTED:
                return False  # a late report of a reprint: the job is already printed and kept
            values: dict[str, object] = {"state": JobState.PRINTED, "printed_at": ctx.now()}
            kept = _cas(
                db,
                update(Job)
                .where(Job.id == job_id, Job.state == from_state, Job.wrapped_key.is_not(None))
                .values(**values),
            )
            if not kept:
                raise ReleaseConflictError("the job was released again meanwhile")
            ctx.audit(db, "content-kept-for-reprint", job_id=job_id, site=site)
            return False
        if not destroy_content(ctx, db, job_id, to=JobState.PRINTED, from_states=[from_state]):
            if from_state is JobState.PRINTED:
                return False  # a late report of a reprint whose content is already gone
            raise ReleaseConflictError("the job was released again meanwhile")
        return True

    def expire_leases(self) -> int:
        """Fail releases (of every site) whose lease ran out; their jobs return to the held list."""
        ctx = self._ctx
        now = ctx.now()
        with ctx.read() as db:
            due = list(
                db.scalars(
                    select(Release.id).where(
                        Release.state.in_(list(RELEASE_ACTIVE)),
                        Release.lease_expires_at <= now,
                    )
                )
            )
        expired = 0
        for release_id in due:
            with ctx.write() as db:
                failed = _cas(
                    db,
                    update(Release)
                    .where(
                        Release.id == release_id,
                        Release.state.in_(list(RELEASE_ACTIVE)),
                        Release.lease_expires_at <= now,
                    )
                    .values(
                        state=ReleaseState.FAILED, reason=LEASE_EXPIRED_REASON, finished_at=now
                    ),
                )
                if not failed:
                    continue  # reported or renewed meanwhile
                job_id, site, reprint = db.execute(
                    select(Release.job_id, Release.site, Release.reprint).where(
                        Release.id == release_id
                    )
                ).one()
                db.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.state == JobState.RELEASING)
                    .values(state=JobState.PRINTED if reprint else JobState.HELD)
                )
                ctx.audit(db, "lease-expired", job_id=job_id, release_id=release_id, site=site)
                expired += 1
        if expired:
            log.info("%d release lease(s) expired; jobs returned to the held list", expired)
        return expired
