"""Server processes for tests and benchmarks: started on loopback, awaited, stopped by PID.

The private PostgreSQL, moto S3, cupsd, snmpsim and ippeveprinter helpers all start a server as a
child process with its output in a log file, poll until it answers, and stop it by PID (a signal,
then SIGKILL after a grace period). A child that exits or stays silent fails with an error that
names the server and its log and shows the log's end, so a failed start says why.

Invariants: only the child this object started is ever signalled (never a name-based kill); the
log file is opened in append mode, so a restart adds to it instead of hiding the first run.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

_LOG_TAIL_CHARS = 6000


class ProcessStartError(RuntimeError):
    """A server process exited during its start, or did not answer in time."""


def free_tcp_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port() -> int:
    """A UDP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(
    process: subprocess.Popen[bytes] | None,
    *,
    sig: signal.Signals = signal.SIGTERM,
    timeout_s: float = 15.0,
) -> None:
    """Stop one child by PID: `sig`, then SIGKILL if it is still running after `timeout_s`."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class ServerProcess:
    """One server child: its log file, a start that waits until it answers, a stop by PID.

    Args:
        name: how errors name the server ("postgres", "the moto S3 server" ...).
        log_path: where its stdout and stderr go (appended), or None to discard them.
        error: the exception type a failed start raises (a helper's own RuntimeError subclass).
    """

    def __init__(
        self,
        name: str,
        log_path: Path | None,
        *,
        error: type[Exception] = ProcessStartError,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._error = error
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """True while the child started last is alive."""
        return self.process is not None and self.process.poll() is None

    def start(
        self,
        args: Sequence[str],
        *,
        ready: Callable[[], bool],
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        interval_s: float = 0.05,
        log: Callable[[], str] | None = None,
    ) -> None:
        """Spawn `args` and poll `ready` until it is true.

        Args:
            ready: answers True once the server serves (it catches its own "not yet" errors).
            log: what a failure shows (default: the end of `log_path`).

        Raises:
            the `error` type: the child exited, or `ready` stayed false for `timeout_s`.
        """
        self.spawn(args, env=env, user=user)
        self.wait_until(ready, timeout_s, interval_s=interval_s, log=log)

    def spawn(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> None:
        """Spawn `args` without waiting (several servers can then start side by side)."""
        if self.log_path is None:
            self.process = subprocess.Popen(  # noqa: S603 - a server program, our arguments
                list(args),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                user=user,
            )
            return
        with self.log_path.open("ab") as out:  # the child keeps its own copy of the fd
            self.process = subprocess.Popen(  # noqa: S603 - a server program, our arguments
                list(args), stdout=out, stderr=out, env=env, user=user
            )

    def wait_until(
        self,
        ready: Callable[[], bool],
        timeout_s: float,
        *,
        interval_s: float = 0.05,
        log: Callable[[], str] | None = None,
    ) -> None:
        """Poll `ready` until true; fail as `start` does if the child exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        while not ready():
            process = self.process
            if process is not None and process.poll() is not None:
                raise self._error(
                    f"{self.name} exited with {process.returncode}{self._log_note(log)}"
                )
            if time.monotonic() > deadline:
                raise self._error(
                    f"{self.name} did not answer within {timeout_s:g} s{self._log_note(log)}"
                )
            time.sleep(interval_s)

    def stop(self, *, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 15.0) -> None:
        """Stop the child by PID (`sig`, then SIGKILL); nothing if it is not running."""
        process, self.process = self.process, None
        stop_process(process, sig=sig, timeout_s=timeout_s)

    def kill(self) -> None:
        """SIGKILL the child (a crash, for fault tests) and reap it."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(15)

    def log_tail(self, chars: int = _LOG_TAIL_CHARS) -> str:
        """The end of the log file ("(no log)" when there is none)."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-chars:]

    def _log_note(self, log: Callable[[], str] | None) -> str:
        where = f" (log: {self.log_path})" if self.log_path is not None else ""
        return f"{where}:\n{log() if log is not None else self.log_tail()}"


class ServerProcessContext:
    """`with helper:` for a server helper with `start()` and `stop()`.

    A start that fails half-way (the child spawned but never answered) is stopped before the
    error propagates, so no server outlives a failed `with`.
    """

    def start(self) -> None:
        """Start the server and return once it answers."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server by PID."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
