"""Displays behind one `Display` port."""

from hardware.display.base import Display
from hardware.display.simulated import SimulatedDisplay

__all__ = ["Display", "SimulatedDisplay"]
