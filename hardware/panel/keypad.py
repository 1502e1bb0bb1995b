"""A USB keypad through evdev: the `Keypad` port over `keypad_decoder`.

The keypad is grabbed while open (PIN digits must never be typed into a console or another
program) and reopened after an unplug. Digits are never logged.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Mapping

from hardware.panel.errors import InputDeviceLostError
from hardware.panel.evdev_input import EV_KEY, EvdevSource, InputDeviceLike, check_device_spec
from hardware.panel.evdev_input import open_input_device as _open
from hardware.panel.keypad_decoder import KeypadDecoder, KeypadEvent, KeypadKey

__all__ = ["EvdevKeypad"]


class EvdevKeypad:
    """A `Keypad` on a USB numeric keypad (or any keyboard).

    Args:
        device: the input-device name or a `/dev/input/by-id` / `by-path` link (not eventN).
        extra_keys: more key codes for BACKSPACE / ENTER / ESCAPE (keypads without Esc).
        keyboard: a full keyboard: letters and email symbols are decoded too (email + PIN).
        opener: opens the device; defaults to evdev (tests pass a fake).
        reopen_min_s, reopen_max_s: the back-off between attempts to reopen a lost keypad.
    """

    def __init__(
        self,
        device: str,
        *,
        extra_keys: Mapping[int, KeypadKey] | None = None,
        keyboard: bool = False,
        opener: Callable[[], InputDeviceLike] | None = None,
        reopen_min_s: float = 0.25,
        reopen_max_s: float = 5.0,
    ) -> None:
        check_device_spec(device, "keypad")
        self._decoder = KeypadDecoder(extra_keys, keyboard=keyboard)
        self.keyboard = keyboard
        self._pending: collections.deque[KeypadEvent] = collections.deque()
        open_device = opener if opener is not None else (lambda: _open(device, "keypad", EV_KEY))
        self._source = EvdevSource(
            f"keypad {device!r}",
            open_device,
            reopen_min_s=reopen_min_s,
            reopen_max_s=reopen_max_s,
        )

    @property
    def connected(self) -> bool:
        """True while the keypad is open and grabbed."""
        return self._source.connected

    def read(self, timeout_s: float | None = None) -> KeypadEvent | None:
        """Wait up to `timeout_s` (None: forever) for a key; None if none came in time.

        Raises:
            InputDeviceLostError: the keypad is unplugged (it is reopened with back-off).
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._pending:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                events = self._source.events(remaining)
            except InputDeviceLostError:
                self._decoder.reset()  # the key-ups of a held Shift went with the device
                raise
            self._pending.extend(self._decoder.feed_all(events))
            if not self._pending and deadline is not None and time.monotonic() >= deadline:
                return None
        return self._pending.popleft()

    def close(self) -> None:
        """Ungrab and close the keypad."""
        self._source.close()
