"""What each light pattern and sound looks and sounds like: data, no devices.

Sounds are told apart by rhythm first (accessibility: not everyone hears pitch differences, and a
cheap active buzzer has one pitch only):

    READ     one short beep                    .
    SUCCESS  two short beeps, the second higher  . .
    FAILURE  one long low tone                 ______

Light patterns are told apart by rhythm as well as colour (colour-blind users): steady, blinking,
quick flashes, slow pulse.
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.panel.base import LightPattern, Rgb, Sound

__all__ = [
    "AMBER",
    "BLUE",
    "GREEN",
    "LIGHT_PATTERNS",
    "RED",
    "SOUNDS",
    "Beep",
    "LightSpec",
]

GREEN: Rgb = (0.0, 1.0, 0.0)
BLUE: Rgb = (0.0, 0.0, 1.0)
RED: Rgb = (1.0, 0.0, 0.0)
AMBER: Rgb = (1.0, 0.5, 0.0)
BLACK: Rgb = (0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class LightSpec:
    """One light pattern.

    `style` is "steady", "blink" (on/off, `flashes` times or for ever when None) or "pulse" (fade
    in and out, PWM only; without PWM it blinks slowly instead). `then` is the steady colour after
    a finite blink (None: off).
    """

    colour: Rgb
    style: str = "steady"
    on_s: float = 0.0
    off_s: float = 0.0
    flashes: int | None = None
    then: Rgb | None = None


LIGHT_PATTERNS: dict[LightPattern, LightSpec] = {
    LightPattern.OFF: LightSpec(BLACK),
    LightPattern.READY: LightSpec(GREEN),
    LightPattern.READING: LightSpec(BLUE, "blink", on_s=0.15, off_s=0.15),
    LightPattern.SUCCESS: LightSpec(GREEN, "blink", on_s=0.1, off_s=0.1, flashes=3, then=GREEN),
    LightPattern.ERROR: LightSpec(RED, "blink", on_s=0.4, off_s=0.4),
    LightPattern.OFFLINE: LightSpec(AMBER, "pulse", on_s=1.0, off_s=1.0),
}


@dataclass(frozen=True, slots=True)
class Beep:
    """One step of a sound: a tone of `hz` (None: silence) for `duration_s`."""

    hz: float | None
    duration_s: float


SOUNDS: dict[Sound, tuple[Beep, ...]] = {
    Sound.READ: (Beep(1760.0, 0.05),),
    # Rising: E6 then A6, each short, a clear gap between them.
    Sound.SUCCESS: (Beep(1318.5, 0.08), Beep(None, 0.08), Beep(1760.0, 0.08)),
    # Long and low (E4): nothing like the two short ones, even on a one-pitch active buzzer.
    Sound.FAILURE: (Beep(329.6, 0.7),),
}
