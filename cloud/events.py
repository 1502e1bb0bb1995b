"""Wake-ups between replicas: the `EventBus` port, its PostgreSQL LISTEN/NOTIFY implementation
and the in-process twin (for SQLite, where there is only one replica).

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
import json
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Protocol, Self

from sqlalchemy import Engine, func, select

log = logging.getLogger(__name__)

# One NOTIFY channel for all events; the payload names the topic (channel names are identifiers
# with a 63-byte limit and would need quoting per station).
PG_CHANNEL = "pullprint_events"
_PG_RECONNECT_S = 1.0
_MAX_PENDING = 64  # kinds kept per subscription between two waits (they are only hints)
RESYNC = "resync"  # delivered to every waiter when the bus may have missed events


class Subscription:
    """One waiter's interest in one topic; a context manager that unsubscribes on exit.

    Thread-safe: events arrive on the bus's thread; `wait` blocks a thread, `wait_async` an
    asyncio task (of the loop that was running when the subscription was made).
    """

    def __init__(self, hub: _Hub, topic: str) -> None:
        self.topic = topic
        self._hub = hub
        self._lock = threading.Lock()
        self._kinds: list[str] = []
        self._event = threading.Event()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._async_event = asyncio.Event() if self._loop is not None else None

    def deliver(self, kind: str) -> None:
        """Record an event and wake the waiter (called from any thread)."""
        with self._lock:
            if len(self._kinds) < _MAX_PENDING:
                self._kinds.append(kind)
        self._event.set()
        if self._loop is not None and self._async_event is not None:
            try:
                self._loop.call_soon_threadsafe(self._async_event.set)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                pass

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
        if self._async_event is None:
            raise RuntimeError("subscription was not made on an event loop")
        try:
            await asyncio.wait_for(self._async_event.wait(), timeout_s)
        except TimeoutError:
            pass
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
        """Stop background work (idempotent)."""


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


class PostgresEventBus:
    """Events over PostgreSQL LISTEN/NOTIFY, so every replica on the database hears them.

    One listener thread per process holds a dedicated autocommit connection (psycopg 3) that
    LISTENs on `PG_CHANNEL` and dispatches to this process's subscribers; it reconnects after a
    database restart and then wakes every waiter (`RESYNC`), since NOTIFYs sent meanwhile are
    lost. Publishing is one `SELECT pg_notify(...)` on a pooled connection.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._hub = _Hub()
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="pg-events", daemon=True)
        self._thread.start()

    def wait_listening(self, timeout_s: float = 10.0) -> bool:
        """Whether the listener is connected (tests wait for it before publishing)."""
        return self._listening.wait(timeout_s)

    def publish(self, topic: str, kind: str) -> None:
        """NOTIFY every replica; a failure is logged, not raised (events are only hints)."""
        payload = json.dumps({"t": topic, "k": kind})
        try:
            with self._engine.begin() as conn:
                conn.execute(select(func.pg_notify(PG_CHANNEL, payload)))
        except Exception as exc:  # noqa: BLE001 - the database is the truth; pollers catch up
            log.warning("could not publish an event: %s", type(exc).__name__)

    def subscribe(self, topic: str) -> Subscription:
        """Subscribe in this process (the listener thread feeds it)."""
        return self._hub.add(topic)

    def close(self) -> None:
        """Stop the listener thread."""
        self._stop.set()
        self._thread.join(5)

    def _listen(self) -> None:
        import psycopg

        url = self._engine.url
        connected_before = False
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    host=url.host,
                    port=url.port,
                    user=url.username,
                    password=url.password,
                    dbname=url.database,
                    autocommit=True,
                    connect_timeout=5,
                    **{str(k): str(v) for k, v in url.query.items()},
                ) as conn:
                    conn.execute(f"LISTEN {PG_CHANNEL}".encode())
                    self._listening.set()
                    if connected_before:
                        self._hub.dispatch_all(RESYNC)
                    connected_before = True
                    while not self._stop.is_set():
                        # A short timeout so that close() is noticed promptly.
                        for note in conn.notifies(timeout=0.5):
                            self._deliver(note.payload)
            except psycopg.Error as exc:
                self._listening.clear()
                if self._stop.is_set():
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
    with bus.subscribe(station_topic(station_id)) as sub:
        waiting = await pending()
        if waiting:
            return ["release"], waiting
        kinds = await sub.wait_async(timeout_s)
        if not kinds:
            return [], []
        return sorted(set(kinds)), await pending()
