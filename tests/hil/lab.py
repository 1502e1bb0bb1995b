"""Lab descriptions for the hardware-in-the-loop suite, and the lab the suite runs against.

A lab file (TOML) says what is wired to the rig:

    [lab]      name; simulated = true for the CI lab
    [reader]   kind (bridge, serial, wedge, pcsc) and that reader's options, as in station.toml
    [badge]    the badge the rig taps: technology = "mifare" + uid = "hex", or
               technology = "h10301" / "corp1000" + facility + number
    [panel]    pin_map (a bundled name or a file); optional: no buttons, light or buzzer
    [display]  kind (ssd1306, sh1106, st7789, ili9341, framebuffer) and its options
    [printer]  uri of the rig's printer (ipp://, ipps://, socket://)

`Lab` opens what the station cannot open by itself in a test (the display object, and in the
simulated lab the pty reader, mock pins and virtual printer) and does what a person does at a
real rig: tap the badge, press a button. On a real rig those are prompts to the operator (run
pytest with `-s`); in the simulated lab they drive the firmware on a pty and gpiozero's mock
pins. The station code under test is the same either way.
"""

from __future__ import annotations

import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardware.display.base import Display
from hardware.readers.base import Credential
from hardware.readers.formats import corp1000, h10301, mifare_uid
from hardware.readers.registry import READER_KINDS

SIMULATED_LAB = Path(__file__).parent / "labs" / "simulated.toml"
SIM_PORT = "sim:firmware-pty"
SIM_PRINTER = "sim:virtual-printer"
_SECTIONS = {"lab", "reader", "badge", "panel", "display", "printer"}


class LabFileError(ValueError):
    """The lab file is missing, malformed, or names something unknown."""


@dataclass(frozen=True)
class LabSpec:
    """What a lab file says."""

    name: str
    simulated: bool
    reader_kind: str
    reader_options: dict[str, Any]
    badge: Credential
    pin_map: str | None
    display_kind: str
    display_options: dict[str, Any] = field(default_factory=dict)
    printer_uri: str | None = None


def load_lab(path: Path) -> LabSpec:
    """Read and check a lab file.

    Raises:
        LabFileError: naming the file and what is wrong.
    """
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LabFileError(f"lab file {path}: {exc}") from exc
    unknown = sorted(set(data) - _SECTIONS)
    if unknown:
        raise LabFileError(f"lab file {path}: unknown section(s) {', '.join(unknown)}")
    for needed in ("reader", "badge", "display"):
        if not isinstance(data.get(needed), dict):
            raise LabFileError(f"lab file {path}: [{needed}] is required")
    lab = data.get("lab", {})
    reader = dict(data["reader"])
    kind = reader.pop("kind", None)
    if kind not in READER_KINDS or kind == "simulated":
        raise LabFileError(f"lab file {path}: [reader] kind must be one of {READER_KINDS[1:]}")
    display = dict(data["display"])
    display_kind = display.pop("kind", None)
    if not isinstance(display_kind, str):
        raise LabFileError(f"lab file {path}: [display] kind is required")
    printer = data.get("printer", {})
    simulated = bool(lab.get("simulated", False))
    if not simulated and not isinstance(printer.get("uri"), str):
        raise LabFileError(f"lab file {path}: [printer] uri is required for a real rig")
    return LabSpec(
        name=str(lab.get("name", path.stem)),
        simulated=simulated,
        reader_kind=kind,
        reader_options=reader,
        badge=_badge(path, data["badge"]),
        pin_map=data.get("panel", {}).get("pin_map"),
        display_kind=display_kind,
        display_options=display,
        printer_uri=printer.get("uri"),
    )


def _badge(path: Path, table: dict[str, Any]) -> Credential:
    technology = table.get("technology")
    try:
        if technology == "mifare":
            return mifare_uid(bytes.fromhex(str(table["uid"])))
        if technology == "h10301":
            return h10301(int(table["facility"]), int(table["number"]))
        if technology == "corp1000":
            return corp1000(int(table["facility"]), int(table["number"]))
    except (KeyError, ValueError) as exc:
        raise LabFileError(f"lab file {path}: [badge] {exc}") from exc
    raise LabFileError(f"lab file {path}: [badge] technology must be mifare, h10301 or corp1000")


class Lab:
    """A lab in use: the parts the suite opens, and the hands that tap and press."""

    def __init__(self, spec: LabSpec) -> None:
        self.spec = spec
        self._firmware: Any = None
        self._pins: Any = None
        self._previous_factory: Any = None
        self.luma_device: Any = None  # the luma device behind the display (dummy when simulated)

    # ---- life cycle ----

    def open(self) -> Lab:
        if self.spec.simulated:
            from gpiozero import Device
            from gpiozero.pins.mock import MockFactory, MockPWMPin

            from tests.support.firmware_fakes import FirmwareOnPty

            self._firmware = FirmwareOnPty()
            self._previous_factory = Device.pin_factory
            self._pins = MockFactory(pin_class=MockPWMPin)
            Device.pin_factory = self._pins
        return self

    def close(self) -> None:
        if self._firmware is not None:
            self._firmware.close()
            self._firmware = None
        if self._pins is not None:
            from gpiozero import Device

            self._pins.reset()
            self._pins.close()
            Device.pin_factory = self._previous_factory
            self._pins = None

    # ---- what the station is given ----

    def reader_toml(self) -> str:
        """The `[reader]` table for station.toml."""
        options = dict(self.spec.reader_options)
        if self._firmware is not None and options.get("port") == SIM_PORT:
            options["port"] = self._firmware.port_path
        lines = [f"{key} = {_toml_value(value)}" for key, value in sorted(options.items())]
        return "[reader]\n" + "".join(f"{line}\n" for line in lines)

    def panel_toml(self) -> str:
        """The `[panel]` table (gpiozero driver, the lab's pin map), or nothing."""
        if self.spec.pin_map is None:
            return ""
        return f'[panel]\ndriver = "gpio"\npin_map = "{self.spec.pin_map}"\n'

    def open_display(self) -> Display:
        """The lab's display: luma's dummy device when simulated, the real panel otherwise."""
        if self.spec.simulated:
            from luma.core.device import dummy

            from hardware.display.luma import LumaDisplay

            width = int(self.spec.display_options.get("width", 128))
            height = int(self.spec.display_options.get("height", 64))
            mode = "1" if self.spec.display_kind in ("ssd1306", "sh1106") else "RGB"
            self.luma_device = dummy(width=width, height=height, mode=mode)
            return LumaDisplay(self.luma_device)
        from hardware.display.registry import display_from_config

        display = display_from_config(self.spec.display_kind, self.spec.display_options)
        self.luma_device = getattr(display, "device", None)
        return display

    # ---- hands ----

    def tap(self, badge: Credential | None = None) -> float:
        """Present the lab badge (lift it after a moment); the monotonic time of the tap."""
        credential = badge or self.spec.badge
        if self._firmware is not None:
            if credential.technology != "mifare":
                raise LabFileError("the simulated lab's bridge reads MIFARE badges only")
            at = time.monotonic()
            self._firmware.chip.present(credential.raw)
            time.sleep(0.3)
            self._firmware.chip.present(None)
            return at
        _ask("Tap the lab badge on the reader now, then lift it.")
        return time.monotonic()

    def press(self, button: str) -> float:
        """Press and release the panel button with this pin-map name ("print-all", ...)."""
        if self._pins is not None:
            from hardware.panel.pinmap import load_pin_map

            assert self.spec.pin_map is not None, "the lab has no panel"
            pin_number = next(
                b.pin for b in load_pin_map(self.spec.pin_map).buttons if b.name == button
            )
            pin = self._pins.pin(pin_number)
            at = time.monotonic()
            pin.drive_low()
            time.sleep(0.05)
            pin.drive_high()
            return at
        _ask(f"Press the {button!r} button now.")
        return time.monotonic()

    @property
    def pins(self) -> Any:
        """gpiozero's MockFactory in the simulated lab (None on a real rig)."""
        return self._pins

    @property
    def firmware(self) -> Any:
        """The firmware on a pty in the simulated lab (None on a real rig)."""
        return self._firmware


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ask(prompt: str) -> None:
    # On a real rig a person does it; the tests then wait (HIL_TIMEOUT_S) for the station to
    # react. The prompt goes to the real stdout, past pytest's capture.
    print(f"\n[HIL] {prompt}", file=sys.__stdout__, flush=True)
