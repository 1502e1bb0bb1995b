"""The background sweeper: runs `CloudService.sweep()` every `sweep_interval_s` in a thread.

A thread rather than an asyncio task because the sweep does blocking database and file work.
A sweep that keeps failing (database locked, disk gone) is logged once at WARNING, then at DEBUG
until a sweep succeeds again, so an outage does not flood the log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Sweeper:
    """Calls `sweep` every `interval_s` seconds until stopped."""

    def __init__(self, sweep: Callable[[], object], interval_s: float) -> None:
        self._sweep = sweep
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self.runs = 0

    @property
    def running(self) -> bool:
        """Whether the sweeper thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (the first sweep runs one interval from now)."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="pullprint-sweeper", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread, waiting for a sweep in progress to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def run_once(self) -> None:
        """One sweep, with the failure logging policy applied."""
        try:
            self._sweep()
        except Exception:
            if not self._failing:
                log.warning("sweep failed; retrying every %ss", self._interval_s, exc_info=True)
                self._failing = True
            else:
                log.debug("sweep still failing", exc_info=True)
        else:
            if self._failing:
                log.warning("sweep recovered")
                self._failing = False
        self.runs += 1

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.run_once()
