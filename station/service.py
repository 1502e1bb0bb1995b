"""Talking to systemd: readiness, watchdog keep-alives and status lines (sd_notify protocol).

The station runs as a `Type=notify` service with `WatchdogSec=` (images/rootfs). systemd then
expects `READY=1` once the station can serve a badge tap, and `WATCHDOG=1` at least every
`WATCHDOG_USEC` while it is healthy; when the keep-alives stop, systemd restarts it. The protocol
is one datagram of newline-separated `KEY=value` fields to the unix socket named by
`NOTIFY_SOCKET` (an initial "@" means the abstract namespace). It is small enough that writing it
here beats a dependency (sd_notify(3); the `sdnotify` package does the same in 60 lines).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

logger = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends sd_notify messages; every method is a no-op when not run by systemd."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = None
        if path.startswith("@"):
            self._address = b"\0" + path[1:].encode()
        elif path.startswith("/"):
            self._address = path
        # Keep-alives are only wanted by our own process (WATCHDOG_PID), at half the interval.
        self.watchdog_interval_s: float | None = None
        usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
        if usec and usec.isdigit() and (pid is None or pid == str(os.getpid())):
            self.watchdog_interval_s = int(usec) / 1_000_000 / 2
        self._last_watchdog = 0.0
        self._socket: socket.socket | None = None
        if self._address is not None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    @property
    def enabled(self) -> bool:
        """Whether systemd is listening."""
        return self._socket is not None

    def notify(self, *fields: str) -> None:
        """Send one message; a failure is logged, never raised (the station keeps working)."""
        if self._socket is None or self._address is None:
            return
        try:
            self._socket.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            logger.warning("sd_notify failed: %s", exc)

    def ready(self, status: str = "Ready") -> None:
        """The station can serve a badge tap."""
        self.notify("READY=1", f"STATUS={status}")

    def status(self, text: str) -> None:
        """A one-line status shown by `systemctl status`."""
        self.notify(f"STATUS={text}")

    def watchdog(self, now: float | None = None) -> None:
        """A keep-alive, sent at most every half watchdog interval."""
        if self.watchdog_interval_s is None:
            return
        now = time.monotonic() if now is None else now
        if now - self._last_watchdog >= self.watchdog_interval_s:
            self._last_watchdog = now
            self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        """The station is shutting down on purpose."""
        self.notify("STOPPING=1", "STATUS=Stopping")

    def close(self) -> None:
        """Release the socket."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
