"""Keyboard-wedge badge readers through evdev: the thin device layer over `wedge_decoder`.

The reader is found by its input-device name (as `evdev` reports it, e.g. "RFIDeas USB
Keyboard") or by a stable `/dev/input/by-id/...-event-kbd` (or `by-path`) link, never by
`/dev/input/eventN`, whose number changes between boots and plug-ins. It is grabbed
(`EVIOCGRAB`) for as long as it is open, so a badge number never reaches a console, a login
prompt or another application as typed text.

Everything that decides what the keys mean lives in `wedge_decoder` (pure, tested on synthetic
event streams: CI machines have no /dev/uinput) and `text` (the reader's output format). This
module only waits on the file descriptor, hands events over, ends frames after a silent gap, and
reopens the device after an unplug.

A frame that does not parse is logged (that one was dropped, never its text) and reported by
`read()` as `CardUnreadableError` (one per frame); frames typed after it stay queued for the next
`read()`.
"""

from __future__ import annotations

import collections
import logging
import select
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from hardware import evdev_device
from hardware.evdev_device import Grabbed
from hardware.readers.base import Credential
from hardware.readers.errors import CardFormatError
from hardware.readers.reconnect import Reconnector
from hardware.readers.text import ReaderFormat, parse_reader_text
from hardware.readers.wedge_decoder import KeyEvent, WedgeDecoder

__all__ = ["InputDeviceLike", "InputEventLike", "WedgeCardReader", "open_input_device"]

logger = logging.getLogger(__name__)


class InputEventLike(Protocol):
    """The part of `evdev.InputEvent` the reader uses."""

    @property
    def type(self) -> int: ...
    @property
    def code(self) -> int: ...
    @property
    def value(self) -> int: ...
    def timestamp(self) -> float: ...


class InputDeviceLike(Protocol):
    """The part of `evdev.InputDevice` the reader uses (a test passes a fake)."""

    def fileno(self) -> int: ...
    def read(self) -> Iterator[InputEventLike]: ...
    def grab_context(self) -> AbstractContextManager[None]: ...
    def close(self) -> None: ...


def check_device_spec(spec: str) -> None:
    """Refuse a device spec that is not stable across boots; raises ValueError."""
    evdev_device.check_device_spec(spec, "wedge reader")


def open_input_device(spec: str) -> InputDeviceLike:
    """Open the keyboard-type evdev device named `spec` (a name, or a by-id / by-path link).

    Raises:
        OSError: no such device now (FileNotFoundError), or it cannot be opened.
    """
    device: InputDeviceLike = evdev_device.open_input_device(
        spec, "wedge reader", evdev_device.EV_KEY
    )
    return device


class WedgeCardReader:
    """A `CardReader` for a USB keyboard-wedge reader, grabbed so keystrokes stay private.

    Args:
        device: the input-device name or a `/dev/input/by-id` / `by-path` link (not eventN).
        fmt: how the reader prints badges (hex, decimal, facility:number, parity, ...).
        gap_s: a pause longer than this ends a frame (readers set up without Enter).
        opener: opens the device; defaults to evdev (tests pass a fake).
        reopen_min_s, reopen_max_s: the back-off between attempts to reopen a lost device.
    """

    def __init__(
        self,
        device: str,
        fmt: ReaderFormat,
        *,
        gap_s: float = 0.15,
        opener: Callable[[], InputDeviceLike] | None = None,
        reopen_min_s: float = 0.25,
        reopen_max_s: float = 5.0,
    ) -> None:
        check_device_spec(device)
        self.fmt = fmt
        self._decoder = WedgeDecoder(gap_s)
        self._frames: collections.deque[str] = collections.deque()
        self._last_key_at = 0.0
        open_device = opener if opener is not None else (lambda: open_input_device(device))
        self._link: Reconnector[Grabbed[InputDeviceLike]] = Reconnector(
            f"wedge reader {device!r}",
            lambda: Grabbed(open_device()),
            Grabbed.close,
            min_s=reopen_min_s,
            max_s=reopen_max_s,
        )
        # Grab now if the reader is there, so keystrokes are private from start-up on; a missing
        # reader is not an error yet (read() reports it and keeps retrying).
        self._link.try_open()

    @property
    def connected(self) -> bool:
        """True while the device is open and grabbed."""
        return self._link.connected

    def read(self, timeout_s: float | None = None) -> Credential | None:
        """Wait up to `timeout_s` (None: forever) for a badge; None if none came in time.

        Raises:
            CardUnreadableError: a frame was typed that is not a badge in this format.
            ReaderDisconnectedError: the reader is unplugged (it is reopened with back-off).
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if self._frames:
                return self._parse(self._frames.popleft())
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            grabbed = self._link.device(remaining)
            if self._decoder.pending:
                # Wake up when the gap would end the frame, even if no key comes.
                gap_left = max(0.0, self._last_key_at + self._decoder.gap_s - time.monotonic())
                remaining = gap_left if remaining is None else min(remaining, gap_left)
            try:
                ready, _, _ = select.select([grabbed.device.fileno()], [], [], remaining)
                if ready:
                    self._drain(grabbed.device)
            except (OSError, ValueError) as exc:  # ValueError: the fd was closed under us
                self._decoder.reset()
                raise self._link.lost(exc) from exc
            if (
                self._decoder.pending
                and time.monotonic() - self._last_key_at >= self._decoder.gap_s
            ):
                tail = self._decoder.flush()
                if tail is not None:
                    self._frames.append(tail)
            if not self._frames and deadline is not None and time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        """Ungrab and close the device."""
        self._link.close()

    def _drain(self, device: InputDeviceLike) -> None:
        try:
            for event in device.read():
                self._frames.extend(
                    self._decoder.feed(
                        KeyEvent(event.type, event.code, event.value, event.timestamp())
                    )
                )
        except BlockingIOError:
            pass  # evdev raises it when the queue is empty: everything was read
        self._last_key_at = time.monotonic()

    def _parse(self, text: str) -> Credential:
        try:
            return parse_reader_text(text, self.fmt)
        except CardFormatError as exc:
            # exc never contains the text; the text itself is a card number and is not logged.
            logger.warning("wedge reader: dropped a badge that did not parse: %s", exc)
            raise
