"""What every domain module shares: config, database sessions, blob store, clock, audit trail.

Transactions are short and never span I/O to a client or the blob store's streaming reads:
bytes are moved outside them, and state changes are compare-and-set `UPDATE ... WHERE state =`
statements, so concurrent requests (or API replicas) cannot both win a transition.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session, sessionmaker

from cloud.blobstore import BlobStore
from cloud.config import CloudConfig
from cloud.db import AuditEvent
from cloud.events import EventBus, LocalEventBus

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ServiceContext:
    """The collaborators of the domain modules, built once by `CloudService`."""

    config: CloudConfig
    blobs: BlobStore
    now: Clock
    writer: sessionmaker[Session]
    reader: sessionmaker[Session]
    # Wake-ups for other replicas (cloud.events); in-process unless the service passes one.
    events: EventBus = field(default_factory=LocalEventBus)
    # Held around every write transaction of this process (see `build`).
    write_lock: AbstractContextManager[Any] = field(default_factory=nullcontext)

    @classmethod
    def build(
        cls,
        config: CloudConfig,
        engine: Engine,
        blobs: BlobStore,
        now: Clock,
        events: EventBus | None = None,
    ) -> Self:
        """Bind session factories: writers take SQLite's write lock up front, readers do not.

        On SQLite (one replica, one writer at a time) this process's writers also queue on a
        lock of their own before BEGIN IMMEDIATE: SQLite's busy handler would otherwise make a
        thread that finds the database locked sleep and retry (1, 2, 5 ... 100 ms), which under
        concurrent station requests cost more than the writes themselves (p99 tripled). The
        lock is re-entrant because a session begins lazily, so a nested `write()` in the same
        thread behaves as before. Other processes (admin commands) still meet `busy_timeout`.
        PostgreSQL has row locks and many writers: no lock there.
        """
        reader_engine = engine.execution_options(sqlite_begin="DEFERRED")
        lock: AbstractContextManager[Any] = (
            threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        return cls(
            config=config,
            blobs=blobs,
            now=now,
            writer=sessionmaker(engine, expire_on_commit=False),
            reader=sessionmaker(reader_engine, expire_on_commit=False),
            events=events if events is not None else LocalEventBus(),
            write_lock=lock,
        )

    @property
    def site(self) -> str:
        """The default site (the config's): where the bootstrap admin and the sweeper act."""
        return self.config.site

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A read-write transaction, committed on success, rolled back on error."""
        with self.write_lock, self.writer() as db, db.begin():
            yield db

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction."""
        with self.reader() as db, db.begin():
            yield db

    def keyed_hash(self, value: bytes) -> str:
        """HMAC-SHA256(pepper, value) in hex: how tags and token secrets are stored."""
        return hmac.new(self.config.pepper, value, hashlib.sha256).hexdigest()

    def audit(
        self,
        db: Session,
        kind: str,
        *,
        user_id: uuid.UUID | None = None,
        station_id: uuid.UUID | None = None,
        job_id: uuid.UUID | None = None,
        session_id: uuid.UUID | None = None,
        release_id: uuid.UUID | None = None,
        detail: str | None = None,
        site: str,
    ) -> None:
        """Record an audit event in the caller's transaction (ids only, never secrets).

        `site` is the site the event belongs to. It has no default on purpose: an event filed
        under the wrong site shows one site's ids to another site's admin.
        """
        # A Core insert, without flushing the caller's pending objects first (their order of
        # writes is unchanged): the ORM's unit of work for one append-only row (no foreign keys)
        # cost more than the rest of a badge tap's transaction.
        db.connection().execute(
            insert(AuditEvent),
            {
                "site": site,
                "kind": kind,
                "at": self.now(),
                "user_id": user_id,
                "station_id": station_id,
                "job_id": job_id,
                "session_id": session_id,
                "release_id": release_id,
                "detail": detail,
            },
        )
