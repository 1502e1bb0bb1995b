"""The RGB status LED through gpiozero's `RGBLED`: a `StatusLight` playing `patterns`.

Steady colours set the LED; blinking and pulsing patterns run on gpiozero's own background thread
(`RGBLED.blink` / `pulse`), which any later call stops. SUCCESS blinks a few times and then stays
green: a timer sets the green once the flashes are over, and a generation counter makes sure a
pattern chosen meanwhile is not overwritten by it. Every call into the RGBLED is made under one
lock: gpiozero's blink start/stop is not safe against two threads at once.

Without PWM (`pwm = false` in the pin map) each channel is on or off: colours are rounded (amber
becomes red + green) and the OFFLINE pulse becomes a slow blink.
"""

from __future__ import annotations

import threading

from hardware.panel.base import LightPattern, Rgb
from hardware.panel.errors import PanelError
from hardware.panel.patterns import LIGHT_PATTERNS
from hardware.panel.pinmap import RgbPins

__all__ = ["GpioStatusLight"]

_BLACK: Rgb = (0.0, 0.0, 0.0)


class GpioStatusLight:
    """A `StatusLight` on an RGB LED.

    Args:
        pins: the pin map's `[status_light]`.
        brightness: 0-1, scales every colour (PWM only): a bright LED at eye level dazzles.
        pin_factory: a gpiozero pin factory; None uses gpiozero's default.

    Raises:
        PanelError: a pin cannot be claimed, or PWM is asked for on pins that cannot do it.
    """

    def __init__(
        self, pins: RgbPins, *, brightness: float = 1.0, pin_factory: object | None = None
    ) -> None:
        from gpiozero import RGBLED, GPIOZeroError  # noqa: PLC0415

        if not 0 < brightness <= 1:
            raise ValueError("brightness is in (0, 1]")
        self._pwm = pins.pwm
        self._brightness = brightness if pins.pwm else 1.0
        self._lock = threading.Lock()
        self._generation = 0
        self.pattern: LightPattern | None = LightPattern.OFF
        try:
            self.led = RGBLED(
                pins.red,
                pins.green,
                pins.blue,
                active_high=not pins.common_anode,
                pwm=pins.pwm,
                pin_factory=pin_factory,
            )
        except GPIOZeroError as exc:
            raise PanelError(f"cannot set up the status light: {exc}") from exc

    def show(self, pattern: LightPattern) -> None:
        """Switch to `pattern`, stopping whatever ran before."""
        spec = LIGHT_PATTERNS[pattern]
        with self._lock:
            self._generation += 1
            self.pattern = pattern
            colour = self._fit(spec.colour)
            if spec.style == "steady":
                self.led.value = colour
            elif spec.style == "pulse" and self._pwm:
                self.led.pulse(
                    fade_in_time=spec.on_s,
                    fade_out_time=spec.off_s,
                    on_color=colour,
                    off_color=_BLACK,
                    n=None,
                    background=True,
                )
            else:
                self.led.blink(
                    on_time=spec.on_s,
                    off_time=spec.off_s,
                    on_color=colour,
                    off_color=_BLACK,
                    n=spec.flashes,
                    background=True,
                )
                if spec.flashes is not None and spec.then is not None:
                    timer = threading.Timer(
                        spec.flashes * (spec.on_s + spec.off_s),
                        self._settle,
                        args=(spec.then, self._generation),
                    )
                    timer.daemon = True
                    timer.start()

    def set_colour(self, colour: Rgb) -> None:
        """Light steadily in `colour` (each channel 0-1), stopping any pattern."""
        if len(colour) != 3 or not all(0 <= c <= 1 for c in colour):
            raise ValueError("a colour is three values in [0, 1]")
        with self._lock:
            self._generation += 1
            self.pattern = None
            self.led.value = self._fit(colour)

    def close(self) -> None:
        """Switch off and release the pins."""
        with self._lock:
            self._generation += 1
            self.pattern = LightPattern.OFF
            self.led.close()

    def _fit(self, colour: Rgb) -> Rgb:
        if not self._pwm:
            red, green, blue = (1.0 if c >= 0.5 else 0.0 for c in colour)
            return (red, green, blue)
        red, green, blue = (round(c * self._brightness, 4) for c in colour)
        return (red, green, blue)

    def _settle(self, colour: Rgb, generation: int) -> None:
        # The flashes are over: light `colour`, unless another pattern was chosen meanwhile.
        with self._lock:
            if generation == self._generation:
                self.led.value = self._fit(colour)
