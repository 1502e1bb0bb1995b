"""Opening and holding a keypad or touch panel through evdev (the device layer, not the decoding).

Like the wedge readers (`hardware.readers.wedge`): a device is named by its input-device name or a
stable `/dev/input/by-id` / `by-path` link, never `/dev/input/eventN`; it is grabbed for as long
as it is open, so PIN digits never reach a console and taps never reach a desktop; it is reopened
with back-off (`hardware.readers.reconnect.Reconnector`) after an unplug. `EvdevSource.events()`
hands out plain `KeyEvent` tuples for the pure decoders.
"""

from __future__ import annotations

import contextlib
import select
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from hardware import evdev_device
from hardware.evdev_device import EV_ABS, EV_KEY, Grabbed, check_device_spec
from hardware.panel.errors import InputDeviceLostError
from hardware.readers.errors import ReaderDisconnectedError
from hardware.readers.reconnect import Reconnector
from hardware.readers.wedge import InputEventLike
from hardware.readers.wedge_decoder import KeyEvent

__all__ = ["EV_ABS", "EV_KEY", "EvdevSource", "InputDeviceLike", "check_device_spec"]


class InputDeviceLike(Protocol):
    """The part of `evdev.InputDevice` the keypad and touch panel use (a test passes a fake)."""

    def fileno(self) -> int: ...
    def read(self) -> Iterator[InputEventLike]: ...
    def grab_context(self) -> AbstractContextManager[None]: ...
    def close(self) -> None: ...


def open_input_device(spec: str, what: str, needs: int) -> InputDeviceLike:
    """Open the evdev device `spec` that reports `needs` (EV_KEY for a keypad, EV_ABS for a
    touch panel); see `hardware.evdev_device`.

    Raises:
        OSError: no such device now (FileNotFoundError), or it cannot be opened.
    """
    device: InputDeviceLike = evdev_device.open_input_device(spec, what, needs)
    return device


class EvdevSource:
    """One grabbed input device, reopened after an unplug; yields raw events.

    Args:
        describe: what it is, for logs ("keypad 'USB Keypad'").
        opener: opens the device.
        reopen_min_s, reopen_max_s: back-off between attempts to reopen a lost device.
    """

    def __init__(
        self,
        describe: str,
        opener: Callable[[], InputDeviceLike],
        *,
        reopen_min_s: float = 0.25,
        reopen_max_s: float = 5.0,
    ) -> None:
        self._link: Reconnector[Grabbed[InputDeviceLike]] = Reconnector(
            describe,
            lambda: Grabbed(opener()),
            Grabbed.close,
            min_s=reopen_min_s,
            max_s=reopen_max_s,
        )
        # Grab at start when the device is there, so input is private from the first key.
        self._link.try_open()

    @property
    def connected(self) -> bool:
        """True while the device is open and grabbed."""
        return self._link.connected

    def device(self, timeout_s: float | None = None) -> InputDeviceLike:
        """The open device, waiting up to `timeout_s` for the back-off to allow a reopen.

        Raises:
            InputDeviceLostError: it is not there.
        """
        try:
            return self._link.device(timeout_s).device
        except ReaderDisconnectedError as exc:
            raise InputDeviceLostError(str(exc)) from exc

    def events(self, timeout_s: float | None) -> list[KeyEvent]:
        """The events that arrive within `timeout_s` (None: wait for some); [] if none did.

        Raises:
            InputDeviceLostError: the device is gone (it is reopened later, with back-off).
        """
        device = self.device(timeout_s)
        events: list[KeyEvent] = []
        try:
            ready, _, _ = select.select([device.fileno()], [], [], timeout_s)
            if ready:
                with contextlib.suppress(BlockingIOError):  # the queue is empty: all read
                    for event in device.read():
                        events.append(
                            KeyEvent(event.type, event.code, event.value, event.timestamp())
                        )
        except (OSError, ValueError) as exc:  # ValueError: the fd was closed under us
            lost = self._link.lost(exc)
            raise InputDeviceLostError(str(lost)) from exc
        return events

    def close(self) -> None:
        """Ungrab and close the device."""
        self._link.close()
