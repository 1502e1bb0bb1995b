"""Per-site job policies: zero-knowledge mode, job-name privacy, expiry, quota, reprint, tap.

A site without a `site_policies` row has the defaults: cloud storage mode, names kept, the
config's `job_expiry_h`, `DEFAULT_QUOTA_BYTES` per user, printed jobs destroyed at once, and the
job list shown after a tap.

Zero-knowledge mode needs the site's X25519 public key (`pullprint admin site zk-init` makes the
pair and keeps the private key in the admin's site-key directory). Once a site is
zero-knowledge it stays so: turning it off would leave held jobs that the cloud cannot release
in the old way, and would silently weaken what users were promised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from cloud.context import ServiceContext
from cloud.db import SitePolicy
from cloud.errors import ConflictError, InvalidRequestError
from cloud.prepared import Prepared
from cloud.sites import require_site

log = logging.getLogger(__name__)

_T = TypeVar("_T")

DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024
MAX_EXPIRY_H = 24 * 90
HIDDEN_NAME = "Document"

# Read on every badge tap (`load_policy` on a Core connection): prepared.
_POLICY_ROW = Prepared(
    select(*SitePolicy.__table__.columns).where(SitePolicy.site == bindparam("site"))
)


class JobNames(StrEnum):
    """What the cloud records and shows of a job's name."""

    KEEP = "keep"  # recorded and shown
    HIDE = "hide"  # recorded; shown to the owner only (stations and admins see HIDDEN_NAME)
    DROP = "drop"  # never recorded: HIDDEN_NAME is stored instead


@dataclass(frozen=True, slots=True)
class Policy:
    """A site's job policies in force."""

    site: str
    zero_knowledge: bool
    public_key: bytes | None
    job_names: JobNames
    job_expiry_h: int
    quota_bytes: int | None  # None: no quota
    keep_printed: bool
    release_all_on_tap: bool


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """What an admin changes (None: leave as it is; `quota_bytes=0` removes the quota)."""

    zero_knowledge: bool | None = None
    public_key: bytes | None = None
    job_names: JobNames | None = None
    job_expiry_h: int | None = None
    quota_bytes: int | None = None
    keep_printed: bool | None = None
    release_all_on_tap: bool | None = None


def load_policy(ctx: ServiceContext, db: Session | Connection, site: str) -> Policy:
    """The site's policy inside the caller's transaction (an ORM session sees its own pending
    changes; a Core connection, on the hot paths, reads the row)."""
    row: Any = (
        db.get(SitePolicy, site)
        if isinstance(db, Session)
        else _POLICY_ROW.first_named(db, {"site": site})
    )
    if row is None:
        return Policy(
            site=site,
            zero_knowledge=False,
            public_key=None,
            job_names=JobNames.KEEP,
            job_expiry_h=ctx.config.job_expiry_h,
            quota_bytes=DEFAULT_QUOTA_BYTES,
            keep_printed=False,
            release_all_on_tap=False,
        )
    return Policy(
        site=site,
        zero_knowledge=row.zero_knowledge,
        public_key=row.public_key,
        job_names=JobNames(row.job_names),
        job_expiry_h=row.job_expiry_h or ctx.config.job_expiry_h,
        quota_bytes=DEFAULT_QUOTA_BYTES if row.quota_bytes is None else (row.quota_bytes or None),
        keep_printed=row.keep_printed,
        release_all_on_tap=row.release_all_on_tap,
    )


def shown_name(policy: Policy, name: str) -> str:
    """The name a station or an admin may see."""
    return name if policy.job_names is JobNames.KEEP else HIDDEN_NAME


class Policies:
    """Reading and changing site policies (each admin only their own site's)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def get(self, site: str) -> Policy:
        """The policy in force in `site`."""
        with self._ctx.read() as db:
            return load_policy(self._ctx, db, site)

    def update(self, site: str, change: PolicyChange) -> Policy:
        """Change a site's policy; every change is an audit event.

        Raises:
            InvalidRequestError: a value out of range, a malformed public key, or zero-knowledge
                asked for without a public key.
            ConflictError: turning zero-knowledge off, or replacing the key of a
                zero-knowledge site (stations hold the old private key; held jobs need it).
            NotFoundError: no such site.
        """
        _validate(change)
        ctx = self._ctx
        with ctx.write() as db:
            require_site(db, site)
            current = load_policy(ctx, db, site)
            if current.zero_knowledge and change.zero_knowledge is False:
                raise ConflictError("a zero-knowledge site cannot be turned back")
            if (
                current.zero_knowledge
                and change.public_key is not None
                and change.public_key != current.public_key
            ):
                raise ConflictError("the site key of a zero-knowledge site cannot be replaced")
            c = change
            new = Policy(
                site=site,
                zero_knowledge=_pick(c.zero_knowledge, current.zero_knowledge),
                public_key=_pick(c.public_key, current.public_key),
                job_names=_pick(c.job_names, current.job_names),
                job_expiry_h=_pick(c.job_expiry_h, current.job_expiry_h),
                quota_bytes=current.quota_bytes,
                keep_printed=_pick(c.keep_printed, current.keep_printed),
                release_all_on_tap=_pick(c.release_all_on_tap, current.release_all_on_tap),
            )
            if change.quota_bytes is not None:
                new = replace(new, quota_bytes=change.quota_bytes or None)
            if new.zero_knowledge and new.public_key is None:
                raise InvalidRequestError("zero-knowledge mode needs the site's public key")
            row = db.get(SitePolicy, site)
            if row is None:
                row = SitePolicy(site=site)
                db.add(row)
            row.zero_knowledge = new.zero_knowledge
            row.public_key = new.public_key
            row.job_names = str(new.job_names)
            row.job_expiry_h = new.job_expiry_h
            row.quota_bytes = new.quota_bytes or 0
            row.keep_printed = new.keep_printed
            row.release_all_on_tap = new.release_all_on_tap
            row.updated_at = ctx.now()
            changed = sorted(
                name
                for name in PolicyChange.__dataclass_fields__
                if getattr(change, name) is not None
            )
            ctx.audit(db, "site-policy-changed", detail=",".join(changed), site=site)
        log.info("site %s policy changed (%s)", site, ", ".join(changed))
        return new


def _pick(new: _T | None, old: _T) -> _T:
    return old if new is None else new


def _validate(change: PolicyChange) -> None:
    if change.public_key is not None:
        try:
            X25519PublicKey.from_public_bytes(change.public_key)
        except ValueError:
            raise InvalidRequestError("the site public key is a raw 32-byte X25519 key") from None
    if change.job_expiry_h is not None and not 1 <= change.job_expiry_h <= MAX_EXPIRY_H:
        raise InvalidRequestError(f"job expiry is 1-{MAX_EXPIRY_H} hours")
    if change.quota_bytes is not None and change.quota_bytes < 0:
        raise InvalidRequestError("a quota is a number of bytes (0: none)")
