"""What the updater restarts and watches: the `ServiceManager` port, systemd, and a twin.

A health check needs two facts about the station service: has it said `READY=1` (sd_notify), and
how many times has it been restarted since we restarted it. `SystemdService` reads them from
systemd (`ActiveState`, `NRestarts`); `ProcessService` is a small supervisor speaking the same
sd_notify protocol to a child process (a datagram socket in `NOTIFY_SOCKET`, restart on failure),
so tests and a developer's laptop run the real station program through the real health check
without systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceProbe:
    """One look at the service."""

    ready: bool  # running and has said READY=1
    restarts: int  # restarts since the manager began counting (monotonic)
    failed: bool  # given up on (systemd's `failed` state)
    detail: str = ""


class ServiceManager(Protocol):
    """Restart the station service and look at it."""

    def restart(self) -> None:
        """Restart the service (returns at once; `probe` tells how it goes)."""

    def probe(self) -> ServiceProbe:
        """The service now."""


class SystemdService:
    """The station's systemd unit, through `systemctl`."""

    def __init__(self, unit: str = "pullprint-station.service", systemctl: str = "systemctl"):
        self.unit = unit
        self._systemctl = systemctl
        self._old_pid: str | None = None

    def restart(self) -> None:
        """`systemctl restart --no-block UNIT` (remembering the process it replaces)."""
        self._old_pid = self._show().get("MainPID")
        self._run("restart", "--no-block", self.unit)

    def probe(self) -> ServiceProbe:
        """`systemctl show`: ActiveState `active` means READY=1 arrived (Type=notify).

        Not ready while the process running at `restart` is still the main one: with --no-block
        the old version may answer for a moment after the restart was asked for.
        """
        props = self._show()
        active = props.get("ActiveState", "")
        replaced = self._old_pid in (None, "0") or props.get("MainPID") != self._old_pid
        try:
            restarts = int(props.get("NRestarts", "0"))
        except ValueError:
            restarts = 0
        return ServiceProbe(
            ready=active == "active" and props.get("SubState") == "running" and replaced,
            restarts=restarts,
            failed=active == "failed",
            detail=f"{active}/{props.get('SubState', '')} result={props.get('Result', '')}",
        )

    def _show(self) -> dict[str, str]:
        props = "--property=ActiveState,SubState,NRestarts,Result,MainPID"
        out = self._run("show", self.unit, props)
        return dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)

    def _run(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603 - systemctl with our own arguments
            [self._systemctl, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            raise OSError(f"systemctl {args[0]} failed: {done.stderr.strip()}")
        return done.stdout


class ProcessService:
    """A supervisor of one child process, systemd-style: Type=notify, Restart=on-failure.

    Args:
        argv: the command (resolved when started, so a switched `current` link takes effect on
            the next restart, as with systemd).
        env: extra environment for the child.
        restart_s: the pause before restarting a child that exited non-zero (RestartSec=).
    """

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        restart_s: float = 0.2,
    ) -> None:
        self._argv = list(argv)
        self._env = dict(env or {})
        self._restart_s = restart_s
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._restarts = 0
        self._generation = 0
        self._stopped = threading.Event()
        self._dir = Path(tempfile.mkdtemp(prefix="pullprint-notify-"))
        self._sock_path = self._dir / "notify"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self._sock_path))
        self._sock.settimeout(0.2)
        self._listener = threading.Thread(target=self._listen, name="notify", daemon=True)
        self._listener.start()
        self.messages: list[str] = []  # every notification received (observable in tests)

    def restart(self) -> None:
        """Stop the child (if any) and start a new one."""
        with self._lock:
            self._generation += 1
            self._kill_locked()
            self._start_locked(self._generation)

    def probe(self) -> ServiceProbe:
        """Ready once the current child said READY=1 and is still running."""
        with self._lock:
            child = self._child
            running = child is not None and child.poll() is None
            return ServiceProbe(
                ready=self._ready and running,
                restarts=self._restarts,
                failed=False,
                detail="running" if running else "not running",
            )

    def stop(self) -> None:
        """Stop the child and the listener."""
        self._stopped.set()
        with self._lock:
            self._generation += 1
            self._kill_locked()
        self._listener.join(timeout=2)
        self._sock.close()
        self._sock_path.unlink(missing_ok=True)
        self._dir.rmdir()

    def _start_locked(self, generation: int) -> None:
        env = {**os.environ, **self._env, "NOTIFY_SOCKET": str(self._sock_path)}
        self._ready = False
        try:
            child = subprocess.Popen(  # noqa: S603 - the station's own program
                self._argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        except OSError as exc:
            log.warning("cannot start %s: %s", self._argv[0], exc)
            self._child = None
            self._schedule_restart(generation)
            return
        self._child = child
        threading.Thread(target=self._reap, args=(child, generation), daemon=True).start()

    def _reap(self, child: subprocess.Popen[bytes], generation: int) -> None:
        code = child.wait()
        with self._lock:
            if generation != self._generation or self._stopped.is_set():
                return
            self._ready = False
        if code != 0:
            self._schedule_restart(generation)

    def _schedule_restart(self, generation: int) -> None:
        def again() -> None:
            time.sleep(self._restart_s)
            with self._lock:
                if generation != self._generation or self._stopped.is_set():
                    return
                self._restarts += 1
                self._start_locked(generation)

        threading.Thread(target=again, daemon=True).start()

    def _kill_locked(self) -> None:
        child, self._child, self._ready = self._child, None, False
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def _listen(self) -> None:
        while not self._stopped.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            text = data.decode("utf-8", "replace")
            with self._lock:
                self.messages.append(text)
                if "READY=1" in text.splitlines():
                    self._ready = True
