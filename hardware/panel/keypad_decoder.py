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

With `keyboard=True` (a full USB keyboard, `[panel] keyboard = true`), the station can also take
an email address:

* letters give CHARACTER events, digits still give DIGIT events (a passcode typed on the top row
  works as on a keypad), and `@ . - _ +` give CHARACTER events (US layout, like keyboard-wedge
  readers: Shift+2 is "@", Shift+- is "_", Shift+= is "+"; the keypad's "-", "+" and "." too);
* Shift (left or right) is tracked across key-down/up; Caps Lock is ignored: an email address is
  lower-cased before it is used, so only the symbols need Shift;
* Tab gives TAB (it opens email entry, for an address that starts with a digit);
* the keypad's "." types a dot instead of erasing (a full keyboard has a Backspace key);
* any other character (space, punctuation, Shift+digit other than "@") is ignored.

`DigitEntry` collects the digits of one PIN or passcode. Neither class keeps or logs digits beyond
what the entry holds, and `KeypadEvent` hides its digit from `repr`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from hardware.readers.wedge_decoder import EV_KEY, KEY_DOWN, KEY_UP, US_KEYMAP, KeyEvent

__all__ = [
    "EMAIL_SYMBOLS",
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
    CHARACTER = "character"  # a full keyboard only: a letter or one of EMAIL_SYMBOLS
    TAB = "tab"  # a full keyboard only


@dataclass(frozen=True, slots=True)
class KeypadEvent:
    """One key pressed; `digit` is "0".."9" for DIGIT, the character for CHARACTER (a letter or
    one of EMAIL_SYMBOLS) and "" otherwise (hidden from repr: it may be part of a PIN)."""

    key: KeypadKey
    digit: str = field(default="", repr=False)


# linux/input-event-codes.h (a stable ABI); the tests check them against evdev.ecodes.
KEY_ESC, KEY_BACKSPACE, KEY_ENTER, KEY_KPENTER = 1, 14, 28, 96
KEY_KPDOT, KEY_DELETE = 83, 111
_TOP_ROW = dict(zip(range(2, 12), "1234567890", strict=True))  # KEY_1 .. KEY_0
_KEYPAD = dict(zip((79, 80, 81, 75, 76, 77, 71, 72, 73, 82), "1234567890", strict=True))

KEY_TAB, KEY_LEFTSHIFT, KEY_RIGHTSHIFT = 15, 42, 54
EMAIL_SYMBOLS = "@.-_+"

_DEFAULT_KEYS: dict[int, KeypadKey] = {
    KEY_ESC: KeypadKey.ESCAPE,
    KEY_BACKSPACE: KeypadKey.BACKSPACE,
    KEY_DELETE: KeypadKey.BACKSPACE,
    KEY_KPDOT: KeypadKey.BACKSPACE,
    KEY_ENTER: KeypadKey.ENTER,
    KEY_KPENTER: KeypadKey.ENTER,
}


class KeypadDecoder:
    """Turns key events into keypad events; keeps only its key map and, for a keyboard, Shift."""

    def __init__(
        self, extra_keys: Mapping[int, KeypadKey] | None = None, *, keyboard: bool = False
    ) -> None:
        """`extra_keys` maps further key codes to BACKSPACE, ENTER or ESCAPE (not DIGIT or
        CHARACTER); `keyboard` decodes a full keyboard's letters and email symbols too."""
        keys = dict(_DEFAULT_KEYS)
        if keyboard:
            del keys[KEY_KPDOT]  # a dot, on a keyboard
            keys[KEY_TAB] = KeypadKey.TAB
        for code, key in (extra_keys or {}).items():
            if key in (KeypadKey.DIGIT, KeypadKey.CHARACTER):
                raise ValueError("extra_keys cannot add digits or characters")
            keys[code] = key
        self._keys = keys
        self.keyboard = keyboard
        self._shift: set[int] = set()

    def feed(self, event: KeyEvent) -> KeypadEvent | None:
        """Take one event; return the keypad event it makes, if any."""
        if event.type != EV_KEY:
            return None
        if self.keyboard and event.code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            if event.value == KEY_DOWN:
                self._shift.add(event.code)
            elif event.value == KEY_UP:
                self._shift.discard(event.code)
            return None
        if event.value != KEY_DOWN:
            return None
        if not self.keyboard:  # a numeric keypad: digits first, as it always was
            digit = _KEYPAD.get(event.code) or _TOP_ROW.get(event.code)
            if digit is not None:
                return KeypadEvent(KeypadKey.DIGIT, digit)
        key = self._keys.get(event.code)
        if key is not None:
            return KeypadEvent(key)
        return self._character(event.code) if self.keyboard else None

    def _character(self, code: int) -> KeypadEvent | None:
        chars = US_KEYMAP.get(code)
        if chars is None:
            return None
        char = chars[1 if self._shift else 0]
        if char.isascii() and char.isdigit():
            return KeypadEvent(KeypadKey.DIGIT, char)
        if (char.isascii() and char.isalpha()) or char in EMAIL_SYMBOLS:
            return KeypadEvent(KeypadKey.CHARACTER, char)
        return None

    def reset(self) -> None:
        """Forget the Shift state (after the device was reopened: its key-ups are lost)."""
        self._shift.clear()

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
