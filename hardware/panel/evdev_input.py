"""Opening and holding a keypad or touch panel through evdev (the device layer, not the decoding).

Like the wedge readers (`hardware.readers.wedge`): a device is named by its input-device name or a
stable `/dev/input/by-id` / `by-path` link, never `/dev/input/eventN`; it is grabbed for as long
as it is open, so PIN digits never reach a console and taps never reach a desktop; it is reopened
with back-off (`hardware.readers.reconnect.Reconnector`) after an unplug. `EvdevSource.events()`
hands out plain `KeyEvent` tuples for the pure decoders.
"""

from __future__ import annotations

import contextlib
import re
import select
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from hardware.panel.errors import InputDeviceLostError
from hardware.readers.errors import ReaderDisconnectedError
from hardware.readers.reconnect import Reconnector
from hardware.readers.wedge import InputEventLike
from hardware.readers.wedge_decoder import KeyEvent

__all__ = ["EV_ABS", "EV_KEY", "EvdevSource", "InputDeviceLike", "check_device_spec"]

EV_KEY, EV_ABS = 0x01, 0x03
_STABLE_DIRS = ("/dev/input/by-id/", "/dev/input/by-path/")
_EVENT_N = re.compile(r"^/dev/input/event\d+$")


class InputDeviceLike(Protocol):
    """The part of `evdev.InputDevice` the keypad and touch panel use (a test passes a fake)."""

    def fileno(self) -> int: ...
    def read(self) -> Iterator[InputEventLike]: ...
    def grab_context(self) -> AbstractContextManager[None]: ...
    def close(self) -> None: ...


def check_device_spec(spec: str, what: str) -> None:
    """Refuse a device spec that is not stable across boots; raises ValueError."""
    if not spec.strip():
        raise ValueError(f"the {what} device must be named")
    if spec.startswith("/") and not spec.startswith(_STABLE_DIRS):
        hint = " (eventN numbers change between boots)" if _EVENT_N.match(spec) else ""
        raise ValueError(
            f"name the {what} by its device name or a /dev/input/by-id or by-path link" + hint
        )


def open_input_device(spec: str, what: str, needs: int) -> InputDeviceLike:
    """Open the evdev device `spec` (a name, or a by-id / by-path link) that reports `needs`
    (EV_KEY for a keypad, EV_ABS for a touch panel).

    Raises:
        OSError: no such device now (FileNotFoundError), or it cannot be opened.
    """
    import evdev  # noqa: PLC0415  (evdev is Linux-only and in the station extra)

    check_device_spec(spec, what)
    if spec.startswith("/"):
        return evdev.InputDevice(spec)
    for path in evdev.list_devices():
        try:
            device = evdev.InputDevice(path)
        except OSError:
            continue  # vanished, or not ours to open: keep looking
        # One USB device can expose several interfaces under one name; take the one that fits.
        if device.name == spec and needs in device.capabilities():
            return device
        device.close()
    raise FileNotFoundError(f"no input device named {spec!r}")


class _Grabbed:
    """An open device and the grab held on it."""

    def __init__(self, device: InputDeviceLike) -> None:
        self.device = device
        self._stack = contextlib.ExitStack()
        try:
            self._stack.enter_context(device.grab_context())
        except OSError:
            device.close()
            raise

    def close(self) -> None:
        # Ungrabbing an unplugged device fails with ENODEV: it is released anyway.
        with contextlib.suppress(OSError):
            self._stack.close()
        self.device.close()


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
        self._link: Reconnector[_Grabbed] = Reconnector(
            describe,
            lambda: _Grabbed(opener()),
            _Grabbed.close,
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
