"""The panel's ports: a status light, a buzzer, a set of buttons and a PIN keypad.

Each port is small and names no library; `gpio_*`, `keypad` and `touch` implement them on real
devices, `simulated` implements them for tests and the demo. Button events are plain strings (the
names in the pin map, such as "print-all"), so `hardware` needs nothing from `station`: the station
maps them onto its own `Button` enum.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Protocol

from hardware.panel.keypad_decoder import KeypadEvent

__all__ = [
    "ButtonHandler",
    "ButtonPanel",
    "Buzzer",
    "Keypad",
    "LightPattern",
    "Rgb",
    "Sound",
    "StatusLight",
]

Rgb = tuple[float, float, float]
"""A colour as red, green, blue intensities from 0.0 to 1.0 (gpiozero's convention)."""

ButtonHandler = Callable[[str], None]
"""Called with a button's name from the pin map (or a touch region's name) when it is pressed."""


class LightPattern(enum.Enum):
    """What the status light says, each in a colour and a rhythm of its own."""

    OFF = "off"
    READY = "ready"  # steady green: tap a badge
    READING = "reading"  # blinking blue: talking to the cloud
    SUCCESS = "success"  # quick green flashes, then steady green
    ERROR = "error"  # blinking red
    OFFLINE = "offline"  # slow amber pulse


class Sound(enum.Enum):
    """What the buzzer says; each differs in rhythm, not only in pitch (for people who cannot
    tell tones apart)."""

    READ = "read"  # one short beep: the badge was read
    SUCCESS = "success"  # two short rising beeps
    FAILURE = "failure"  # one long low tone


class StatusLight(Protocol):
    """An RGB LED showing the station's state."""

    def show(self, pattern: LightPattern) -> None:
        """Switch to `pattern` (replacing whatever was running)."""
        ...

    def set_colour(self, colour: Rgb) -> None:
        """Light steadily in `colour`, stopping any pattern."""
        ...

    def close(self) -> None:
        """Switch off and release the pins."""
        ...


class Buzzer(Protocol):
    """A buzzer that plays short sound patterns without blocking the caller."""

    def play(self, sound: Sound) -> None:
        """Start `sound`, cutting short whatever was playing."""
        ...

    def stop(self) -> None:
        """Silence the buzzer."""
        ...

    def close(self) -> None:
        """Silence it and release the pin."""
        ...


class ButtonPanel(Protocol):
    """Physical buttons (or touch regions) that report presses by name.

    `on_button` is called from a device thread (gpiozero's, or the touch reader's): keep it short
    and thread-safe (the station's `press()` only queues an event).
    """

    on_button: ButtonHandler | None

    @property
    def names(self) -> tuple[str, ...]:
        """Every name `on_button` can be called with."""
        ...

    def close(self) -> None:
        """Stop reporting presses and release the device."""
        ...


class Keypad(Protocol):
    """A USB keypad for PIN and passcode entry (or a full keyboard: email + PIN too)."""

    @property
    def keyboard(self) -> bool:
        """True for a full keyboard, which can type an email address."""
        ...

    def read(self, timeout_s: float | None = None) -> KeypadEvent | None:
        """Wait up to `timeout_s` (None: forever) for a key; None if none came in time."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...
