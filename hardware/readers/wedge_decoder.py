"""Keyboard-wedge decoding: Linux key events in, frames of reader text out.

A keyboard-wedge reader (RFIDeas pcProx / WAVE ID, Elatec TWN4 in keyboard mode) types each badge
as keystrokes. This module is pure: it sees a sequence of `KeyEvent`s (type, code, value,
timestamp), as the kernel's evdev interface reports them, and returns the text of each frame.

Rules:

* only EV_KEY events count; EV_SYN, EV_MSC (scan codes) and the rest are skipped;
* a character is taken on key-down (value 1) only; key-up (0) and auto-repeat (2) are ignored,
  so a reader that holds a key too long does not double a digit;
* Shift (left or right) is tracked across down/up, so Shift+A gives "A" and Shift+; gives ":";
* keypad digits count as digits;
* a frame ends on Enter or keypad Enter, or when the next key-down comes more than `gap_s` after
  the previous one (readers configured without a terminator); `flush()` ends it when no key comes
  at all (the device layer calls it once `gap_s` has passed in silence);
* a key with no character here (F1, arrows, ...) puts `UNKNOWN_CHAR` in the frame, so the frame
  fails to parse instead of silently losing a digit; Ctrl/Alt/Caps/Num Lock are ignored;
* a frame longer than `max_frame_chars` is cut there and so fails to parse, bounding memory.

The key codes are the kernel's (linux/input-event-codes.h), a stable ABI, written out here so the
decoder needs no evdev install; the tests check them against `evdev.ecodes`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = [
    "EV_KEY",
    "KEY_DOWN",
    "KEY_REPEAT",
    "KEY_UP",
    "UNKNOWN_CHAR",
    "US_KEYMAP",
    "KeyEvent",
    "WedgeDecoder",
    "decode_key_events",
]

EV_SYN, EV_KEY, EV_MSC = 0x00, 0x01, 0x04
KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2

KEY_ENTER, KEY_KPENTER = 28, 96
KEY_LEFTSHIFT, KEY_RIGHTSHIFT = 42, 54
# Modifiers and locks a reader (or its USB descriptor) may send; they carry no character.
_IGNORED_KEYS = frozenset(
    {
        29,  # KEY_LEFTCTRL
        56,  # KEY_LEFTALT
        58,  # KEY_CAPSLOCK: hex is read case-insensitively, so Caps Lock can be ignored
        69,  # KEY_NUMLOCK
        70,  # KEY_SCROLLLOCK
        97,  # KEY_RIGHTCTRL
        100,  # KEY_RIGHTALT
        125,  # KEY_LEFTMETA
        126,  # KEY_RIGHTMETA
    }
)

UNKNOWN_CHAR = "\ufffd"


def _row(codes: range | tuple[int, ...], plain: str, shifted: str) -> dict[int, tuple[str, str]]:
    return {code: (p, s) for code, p, s in zip(codes, plain, shifted, strict=True)}


# code -> (character, character with Shift), US layout: readers emulate a US keyboard.
_KEYMAP: dict[int, tuple[str, str]] = {
    **_row(range(2, 14), "1234567890-=", "!@#$%^&*()_+"),  # KEY_1 .. KEY_EQUAL
    **_row(range(16, 28), "qwertyuiop[]", "QWERTYUIOP{}"),  # KEY_Q .. KEY_RIGHTBRACE
    **_row(range(30, 42), "asdfghjkl;'`", 'ASDFGHJKL:"~'),  # KEY_A .. KEY_GRAVE
    **_row(range(43, 54), "\\zxcvbnm,./", "|ZXCVBNM<>?"),  # KEY_BACKSLASH .. KEY_SLASH
    57: (" ", " "),  # KEY_SPACE
    15: ("\t", "\t"),  # KEY_TAB: kept in the frame, stripped by the parser as whitespace
    # The keypad gives the same character with or without Shift (Num Lock assumed on).
    **_row((71, 72, 73, 75, 76, 77, 79, 80, 81, 82), "7894561230", "7894561230"),
    74: ("-", "-"),  # KEY_KPMINUS
    78: ("+", "+"),  # KEY_KPPLUS
    83: (".", "."),  # KEY_KPDOT
    55: ("*", "*"),  # KEY_KPASTERISK
    98: ("/", "/"),  # KEY_KPSLASH
}


# Shared with `hardware.panel.keypad_decoder` (a full keyboard at the station types emails).
US_KEYMAP: dict[int, tuple[str, str]] = _KEYMAP


class KeyEvent(NamedTuple):
    """One input event as evdev reports it; `time_s` is the kernel's timestamp in seconds."""

    type: int
    code: int
    value: int
    time_s: float


class WedgeDecoder:
    """Turns key events into frames of text; keeps the partial frame between calls.

    Not thread-safe: one reader thread feeds it.
    """

    def __init__(self, gap_s: float = 0.15, max_frame_chars: int = 64) -> None:
        if gap_s <= 0:
            raise ValueError("gap_s must be positive")
        if max_frame_chars <= 0:
            raise ValueError("max_frame_chars must be positive")
        self.gap_s = gap_s
        self.max_frame_chars = max_frame_chars
        self._chars: list[str] = []
        self._shift: set[int] = set()
        self._last_key_s: float | None = None

    @property
    def pending(self) -> bool:
        """True while part of a frame has been typed and not yet ended."""
        return bool(self._chars)

    def feed(self, event: KeyEvent) -> list[str]:
        """Take one event; return the frames it completed (usually none, at most two)."""
        if event.type != EV_KEY:
            return []
        if event.code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            if event.value == KEY_DOWN:
                self._shift.add(event.code)
            elif event.value == KEY_UP:
                self._shift.discard(event.code)
            return []
        if event.value != KEY_DOWN or event.code in _IGNORED_KEYS:
            return []
        frames: list[str] = []
        if (
            self._chars
            and self._last_key_s is not None
            and event.time_s - self._last_key_s > self.gap_s
        ):
            # The reader paused: the previous frame ended without a terminator.
            frames.extend(self._end())
        self._last_key_s = event.time_s
        if event.code in (KEY_ENTER, KEY_KPENTER):
            frames.extend(self._end())
            return frames
        chars = _KEYMAP.get(event.code)
        char = UNKNOWN_CHAR if chars is None else chars[1 if self._shift else 0]
        # One past the limit, so an overlong frame stays too long for the parser to accept.
        if len(self._chars) <= self.max_frame_chars:
            self._chars.append(char)
        return frames

    def feed_all(self, events: Iterable[KeyEvent]) -> list[str]:
        """Take several events; return the frames they completed."""
        frames: list[str] = []
        for event in events:
            frames.extend(self.feed(event))
        return frames

    def flush(self) -> str | None:
        """End the current frame (the reader has been silent for `gap_s`); None if empty."""
        frames = self._end()
        return frames[0] if frames else None

    def reset(self) -> None:
        """Forget any partial frame and the Shift state (after the device was reopened)."""
        self._chars.clear()
        self._shift.clear()
        self._last_key_s = None

    def _end(self) -> list[str]:
        text = "".join(self._chars)
        self._chars.clear()
        return [text] if text else []


def decode_key_events(events: Iterable[KeyEvent], gap_s: float = 0.15) -> list[str]:
    """All frames in a finished stream of events, the last one ended by the stream's end."""
    decoder = WedgeDecoder(gap_s)
    frames = decoder.feed_all(events)
    tail = decoder.flush()
    if tail is not None:
        frames.append(tail)
    return frames
