"""Building the panel from config: the one place that maps a driver name to implementations.

    [panel]
    driver = "gpio"              # "gpio" | "simulated"
    pin_map = "generic-4button"  # a bundled map's name, or a path to a TOML file
    brightness = 0.6             # the status LED, 0-1 (PWM only)
    keypad = "USB Keypad"        # optional: device name or /dev/input/by-id link, or "simulated"
    keyboard = false             # the keypad is a full keyboard: email + PIN sign-in is offered

Simulated parts are chosen explicitly, never as a fallback for hardware that failed to open.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from hardware.panel.base import ButtonPanel, Buzzer, Keypad, StatusLight
from hardware.panel.pinmap import PinMap
from hardware.panel.simulated import (
    SimulatedButtonPanel,
    SimulatedBuzzer,
    SimulatedKeypad,
    SimulatedStatusLight,
)

__all__ = ["PANEL_DRIVERS", "Panel", "keypad_from_config", "panel_from_config"]

PANEL_DRIVERS = ("gpio", "simulated")


@dataclass(slots=True)
class Panel:
    """The panel parts a pin map describes; a part the map does not have is None."""

    buttons: ButtonPanel
    light: StatusLight | None = None
    buzzer: Buzzer | None = None

    def close(self) -> None:
        """Release every part (each is closed even if another fails)."""
        with contextlib.ExitStack() as stack:
            for part in (self.buttons, self.light, self.buzzer):
                if part is not None:
                    stack.callback(part.close)


def panel_from_config(
    driver: str, pin_map: PinMap, *, brightness: float = 1.0, pin_factory: object | None = None
) -> Panel:
    """Build the buttons, status light and buzzer of `pin_map` with `driver`.

    Raises:
        ValueError: unknown driver.
        PanelError: a pin cannot be claimed.
    """
    if driver == "simulated":
        return Panel(
            SimulatedButtonPanel(pin_map.event_names),
            SimulatedStatusLight() if pin_map.status_light is not None else None,
            SimulatedBuzzer() if pin_map.buzzer is not None else None,
        )
    if driver != "gpio":
        raise ValueError(
            f"unknown panel driver {driver!r}; choose one of {', '.join(PANEL_DRIVERS)}"
        )
    from hardware.panel.gpio_buttons import GpioButtonPanel  # noqa: PLC0415
    from hardware.panel.gpio_buzzer import GpioBuzzer  # noqa: PLC0415
    from hardware.panel.gpio_light import GpioStatusLight  # noqa: PLC0415

    with contextlib.ExitStack() as undo:  # on a failure, free the pins already claimed
        buttons = GpioButtonPanel(pin_map.buttons, pin_factory=pin_factory)
        undo.callback(buttons.close)
        light = None
        if pin_map.status_light is not None:
            light = GpioStatusLight(
                pin_map.status_light, brightness=brightness, pin_factory=pin_factory
            )
            undo.callback(light.close)
        buzzer = None
        if pin_map.buzzer is not None:
            buzzer = GpioBuzzer(pin_map.buzzer, pin_factory=pin_factory)
        undo.pop_all()
    return Panel(buttons, light, buzzer)


def keypad_from_config(device: str, *, keyboard: bool = False) -> Keypad:
    """A keypad: "simulated", or an evdev device name / by-id link; `keyboard` for a full
    keyboard (letters and email symbols decoded too).

    Raises:
        ValueError: the device spec is not stable across boots (/dev/input/eventN).
    """
    if device == "simulated":
        return SimulatedKeypad(keyboard=keyboard)
    from hardware.panel.keypad import EvdevKeypad  # noqa: PLC0415

    return EvdevKeypad(device, keyboard=keyboard)
