"""Wake-ups between replicas: the `EventBus` port, its PostgreSQL LISTEN/NOTIFY implementation,
the in-process twin (SQLite, one process), and unix datagram sockets between the worker
processes of one machine (SQLite under `pullprint cloud serve --workers N`, `cloud.workers`).

An event is a hint, not a message to be processed: "something changed for station S" (a release
was requested for it, its configuration changed). Whoever is woken re-reads the database, which
stays the only source of truth; so an event lost while the listener reconnects costs at most one
poll interval, never a release. (After a reconnect every waiter is woken, to re-read at once.)

Usage::

    bus = open_event_bus(engine)            # PostgreSQL -> LISTEN/NOTIFY, else in-process
    with bus.subscribe(f"station:{id}") as sub:
        ...check the database...
        kinds = await sub.wait_async(25.0)  # [] on timeout
    bus.publish(f"station:{id}", "release")
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Protocol, Self

import psycopg
from sqlalchemy import Engine, func, select

log = logging.getLogger(__name__)

# One NOTIFY channel for all events; the payload names the topic (channel names are identifiers
# with a 63-byte limit and would need quoting per station).
PG_CHANNEL = "pullprint_events"
_PG_RECONNECT_S = 1.0
_LISTEN_WAIT_S = 5.0
_MAX_PENDING = 64  # kinds kept per subscription between two waits (they are only hints)
RESYNC = "resync"  # delivered to every waiter when the bus may have missed events


class Subscription:
    """One waiter's interest in one topic; a context manager that unsubscribes on exit.

    Thread-safe: events arrive on the bus's thread; `wait` blocks a thread, `wait_async` an
    asyncio task (made in any thread: the loop is bound when `wait_async` starts).
    """

    def __init__(self, hub: _Hub, topic: str) -> None:
        self.topic = topic
        self._hub = hub
        self._lock = threading.Lock()
        self._kinds: list[str] = []
        self._event = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_event: asyncio.Event | None = None

    def deliver(self, kind: str) -> None:
        """Record an event and wake the waiter (called from any thread)."""
        with self._lock:
            if len(self._kinds) < _MAX_PENDING:
                self._kinds.append(kind)
            loop, async_event = self._loop, self._async_event
        self._event.set()
        if loop is not None and async_event is not None:
            # RuntimeError: the loop has closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(async_event.set)

    def _take(self) -> list[str]:
        with self._lock:
            kinds, self._kinds = self._kinds, []
            self._event.clear()
            if self._async_event is not None:
                self._async_event.clear()
        return kinds

    def wait(self, timeout_s: float) -> list[str]:
        """Block until an event (returns their kinds, oldest first) or the timeout ([])."""
        self._event.wait(timeout_s)
        return self._take()

    async def wait_async(self, timeout_s: float) -> list[str]:
        """Like `wait`, without blocking the event loop."""
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._async_event = async_event = asyncio.Event()
            if self._kinds:  # delivered before the wait began
                async_event.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(async_event.wait(), timeout_s)
        return self._take()

    def close(self) -> None:
        """Stop receiving events."""
        self._hub.remove(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Hub:
    """The subscriptions of this process, by topic."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, set[Subscription]] = {}

    def add(self, topic: str) -> Subscription:
        sub = Subscription(self, topic)
        with self._lock:
            self._subs.setdefault(topic, set()).add(sub)
        return sub

    def remove(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.topic]

    def dispatch(self, topic: str, kind: str) -> None:
        with self._lock:
            subs = list(self._subs.get(topic, ()))
        for sub in subs:
            sub.deliver(kind)

    def empty(self) -> bool:
        with self._lock:
            return not self._subs

    def dispatch_all(self, kind: str) -> None:
        with self._lock:
            subs = [sub for group in self._subs.values() for sub in group]
        for sub in subs:
            sub.deliver(kind)


class EventBus(Protocol):
    """Publishes hints to every replica's subscribers of a topic."""

    def publish(self, topic: str, kind: str) -> None:
        """Send `kind` to the subscribers of `topic` (in every replica); never raises."""

    def subscribe(self, topic: str) -> Subscription:
        """Start receiving the events of `topic` in this process."""

    def close(self) -> None:
        """Stop background work (idempotent; subscribing again restarts it)."""


class LocalEventBus:
    """The in-process twin: subscribers in this process only (SQLite runs one replica)."""

    def __init__(self) -> None:
        self._hub = _Hub()

    def publish(self, topic: str, kind: str) -> None:
        """Deliver to this process's subscribers."""
        self._hub.dispatch(topic, kind)

    def subscribe(self, topic: str) -> Subscription:
        """Subscribe in this process."""
        return self._hub.add(topic)

    def close(self) -> None:
        """Nothing to stop."""


class SocketEventBus:
    """Wake-ups between the worker processes of one server on one machine (`cloud.workers`).

    Worker `index` of `workers` binds a unix datagram socket in the abstract namespace, named
    after the database (two clouds on one machine never cross) and its index, so a restarted
    worker takes its predecessor's name and nothing stale is left on disk. `publish` delivers
    in this process and sends one datagram to each other worker. Events are hints (the
    database is the truth): a datagram lost to a full buffer or a worker restarting costs the
    waiter at most its poll interval. Any local process could send such a hint; the worst it
    can do is make a waiter re-read the database early.
    """

    def __init__(self, database_url: str, index: int, workers: int) -> None:
        self._hub = _Hub()
        prefix = "pullprint-events-" + hashlib.sha256(database_url.encode()).hexdigest()[:16]
        self._peers = [f"\0{prefix}-{n}" for n in range(workers) if n != index]
        self._in = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._in.bind(f"\0{prefix}-{index}")
        self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._out.setblocking(False)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="event-socket", daemon=True)
        self._thread.start()

    def publish(self, topic: str, kind: str) -> None:
        """Deliver here, then hint every other worker (never raises)."""
        self._hub.dispatch(topic, kind)
        payload = json.dumps({"topic": topic, "kind": kind}).encode()
        for peer in self._peers:
            # Refused: that worker is restarting; blocked: its buffer is full. Hints either way.
            with contextlib.suppress(OSError):
                self._out.sendto(payload, peer)

    def subscribe(self, topic: str) -> Subscription:
        """Subscribe in this process."""
        return self._hub.add(topic)

    def close(self) -> None:
        """Stop receiving (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._in.shutdown(socket.SHUT_RDWR)
        self._in.close()
        self._out.close()
        self._thread.join(5)

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._in.recv(4096)
            except OSError:
                return  # closed
            if not data:
                continue
            try:
                event = json.loads(data)
                topic, kind = str(event["topic"]), str(event["kind"])
            except (ValueError, KeyError, TypeError):
                log.warning("ignored a malformed event datagram")
                continue
            self._hub.dispatch(topic, kind)


class PostgresEventBus:
    """Events over PostgreSQL LISTEN/NOTIFY, so every replica on the database hears them.

    While this process has subscribers (and `LINGER_S` after the last one left, so a station
    polling again finds it still up), one listener thread holds a dedicated autocommit
    connection (psycopg 3) that LISTENs on `PG_CHANNEL` and dispatches to them; it reconnects
    after a database restart and then wakes every waiter (`RESYNC`), since NOTIFYs sent
    meanwhile are lost. Publishing is one `SELECT pg_notify(...)` on a pooled connection.
    """

    LINGER_S = 30.0

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._hub = _Hub()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def wait_listening(self, timeout_s: float = 10.0) -> bool:
        """Whether the listener is connected (it runs while there are subscribers)."""
        return self._listening.wait(timeout_s)

    def publish(self, topic: str, kind: str) -> None:
        """NOTIFY every replica; a failure is logged, not raised (events are only hints)."""
        payload = json.dumps({"t": topic, "k": kind})
        try:
            with self._engine.begin() as conn:
                conn.execute(select(func.pg_notify(PG_CHANNEL, payload)))
        except Exception as exc:
            log.warning("could not publish an event: %s", type(exc).__name__)

    def subscribe(self, topic: str) -> Subscription:
        """Subscribe in this process, starting the listener if it is not running.

        Waits briefly for a new listener to connect, so that a NOTIFY sent right after the
        caller's database read is not missed.
        """
        sub = self._hub.add(topic)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="pg-events", daemon=True)
                self._thread.start()
        self._listening.wait(_LISTEN_WAIT_S)
        return sub

    def close(self) -> None:
        """Stop the listener thread; a later subscription starts a new one (an app's lifespan
        may start again)."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join(5)
        with self._lock:
            self._stop.clear()

    def _idle_too_long(self, idle_since: float | None) -> bool:
        """Whether the listener should end (under the lock, so subscribe() restarts it)."""
        with self._lock:
            ending = self._stop.is_set() or (
                self._hub.empty()
                and idle_since is not None
                and time.monotonic() - idle_since >= self.LINGER_S
            )
            if ending:
                self._listening.clear()
                self._thread = None
            return ending

    def _listen(self) -> None:
        # The engine's URL as a libpq URI (psycopg's own connection, not the pool's).
        conninfo = self._engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        connected_before = False
        idle_since: float | None = None
        while True:
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {PG_CHANNEL}".encode())
                    self._listening.set()
                    if connected_before:
                        self._hub.dispatch_all(RESYNC)
                    connected_before = True
                    while True:
                        # A short timeout so that close() and idleness are noticed promptly.
                        for note in conn.notifies(timeout=0.5):
                            self._deliver(note.payload)
                        idle_since = (
                            None if not self._hub.empty() else idle_since or time.monotonic()
                        )
                        if self._idle_too_long(idle_since):
                            return
            except psycopg.Error as exc:
                self._listening.clear()
                idle_since = None if not self._hub.empty() else idle_since or time.monotonic()
                if self._idle_too_long(idle_since):
                    return
                log.warning(
                    "event listener lost the database (%s); reconnecting", type(exc).__name__
                )
                time.sleep(_PG_RECONNECT_S)

    def _deliver(self, payload: str) -> None:
        try:
            event = json.loads(payload)
            topic, kind = str(event["t"]), str(event["k"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed event payload")
            return
        self._hub.dispatch(topic, kind)


def open_event_bus(engine: Engine) -> EventBus:
    """LISTEN/NOTIFY on PostgreSQL (replicas share the database), in-process otherwise."""
    if engine.dialect.name == "postgresql":
        return PostgresEventBus(engine)
    return LocalEventBus()


def station_topic(station_id: object) -> str:
    """The topic of one station's wake-ups."""
    return f"station:{station_id}"


# --- station long-poll ---------------------------------------------------------------------------


async def wait_for_station(
    bus: EventBus,
    station_id: uuid.UUID,
    pending: Callable[[], Awaitable[list[uuid.UUID]]],
    timeout_s: float,
) -> tuple[list[str], list[uuid.UUID]]:
    """Wait until something is there for a station: (event kinds, releases awaiting it).

    Subscribes *before* reading the database, so a release committed between the read and the
    wait still wakes the station; returns at once if releases are already waiting.
    """
    # In a worker thread: a PostgreSQL bus may wait a moment for its listener to connect.
    subscribed = await asyncio.to_thread(bus.subscribe, station_topic(station_id))
    with subscribed as sub:
        waiting = await pending()
        if waiting:
            return ["release"], waiting
        kinds = await sub.wait_async(timeout_s)
        if not kinds:
            return [], []
        return sorted(set(kinds)), await pending()
