"""USB keypad decoding: Linux key events in, keypad events (digit, backspace, enter, escape) out.

A USB numeric keypad is a keyboard: it reports key codes through evdev. This module is pure, like
`hardware.readers.wedge_decoder`, and tested on synthetic event streams (CI has no /dev/uinput).

Rules:

* only EV_KEY key-downs (value 1) count; key-up and auto-repeat are ignored, so a finger resting on
  a key does not enter "1111";
* digits come from the keypad (KEY_KP0..KEY_KP9, whatever Num Lock says: the kernel sends the same
  codes, Num Lock is applied in user space) and from the top row (KEY_0..KEY_9);
* Backspace, Delete and the keypad's "." (labelled "Del" on most numeric keypads) erase a digit;
* Enter and keypad Enter submit; Esc cancels (keypads without Esc can map another key through
  `extra_keys`, e.g. KEY_KPMINUS);
* every other key is ignored (Num Lock, arrows, letters).

`DigitEntry` collects the digits of one PIN or passcode. Neither class keeps or logs digits beyond
what the entry holds, and `KeypadEvent` hides its digit from `repr`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from hardware.readers.wedge_decoder import EV_KEY, KEY_DOWN, KeyEvent

__all__ = [
    "DigitEntry",
    "EntryChange",
    "KeypadDecoder",
    "KeypadEvent",
    "KeypadKey",
]


class KeypadKey(enum.Enum):
    """The kinds of key a keypad has."""

    DIGIT = "digit"
    BACKSPACE = "backspace"
    ENTER = "enter"
    ESCAPE = "escape"


@dataclass(frozen=True, slots=True)
class KeypadEvent:
    """One key pressed; `digit` is "0".."9" for DIGIT and "" otherwise (hidden from repr)."""

    key: KeypadKey
    digit: str = field(default="", repr=False)


# linux/input-event-codes.h (a stable ABI); the tests check them against evdev.ecodes.
KEY_ESC, KEY_BACKSPACE, KEY_ENTER, KEY_KPENTER = 1, 14, 28, 96
KEY_KPDOT, KEY_DELETE = 83, 111
_TOP_ROW = dict(zip(range(2, 12), "1234567890", strict=True))  # KEY_1 .. KEY_0
_KEYPAD = dict(zip((79, 80, 81, 75, 76, 77, 71, 72, 73, 82), "1234567890", strict=True))

_DEFAULT_KEYS: dict[int, KeypadKey] = {
    KEY_ESC: KeypadKey.ESCAPE,
    KEY_BACKSPACE: KeypadKey.BACKSPACE,
    KEY_DELETE: KeypadKey.BACKSPACE,
    KEY_KPDOT: KeypadKey.BACKSPACE,
    KEY_ENTER: KeypadKey.ENTER,
    KEY_KPENTER: KeypadKey.ENTER,
}


class KeypadDecoder:
    """Turns key events into keypad events; stateless apart from its key map."""

    def __init__(self, extra_keys: Mapping[int, KeypadKey] | None = None) -> None:
        """`extra_keys` maps further key codes to BACKSPACE, ENTER or ESCAPE (not DIGIT)."""
        keys = dict(_DEFAULT_KEYS)
        for code, key in (extra_keys or {}).items():
            if key is KeypadKey.DIGIT:
                raise ValueError("extra_keys cannot add digits")
            keys[code] = key
        self._keys = keys

    def feed(self, event: KeyEvent) -> KeypadEvent | None:
        """Take one event; return the keypad event it makes, if any."""
        if event.type != EV_KEY or event.value != KEY_DOWN:
            return None
        digit = _KEYPAD.get(event.code) or _TOP_ROW.get(event.code)
        if digit is not None:
            return KeypadEvent(KeypadKey.DIGIT, digit)
        key = self._keys.get(event.code)
        return None if key is None else KeypadEvent(key)

    def feed_all(self, events: Iterable[KeyEvent]) -> list[KeypadEvent]:
        """Take several events; return the keypad events they make, in order."""
        return [out for out in map(self.feed, events) if out is not None]


EntryChange = Literal["typed", "erased", "submitted", "cancelled"]


class DigitEntry:
    """The digits of one PIN or passcode being typed.

    Digits past `max_digits` are ignored (the screen shows a full field); Enter with fewer than
    `min_digits` is ignored too, so a half-typed PIN is never sent to be counted as a failure.
    """

    def __init__(self, min_digits: int = 4, max_digits: int = 12) -> None:
        if not 0 < min_digits <= max_digits:
            raise ValueError("need 0 < min_digits <= max_digits")
        self.min_digits = min_digits
        self.max_digits = max_digits
        self._digits: list[str] = []

    def __repr__(self) -> str:
        return f"DigitEntry(length={len(self._digits)})"

    @property
    def length(self) -> int:
        """How many digits are typed (the screen shows this many dots)."""
        return len(self._digits)

    def feed(self, event: KeypadEvent) -> EntryChange | None:
        """Apply one key; return what changed, or None when the key did nothing."""
        if event.key is KeypadKey.DIGIT:
            if len(self._digits) >= self.max_digits:
                return None
            self._digits.append(event.digit)
            return "typed"
        if event.key is KeypadKey.BACKSPACE:
            if not self._digits:
                return None
            self._digits.pop()
            return "erased"
        if event.key is KeypadKey.ENTER:
            return "submitted" if len(self._digits) >= self.min_digits else None
        self._digits.clear()
        return "cancelled"

    def take(self) -> str:
        """The digits typed so far, clearing the entry (call it after "submitted")."""
        text = "".join(self._digits)
        self._digits.clear()
        return text
