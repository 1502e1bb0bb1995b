"""Simulated panel parts: drivable (press a button, type on the keypad) and observable (what the
light showed, what the buzzer played), for tests, the demo and the simulated HIL lab.

They are chosen explicitly (config `driver = "simulated"` or passed in), never as a fallback.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable

from hardware.panel.base import ButtonHandler, LightPattern, Rgb, Sound
from hardware.panel.keypad_decoder import EMAIL_SYMBOLS, KeypadEvent, KeypadKey
from hardware.panel.patterns import LIGHT_PATTERNS

__all__ = [
    "SimulatedButtonPanel",
    "SimulatedBuzzer",
    "SimulatedKeypad",
    "SimulatedStatusLight",
]


class SimulatedStatusLight:
    """A `StatusLight` that records every pattern and colour it was asked for."""

    def __init__(self) -> None:
        self.pattern: LightPattern | None = LightPattern.OFF
        self.colour: Rgb = (0.0, 0.0, 0.0)
        self.history: list[LightPattern | Rgb] = []
        self.closed = False

    def show(self, pattern: LightPattern) -> None:
        """Record `pattern`; `colour` becomes its main colour."""
        self.pattern = pattern
        self.colour = LIGHT_PATTERNS[pattern].colour
        self.history.append(pattern)

    def set_colour(self, colour: Rgb) -> None:
        """Record a steady colour (the pattern becomes None)."""
        self.pattern = None
        self.colour = colour
        self.history.append(colour)

    def close(self) -> None:
        """Switch off."""
        self.pattern = LightPattern.OFF
        self.colour = (0.0, 0.0, 0.0)
        self.closed = True


class SimulatedBuzzer:
    """A `Buzzer` that records the sounds it played."""

    def __init__(self) -> None:
        self.played: list[Sound] = []
        self.stops = 0
        self.closed = False

    def play(self, sound: Sound) -> None:
        """Record `sound`."""
        self.played.append(sound)

    def stop(self) -> None:
        """Count a stop."""
        self.stops += 1

    def close(self) -> None:
        """Nothing to release."""
        self.closed = True


class SimulatedButtonPanel:
    """A `ButtonPanel` whose buttons are pressed by calling `press(name)`."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = tuple(names)
        if not self._names:
            raise ValueError("a button panel needs at least one button")
        self.on_button: ButtonHandler | None = None
        self.pressed: list[str] = []
        self.closed = False

    @property
    def names(self) -> tuple[str, ...]:
        """The button names, in pin-map order."""
        return self._names

    def press(self, name: str) -> None:
        """Press the button `name`, as a finger would.

        Raises:
            ValueError: there is no such button.
        """
        if name not in self._names:
            raise ValueError(f"no button named {name!r}; buttons: {', '.join(self._names)}")
        self.pressed.append(name)
        handler = self.on_button
        if handler is not None and not self.closed:
            handler(name)

    def close(self) -> None:
        """Stop reporting presses."""
        self.closed = True


class SimulatedKeypad:
    """A `Keypad` fed by `type_digits()`, `enter()`, `backspace()` and `escape()`; thread-safe.

    With `keyboard=True` it is a full keyboard: `type_text()` types an email address too.
    """

    def __init__(self, *, keyboard: bool = False) -> None:
        self._events: queue.Queue[KeypadEvent] = queue.Queue()
        self._closed = threading.Event()
        self.keyboard = keyboard

    def press(self, event: KeypadEvent) -> None:
        """Queue one key."""
        self._events.put(event)

    def type_digits(self, digits: str) -> None:
        """Queue one DIGIT event per character of `digits`.

        Raises:
            ValueError: `digits` holds something other than 0-9.
        """
        if not digits.isascii() or not digits.isdigit():
            raise ValueError("a keypad types digits only")
        for digit in digits:
            self.press(KeypadEvent(KeypadKey.DIGIT, digit))

    def type_text(self, text: str) -> None:
        """Queue what a keyboard sends for `text`: DIGIT for digits, CHARACTER otherwise.

        Raises:
            ValueError: not a keyboard, or `text` holds something a keyboard does not send here.
        """
        if not self.keyboard:
            raise ValueError("a keypad types digits only")
        if not all(c.isascii() and (c.isalnum() or c in EMAIL_SYMBOLS) for c in text):
            raise ValueError(f"a keyboard types letters, digits and {EMAIL_SYMBOLS} only")
        for char in text:
            kind = KeypadKey.DIGIT if char.isdigit() else KeypadKey.CHARACTER
            self.press(KeypadEvent(kind, char))

    def enter(self) -> None:
        """Queue Enter."""
        self.press(KeypadEvent(KeypadKey.ENTER))

    def backspace(self) -> None:
        """Queue Backspace."""
        self.press(KeypadEvent(KeypadKey.BACKSPACE))

    def escape(self) -> None:
        """Queue Esc."""
        self.press(KeypadEvent(KeypadKey.ESCAPE))

    def read(self, timeout_s: float | None = None) -> KeypadEvent | None:
        """The next queued key, waiting up to `timeout_s`; None if none came (or closed)."""
        if self._closed.is_set():
            return None
        try:
            return self._events.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop returning keys."""
        self._closed.set()
