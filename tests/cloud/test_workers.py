"""`pullprint cloud serve --workers N` (cloud.workers): the pieces that cross processes.

The SQLite write lock and the socket event bus are tested here on their own; the workers as
real processes (sharing a port, restarted when killed, a release through one waking a station
that waits on another) in tests/e2e/test_workers.py.
"""

from __future__ import annotations

import multiprocessing
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from cloud.context import SqliteWriteLock
from cloud.errors import ConfigError
from cloud.events import SocketEventBus
from cloud.workers import listening_socket, serve_workers
from tests.cloud.conftest import make_config


def test_the_socket_bus_wakes_a_subscriber_in_another_worker() -> None:
    url = f"sqlite:////tmp/{uuid.uuid4().hex}.db"  # only names the socket family
    zero, one = SocketEventBus(url, 0, 2), SocketEventBus(url, 1, 2)
    try:
        with one.subscribe("station:a") as there, zero.subscribe("station:a") as here:
            zero.publish("station:a", "release")
            assert there.wait(5.0) == ["release"]
            assert here.wait(1.0) == ["release"]  # and in the publishing worker itself
        with zero.subscribe("station:b") as back:
            one.publish("station:b", "revoked")
            assert back.wait(5.0) == ["revoked"]
    finally:
        zero.close()
        one.close()


def test_the_socket_bus_ignores_garbage_and_other_clouds() -> None:
    url = f"sqlite:////tmp/{uuid.uuid4().hex}.db"
    other_url = f"sqlite:////tmp/{uuid.uuid4().hex}.db"
    mine, other = SocketEventBus(url, 0, 2), SocketEventBus(other_url, 1, 2)
    peer = SocketEventBus(url, 1, 2)
    try:
        with peer.subscribe("station:a") as sub, other.subscribe("station:a") as stranger:
            # A malformed datagram to the worker's address: dropped, the worker keeps listening.
            address = mine._peers[0]
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as raw:
                raw.sendto(b"\xff not json", address)
                raw.sendto(b'{"topic": 1}', address)
            mine.publish("station:a", "release")
            assert sub.wait(5.0) == ["release"]
            assert stranger.wait(0.3) == []  # another database: another family of sockets
    finally:
        for bus in (mine, other, peer):
            bus.close()
    # A closed bus's publish never raises, whoever is gone.
    mine.publish("station:a", "release")


def _hold(
    path: str, held: multiprocessing.synchronize.Event, released: multiprocessing.Queue[float]
) -> None:
    lock = SqliteWriteLock(Path(path))
    with lock:
        held.set()
        time.sleep(0.5)
        released.put(time.monotonic())


def test_the_sqlite_write_lock_is_held_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "cloud.db.writelock"
    context = multiprocessing.get_context("fork")
    held = context.Event()
    released: Any = context.Queue()
    child = context.Process(target=_hold, args=(str(path), held, released))
    child.start()
    try:
        assert held.wait(10), "the child never took the lock"
        lock = SqliteWriteLock(path)
        with lock:
            acquired = time.monotonic()
            with lock:  # re-entrant in one thread
                pass
        assert acquired >= released.get(timeout=10)
    finally:
        child.join(10)
    assert child.exitcode == 0


def test_workers_out_of_range_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="between 1 and"):
        serve_workers(make_config(tmp_path), "127.0.0.1", 0, 0)


def test_the_listening_socket_is_tcp_so_connections_get_nodelay() -> None:
    """asyncio sets TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP; a socket made
    as `socket.socket()` (protocol 0) would lose it, and cost ~40 ms per keep-alive request."""
    sock = listening_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.get_inheritable()
    finally:
        sock.close()
