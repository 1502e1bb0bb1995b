"""What every domain module shares: config, database sessions, blob store, clock, audit trail.

Transactions are short and never span I/O to a client or the blob store's streaming reads:
bytes are moved outside them, and state changes are compare-and-set `UPDATE ... WHERE state =`
statements, so concurrent requests (or API replicas) cannot both win a transition.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, insert
from sqlalchemy.orm import Session, sessionmaker

from cloud.blobstore import BlobStore
from cloud.config import CloudConfig
from cloud.db import AuditEvent
from cloud.events import EventBus, LocalEventBus
from cloud.prepared import Prepared

Clock = Callable[[], datetime]

# Every state change writes one (a badge tap included): prepared.
_AUDIT_INSERT = Prepared(
    insert(AuditEvent),
    keys=(
        "site",
        "kind",
        "at",
        "user_id",
        "station_id",
        "job_id",
        "session_id",
        "release_id",
        "detail",
    ),
)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the default clock)."""
    return datetime.now(UTC)


class SqliteWriteLock:
    """The write lock of one SQLite database file, across threads and processes.

    Threads of this process queue on a re-entrant lock, processes (the workers of `cloud
    serve --workers N`, admin commands) on `flock` of a file beside the database. Both block
    until the holder lets go and wake at once; SQLite's own busy handler instead sleeps and
    retries (1, 2, 5 ... 100 ms), which under concurrent badge taps cost more than the writes.
    Re-entrant because a session begins lazily: a nested `write()` in the same thread is fine.
    """

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.RLock()
        self._path = path
        self._fd: int | None = None
        self._pid = 0
        self._depth = 0

    def __enter__(self) -> None:
        self._lock.acquire()
        if self._depth == 0 and self._path is not None:
            try:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
            except BaseException:
                self._lock.release()
                raise
        self._depth += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()

    def _file(self) -> int:
        # Opened lazily and again after a fork: an inherited descriptor would share its lock
        # with the parent's.
        if self._fd is None or self._pid != os.getpid():
            assert self._path is not None
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd


def _sqlite_lock_path(engine: Engine) -> Path | None:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database + ".writelock")


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
    # The engine itself, for the Core transactions of the hottest paths (`write_core`), and
    # its read-only twin (`read_core`).
    engine: Engine | None = None
    read_engine: Engine | None = None

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

        On SQLite (one writer at a time) writers also queue on `SqliteWriteLock` before BEGIN
        IMMEDIATE, across threads and processes. PostgreSQL has row locks and many writers: no
        lock there.
        """
        reader_engine = engine.execution_options(sqlite_begin="DEFERRED")
        lock: AbstractContextManager[Any] = (
            SqliteWriteLock(_sqlite_lock_path(engine))
            if engine.dialect.name == "sqlite"
            else nullcontext()
        )
        return cls(
            config=config,
            blobs=blobs,
            now=now,
            writer=sessionmaker(engine, expire_on_commit=False),
            reader=sessionmaker(reader_engine, expire_on_commit=False),
            events=events if events is not None else LocalEventBus(),
            write_lock=lock,
            engine=engine,
            read_engine=reader_engine,
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
    def write_core(self) -> Iterator[Connection]:
        """A read-write transaction on a Core connection, committed on success.

        For the hottest paths (a badge tap, a station's signature check): an ORM session's own
        bookkeeping (identity map, unit of work, autobegin, close) costs more there than the
        SQL. Same lock and BEGIN mode as `write`.
        """
        assert self.engine is not None, "ServiceContext.build sets the engine"
        with self.write_lock, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read_core(self) -> Iterator[Connection]:
        """A read-only transaction on a Core connection (see `write_core`): for the checks
        that run before every request of their kind (a user's bearer token)."""
        assert self.read_engine is not None, "ServiceContext.build sets the engines"
        with self.read_engine.begin() as conn:
            yield conn

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
        db: Session | Connection,
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
        _AUDIT_INSERT.run(
            db,
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
