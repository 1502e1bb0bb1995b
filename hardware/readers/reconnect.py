"""Keeping a reader device open: reopen with back-off after it disappears (USB unplug).

A USB reader can be unplugged, re-enumerate after a hub reset, or not be there yet at boot. The
reader classes hold their device through a `Reconnector`, which:

* opens it on demand and, after a failure, not again before a back-off delay (doubling from
  `min_s` to `max_s`), so a missing device costs neither CPU nor a flood of log lines;
* raises `ReaderDisconnectedError` from `device()` while the device is missing, after waiting at
  most the caller's timeout, so the station can show that the reader is gone (and never busy-waits);
* logs the first failure at WARNING, the repeats at DEBUG, and the recovery at INFO (STYLE 10).

It never logs what a device sent: it does not see it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from hardware.readers.errors import ReaderDisconnectedError

__all__ = ["Reconnector"]

logger = logging.getLogger(__name__)

DeviceT = TypeVar("DeviceT")


class Reconnector(Generic[DeviceT]):
    """Holds one open device, reopening it with back-off; thread-safe."""

    def __init__(
        self,
        describe: str,
        open_device: Callable[[], DeviceT],
        close_device: Callable[[DeviceT], None],
        *,
        min_s: float = 0.25,
        max_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError("back-off needs 0 < min_s <= max_s")
        self._describe = describe
        self._open = open_device
        self._close = close_device
        self._min_s = min_s
        self._max_s = max_s
        self._clock = clock
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._device: DeviceT | None = None
        self._delay_s = min_s
        self._next_attempt = clock()
        self._failing = False

    @property
    def connected(self) -> bool:
        """True while the device is open."""
        return self._device is not None

    def try_open(self) -> bool:
        """Open the device now, whatever the back-off says; False (and logged) if it is missing."""
        with self._lock:
            self._next_attempt = self._clock()
        try:
            self.device(timeout_s=0)
        except ReaderDisconnectedError:
            return False
        return True

    def device(self, timeout_s: float | None = None) -> DeviceT:
        """The open device, opening it when the back-off allows within `timeout_s`.

        Raises:
            ReaderDisconnectedError: the device is missing, or the reader was closed.
        """
        with self._lock:
            if self._device is not None:
                return self._device
            wait_s = max(0.0, self._next_attempt - self._clock())
        if self._stopped.is_set():
            raise ReaderDisconnectedError(f"{self._describe} is closed")
        if timeout_s is not None and wait_s > timeout_s:
            self._stopped.wait(timeout_s)
            raise ReaderDisconnectedError(f"{self._describe} is not connected")
        if wait_s and self._stopped.wait(wait_s):
            raise ReaderDisconnectedError(f"{self._describe} is closed")
        with self._lock:
            current = self._current()
            if current is not None:  # another thread opened it while we waited
                return current
            try:
                device = self._open()
            except OSError as exc:
                self._schedule_retry(exc)
                raise ReaderDisconnectedError(f"{self._describe} is not connected") from exc
            if self._failing:
                logger.info("%s is connected again", self._describe)
            self._failing = False
            self._delay_s = self._min_s
            self._device = device
            return device

    def _current(self) -> DeviceT | None:
        return self._device

    def lost(self, exc: BaseException) -> ReaderDisconnectedError:
        """Record that the open device failed: close it and return the error to raise."""
        with self._lock:
            device, self._device = self._device, None
            if device is not None:
                self._close_quietly(device)
            self._schedule_retry(exc)
        return ReaderDisconnectedError(f"{self._describe} was disconnected")

    def close(self) -> None:
        """Close the device and stop reopening it; wakes any caller waiting in `device()`."""
        self._stopped.set()
        with self._lock:
            device, self._device = self._device, None
            if device is not None:
                self._close_quietly(device)

    def _schedule_retry(self, exc: BaseException) -> None:
        # Called with the lock held.
        level = logging.DEBUG if self._failing else logging.WARNING
        # exc's text is an OS error about a device path, never what the device sent.
        logger.log(
            level, "%s unavailable (retrying in %.1f s): %s", self._describe, self._delay_s, exc
        )
        self._failing = True
        self._next_attempt = self._clock() + self._delay_s
        self._delay_s = min(self._delay_s * 2, self._max_s)

    def _close_quietly(self, device: DeviceT) -> None:
        try:
            self._close(device)
        except OSError:
            logger.debug("%s: error closing a device that is already gone", self._describe)
