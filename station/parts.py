"""Building the station's display and panel from config (part of the composition root).

A real display's wiring and the panel's buttons, light and buzzer come from one pin map, so the
pin map is loaded once and checked against the display's bus before any pin is claimed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

from hardware.display.base import Display
from hardware.display.registry import display_from_config
from hardware.display.simulated import CONFIGURED_KEEP_FRAMES, SimulatedDisplay
from hardware.errors import HardwareError
from hardware.panel.base import Buzzer, LightPattern, Sound, StatusLight
from hardware.panel.pinmap import PinMap, load_pin_map
from hardware.panel.registry import Panel, panel_from_config
from hardware.printers.fallback import FallbackMode, FallbackTransport, PrinterPolicy
from hardware.printers.registry import transport_for_uri
from hardware.printers.transport import PrinterTransport
from station.config import HardwareConfig, StationConfig
from station.errors import ConfigError
from station.screens import (
    CardUnreadableScreen,
    DoneScreen,
    ErrorScreen,
    IdleScreen,
    OfflineScreen,
    ReadingScreen,
    Screen,
)
from station.workflow import Button

# What the light and the buzzer do when a screen appears (None: leave them as they are).
# Success and failure differ in rhythm as well as colour and pitch (accessibility).
FEEDBACK: dict[type, tuple[LightPattern | None, Sound | None]] = {
    IdleScreen: (LightPattern.READY, None),
    ReadingScreen: (LightPattern.READING, Sound.READ),
    DoneScreen: (LightPattern.SUCCESS, Sound.SUCCESS),
    ErrorScreen: (LightPattern.ERROR, Sound.FAILURE),
    CardUnreadableScreen: (LightPattern.ERROR, Sound.FAILURE),
    OfflineScreen: (LightPattern.OFFLINE, None),
}


def _pin_map(config: StationConfig | HardwareConfig) -> PinMap | None:
    hw = config.hardware if isinstance(config, StationConfig) else config
    if hw.pin_map is None:
        return None
    try:
        return load_pin_map(
            hw.pin_map,
            display_kind=None if hw.display == "simulated" else hw.display,
            display_options=dict(hw.display_options),
        )
    except (ValueError, OSError, HardwareError) as exc:
        raise ConfigError(f"[panel] pin_map {hw.pin_map!r}: {exc}") from exc


def build_transport(config: StationConfig) -> PrinterTransport:
    """The printer, as paired: one URI, or a fallback policy (IPPS -> IPP -> RAW) with its pin."""
    printer = config.printer
    try:
        if printer.mode is None:
            return transport_for_uri(printer.uri, timeout_s=printer.timeout_s, pin=printer.pin)
        ipps = printer.uri if printer.uri.startswith("ipps://") else None
        ipp = printer.ipp_uri or (printer.uri if printer.uri.startswith("ipp://") else None)
        raw = printer.raw_uri or (printer.uri if printer.uri.startswith("socket://") else None)
        snmp = None
        if printer.snmp_community is not None:
            # pysnmp is loaded only by stations that confirm RAW jobs by page count.
            from hardware.snmp.client import SnmpTarget  # noqa: PLC0415
            from hardware.snmp.credentials import CommunityCredentials  # noqa: PLC0415

            host = urlsplit(raw or ipp or printer.uri).hostname or ""
            snmp = SnmpTarget(host, CommunityCredentials(printer.snmp_community))
        policy = PrinterPolicy(
            cast(FallbackMode, printer.mode),
            ipps_uri=ipps,
            pin=printer.pin,
            ipp_uri=ipp,
            raw_uri=raw,
            raw_pjl=printer.raw_pjl,
            snmp=snmp,
        )
        return FallbackTransport(policy, timeout_s=printer.timeout_s)
    except ValueError as exc:
        raise ConfigError(f"[printer] {exc}") from exc


def build_display(config: StationConfig | HardwareConfig) -> Display:
    """The configured display: simulated, or a real panel wired as the pin map says.

    Takes the hardware part alone too: a station still to be paired shows its pairing code.
    """
    hw = config.hardware if isinstance(config, StationConfig) else config
    if hw.display == "simulated":
        return SimulatedDisplay(
            hw.display_width,
            hw.display_height,
            hw.display_mode,
            hw.frames_dir,
            keep_frames=CONFIGURED_KEEP_FRAMES,
        )
    pin_map = _pin_map(hw)
    options = pin_map.display_options if pin_map is not None else dict(hw.display_options)
    try:
        return display_from_config(hw.display, options)
    except ValueError as exc:
        raise ConfigError(f"[display] {exc}") from exc
    except HardwareError as exc:
        raise ConfigError(f"[display] {hw.display} cannot be opened: {exc}") from exc


def build_panel(config: StationConfig) -> Panel | None:
    """The configured buttons, status light and buzzer, or None when the station has none."""
    hw = config.hardware
    if hw.panel_driver == "none":
        return None
    pin_map = _pin_map(config)
    assert pin_map is not None  # the config requires one with a driver
    try:
        panel = panel_from_config(hw.panel_driver, pin_map, brightness=hw.brightness)
    except (ValueError, HardwareError) as exc:
        raise ConfigError(f"[panel] {exc}") from exc
    check_button_names(panel)
    return panel


def check_button_names(panel: Panel) -> None:
    """Every button the pin map names must be a station action; refuse the panel otherwise."""
    actions = {button.value for button in Button}
    unknown = sorted(set(panel.buttons.names) - actions)
    if unknown:
        panel.close()
        raise ConfigError(
            f"[panel] pin map buttons {', '.join(unknown)} are not station actions "
            f"({', '.join(sorted(actions))})"
        )


def connect_buttons(panel: Panel, press: Callable[[Button], None]) -> None:
    """Route the panel's button names to `press` (called on the driver's thread: keep it short)."""
    panel.buttons.on_button = lambda name: press(Button(name))


class Feedback:
    """Plays the light pattern and sound that go with each screen; never fails the station."""

    def __init__(self, light: StatusLight | None, buzzer: Buzzer | None) -> None:
        self._light = light
        self._buzzer = buzzer

    def screen_shown(self, screen: Screen) -> None:
        """Called after a screen is on the panel."""
        pattern, sound = FEEDBACK.get(type(screen), (None, None))
        if pattern is not None and self._light is not None:
            self._light.show(pattern)
        if sound is not None and self._buzzer is not None:
            self._buzzer.play(sound)
