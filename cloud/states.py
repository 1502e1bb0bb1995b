"""The job and release state machines (names as they appear on the wire and in the database).

Jobs::

    held -> releasing            a release was requested at a station
    releasing -> printed         the release's printer confirmed the job   (content destroyed)
    releasing -> held            the release failed, or its lease expired
    held -> expired              expiry passed while held                  (content destroyed)
    held -> deleted              the owner deleted it                      (content destroyed)
    releasing -> printed         ... in a site that keeps printed jobs: content kept until expiry
    printed -> releasing         a reprint of a job kept for reprint (a new release)
    releasing -> printed         the reprint failed, was cancelled, or its lease expired
    printed -> printed           a kept job's expiry passed                (content destroyed)
    printed -> deleted           the owner deleted a kept job              (content destroyed)

Releases (each with a lease, renewed when delivery starts)::

    requested -> delivering      the station started fetching the content (may fetch again)
    requested | delivering -> printed | failed      the station's outcome report
    requested | delivering -> cancelled             the user (or the station) gave up before
                                                    anything was sent; the job rests again
    requested | delivering -> failed                the lease expired ("lease expired")
    failed("lease expired") -> printed              a late "printed" report, accepted only while
                                                    the job is still held, so a station that was
                                                    slow to confirm does not cause a reprint

Every transition is a compare-and-set on the current state, so retries are idempotent and
concurrent requests cannot both win.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """Where a job is in its life."""

    HELD = "held"
    RELEASING = "releasing"
    PRINTED = "printed"
    EXPIRED = "expired"
    DELETED = "deleted"


# States in which the content has been destroyed (or is being destroyed).
JOB_FINISHED = frozenset({JobState.PRINTED, JobState.EXPIRED, JobState.DELETED})


class ReleaseState(StrEnum):
    """Where a release is on its way to the printer."""

    REQUESTED = "requested"
    DELIVERING = "delivering"
    PRINTED = "printed"
    FAILED = "failed"
    CANCELLED = "cancelled"


RELEASE_ACTIVE = frozenset({ReleaseState.REQUESTED, ReleaseState.DELIVERING})
LEASE_EXPIRED_REASON = "lease expired"
