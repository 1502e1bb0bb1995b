"""The station's panel: buttons, RGB status light, buzzer, PIN keypad and touch input.

Ports (`base`) with simulated twins (`simulated`); gpiozero implementations (`gpio_*`) and evdev
ones (`keypad`, `touch`), which import their libraries only when built, so importing this package
needs neither gpiozero nor evdev. Pin maps (`pinmap`, `pinmaps/*.toml`) say what is wired where.
"""

from hardware.panel.base import (
    ButtonHandler,
    ButtonPanel,
    Buzzer,
    Keypad,
    LightPattern,
    Rgb,
    Sound,
    StatusLight,
)
from hardware.panel.errors import InputDeviceLostError, PanelError, PinMapError
from hardware.panel.keypad_decoder import DigitEntry, KeypadDecoder, KeypadEvent, KeypadKey
from hardware.panel.pinmap import PinMap, available_pin_maps, load_pin_map
from hardware.panel.registry import Panel, keypad_from_config, panel_from_config
from hardware.panel.simulated import (
    SimulatedButtonPanel,
    SimulatedBuzzer,
    SimulatedKeypad,
    SimulatedStatusLight,
)
from hardware.panel.touch_decoder import HitMap, Tap, TouchCalibration, TouchDecoder

__all__ = [
    "ButtonHandler",
    "ButtonPanel",
    "Buzzer",
    "DigitEntry",
    "HitMap",
    "InputDeviceLostError",
    "Keypad",
    "KeypadDecoder",
    "KeypadEvent",
    "KeypadKey",
    "LightPattern",
    "Panel",
    "PanelError",
    "PinMap",
    "PinMapError",
    "Rgb",
    "SimulatedButtonPanel",
    "SimulatedBuzzer",
    "SimulatedKeypad",
    "SimulatedStatusLight",
    "Sound",
    "StatusLight",
    "Tap",
    "TouchCalibration",
    "TouchDecoder",
    "available_pin_maps",
    "keypad_from_config",
    "load_pin_map",
    "panel_from_config",
]
