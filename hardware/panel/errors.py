"""The panel errors, all under `hardware.errors.HardwareError`.

PanelError                                 a button, light, buzzer, keypad or touch panel failed
├── PinMapError           (ValueError)     a pin map file is malformed or its pins clash
└── InputDeviceLostError  (ConnectionError) a keypad or touch panel is gone (unplugged)

Invariant: no message raised here carries a key a person typed (a PIN digit never reaches a log).
"""

from __future__ import annotations

from hardware.errors import HardwareError

__all__ = ["InputDeviceLostError", "PanelError", "PinMapError"]


class PanelError(HardwareError):
    """A part of the station's panel (buttons, light, buzzer, keypad, touch) failed."""


class PinMapError(PanelError, ValueError):
    """A pin map is malformed, names an unknown key, or uses a pin twice or out of range."""


class InputDeviceLostError(PanelError, ConnectionError):
    """The keypad or touch panel is not there (unplugged, not enumerated yet); it is reopened."""
