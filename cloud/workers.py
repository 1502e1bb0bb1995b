"""Several worker processes behind one listening socket: `pullprint cloud serve --workers N`.

One Python process runs its Python code on one core at a time (the interpreter lock), and a
badge tap is mostly Python (HTTP, validation, signature check, SQL statements). On a 2-core
machine a second worker doubles what the cloud can answer; replicas on other machines are the
same idea across hosts (DESIGN.md: "any number of stateless API replicas").

How it works:

* the parent migrates the database once, prepares TLS, binds the socket, then forks the
  workers before it has started any thread or opened any pooled connection. The socket is made
  with `IPPROTO_TCP` so asyncio sets TCP_NODELAY on the connections it accepts (without it,
  Nagle meets the client's delayed ACK: about 40 ms per keep-alive request);
* each worker builds its own application (engine, pool, event bus) and serves the shared
  socket; the kernel hands each new connection to one of them;
* worker 0 runs the sweeper. A worker that dies is started again with its index (so the sweeper
  comes back); workers that keep dying at start (more than `_MAX_QUICK_FAILURES` in a row, each
  within `_START_GRACE_S`) stop the server rather than fork forever;
* SIGTERM or SIGINT to the parent stops the workers gracefully (uvicorn's own handling).

On SQLite the workers share one database file: writers queue on a lock file
(`cloud.context.SqliteWriteLock`), and wake-ups (a release for a station long-polling another
worker) travel on unix datagram sockets (`cloud.events.SocketEventBus`). On PostgreSQL nothing
changes: row locks and LISTEN/NOTIFY already work across processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

import uvicorn
from sqlalchemy import Engine

from cloud.app import create_app
from cloud.config import CloudConfig
from cloud.errors import ConfigError, WorkerStartError
from cloud.events import EventBus, SocketEventBus, open_event_bus
from cloud.server import CertificateRotator, prepare_tls, uvicorn_config
from cloud.service import CloudService
from cloud.tls import ServerCertificates

log = logging.getLogger(__name__)

MAX_WORKERS = 64
# A worker that exits this soon after it started counts as failing to start.
_START_GRACE_S = 10.0
_MAX_QUICK_FAILURES = 5


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A bound, listening TCP socket that the workers inherit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _event_bus(config: CloudConfig, index: int, workers: int) -> Callable[[Engine], EventBus]:
    def make(engine: Engine) -> EventBus:
        if engine.dialect.name == "sqlite":
            return SocketEventBus(config.database_url, index, workers)
        return open_event_bus(engine)

    return make


def _run_worker(
    config: CloudConfig,
    sock: socket.socket,
    index: int,
    workers: int,
    certificates: ServerCertificates | None,
) -> None:
    """One worker's life: its own application on the inherited socket, until told to stop."""
    app = create_app(config, run_sweeper=index == 0, events=_event_bus(config, index, workers))
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(uvicorn_config(app, host, port, certificates))
    # Each worker serves TLS with contexts of its own, so each follows rotations itself
    # (`ServerCertificates` serialises renewals on a lock file).
    rotator = CertificateRotator(certificates) if certificates is not None else None
    if rotator is not None:
        rotator.start()
    try:
        server.run(sockets=[sock])
    finally:
        if rotator is not None:
            rotator.stop()


def serve_workers(config: CloudConfig, host: str, port: int, workers: int) -> None:
    """Serve the cloud from `workers` processes until SIGTERM or SIGINT (blocking).

    Raises:
        ConfigError: `workers` out of range.
        TlsCertificateError: TLS is configured and the certificate cannot be served.
        WorkerStartError: the workers keep failing at start.
    """
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"--workers must be between 1 and {MAX_WORKERS}")
    # Migrations and the default site, once, before any worker exists to race on them.
    CloudService.open(config).close()
    certificates = prepare_tls(config)
    sock = listening_socket(host, port)
    children: dict[int, int] = {}  # pid -> worker index
    started: dict[int, float] = {}  # worker index -> when it was (re)started
    stopping = False

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _run_worker(config, sock, index, workers, certificates)
                code = 0
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                os._exit(code)
        children[pid] = index
        started[index] = time.monotonic()

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    quick_failures = 0
    try:
        for index in range(workers):
            spawn(index)
        log.info("serving on %s:%d with %d workers", host, sock.getsockname()[1], workers)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index_or_none = children.pop(pid, None)
            if index_or_none is None or stopping:
                continue
            index = index_or_none
            code = os.waitstatus_to_exitcode(status)
            if time.monotonic() - started[index] < _START_GRACE_S:
                quick_failures += 1
            else:
                quick_failures = 0  # a worker that ran a while is a crash, not a failing start
            if quick_failures > _MAX_QUICK_FAILURES:
                stop(signal.SIGTERM, None)
                raise WorkerStartError(
                    f"workers keep exiting at start (worker {index}: exit code {code}); "
                    "see the log above"
                )
            log.error("worker %d (pid %d) exited with %d; starting it again", index, pid, code)
            spawn(index)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        # Whatever happened, no worker outlives the parent.
        for pid in list(children):
            with contextlib.suppress(ChildProcessError, ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
        sock.close()
