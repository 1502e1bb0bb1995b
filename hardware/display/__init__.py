"""Displays behind one `Display` port.

`display_from_config(kind, options)` builds one by name: simulated, ssd1306, sh1106, st7789,
ili9341 or framebuffer. Importing this package imports neither luma nor gpiozero.
"""

from hardware.display.base import Display
from hardware.display.framebuffer import FramebufferDisplay
from hardware.display.luma import LumaDisplay
from hardware.display.registry import DISPLAY_KINDS, display_from_config, display_pins
from hardware.display.simulated import SimulatedDisplay

__all__ = [
    "DISPLAY_KINDS",
    "Display",
    "FramebufferDisplay",
    "LumaDisplay",
    "SimulatedDisplay",
    "display_from_config",
    "display_pins",
]
