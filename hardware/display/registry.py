"""Choosing a display by name from config: the one place that maps a `kind` to a driver.

    kind         driver                          options (all optional)
    -----------  ------------------------------  -----------------------------------------------
    simulated    SimulatedDisplay                width, height, mode, frames_dir
    ssd1306      luma.oled, I2C, mode "1"        width, height, rotate, port, address
    sh1106       luma.oled, I2C, mode "1"        width, height, rotate, port, address
    st7789       luma.lcd, SPI, mode "RGB"       width, height, rotate, port, device, dc, reset,
    ili9341      luma.lcd, SPI, mode "RGB"       backlight, backlight_active_high, bus_speed_hz,
                                                 bgr (ili9341)
    framebuffer  FramebufferDisplay              path, sysfs_dir, width, height, bits_per_pixel,
                                                 stride_bytes, bgr

An unknown kind or option is a `ValueError` naming the choices, raised at start, so a typo in
`station.toml` never leaves a station with a blank screen. `display_pins` says which GPIO pins a
configured display takes (its bus and its control lines), for the pin-map check; it opens nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from hardware.display.base import Display
from hardware.display.framebuffer import FramebufferDisplay
from hardware.display.luma import OLED_KINDS, TFT_KINDS, open_oled, open_tft
from hardware.display.simulated import CONFIGURED_KEEP_FRAMES, SimulatedDisplay

__all__ = ["DISPLAY_KINDS", "display_from_config", "display_pins"]

DISPLAY_KINDS = ("simulated", *OLED_KINDS, *TFT_KINDS, "framebuffer")

_OPTIONS: dict[str, frozenset[str]] = {
    "simulated": frozenset({"width", "height", "mode", "frames_dir"}),
    "oled": frozenset({"width", "height", "rotate", "port", "address"}),
    "tft": frozenset(
        {
            "width",
            "height",
            "rotate",
            "port",
            "device",
            "dc",
            "reset",
            "backlight",
            "backlight_active_high",
            "bus_speed_hz",
            "bgr",
        }
    ),
    "framebuffer": frozenset(
        {"path", "sysfs_dir", "width", "height", "bits_per_pixel", "stride_bytes", "bgr"}
    ),
}
# Defaults differ per controller: ST7789 modules are mostly 240x240, ILI9341 ones 320x240.
_TFT_DEFAULT_SIZE = {"st7789": (240, 240), "ili9341": (320, 240)}
_TFT_DEFAULT_PINS = {"dc": 24, "reset": 25, "backlight": 18}  # luma's defaults

# Pins each bus takes on the 40-pin header, as the standard overlays claim them
# (`dtparam=i2c_arm=on`, `dtparam=spi=on`, `dtoverlay=spi1-3cs`).
_I2C_PINS = {0: {0: "I2C0 SDA", 1: "I2C0 SCL"}, 1: {2: "I2C1 SDA", 3: "I2C1 SCL"}}
_SPI_PINS = {
    0: {7: "SPI0 CE1", 8: "SPI0 CE0", 9: "SPI0 MISO", 10: "SPI0 MOSI", 11: "SPI0 SCLK"},
    1: {
        16: "SPI1 CE2",
        17: "SPI1 CE1",
        18: "SPI1 CE0",
        19: "SPI1 MISO",
        20: "SPI1 MOSI",
        21: "SPI1 SCLK",
    },
}


def _family(kind: str) -> str:
    if kind in OLED_KINDS:
        return "oled"
    if kind in TFT_KINDS:
        return "tft"
    if kind in ("simulated", "framebuffer"):
        return kind
    raise ValueError(f"unknown display {kind!r}; choose one of {', '.join(DISPLAY_KINDS)}")


def _check_options(kind: str, options: Mapping[str, object]) -> None:
    allowed = _OPTIONS[_family(kind)]
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for display {kind!r}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def _int(options: Mapping[str, object], key: str, default: int) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"display option {key} must be an integer, not {value!r}")
    return value


def _pin(options: Mapping[str, object], key: str, default: int | None) -> int | None:
    # A line wired to nothing is written as -1 in TOML, which has no null.
    value = options.get(key, default)
    if value is None or value == -1:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"display option {key} must be a GPIO number or -1, not {value!r}")
    return value


def _opt_int(options: Mapping[str, object], key: str) -> int | None:
    return None if options.get(key) is None else _int(options, key, 0)


def _bool(options: Mapping[str, object], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"display option {key} must be true or false, not {value!r}")
    return value


def _path(options: Mapping[str, object], key: str) -> Path | None:
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, str | Path):
        raise ValueError(f"display option {key} must be a path, not {value!r}")
    return Path(value)


def display_from_config(kind: str, options: Mapping[str, object] | None = None) -> Display:
    """Build the display named `kind` with `options` (the `[display]` table, less `kind`).

    Raises:
        ValueError: unknown kind, unknown option, or an option of the wrong type.
        DisplayError: the device is missing or cannot be driven.
    """
    opts: Mapping[str, object] = options or {}
    _check_options(kind, opts)
    family = _family(kind)
    if family == "simulated":
        mode = opts.get("mode", "RGB")
        if mode not in ("1", "RGB"):
            raise ValueError(f"display option mode must be '1' or 'RGB', not {mode!r}")
        return SimulatedDisplay(
            _int(opts, "width", 320),
            _int(opts, "height", 240),
            "1" if mode == "1" else "RGB",
            _path(opts, "frames_dir"),
            keep_frames=CONFIGURED_KEEP_FRAMES,
        )
    if family == "oled":
        return open_oled(
            kind,
            width=_int(opts, "width", 128),
            height=_int(opts, "height", 64),
            rotate=_int(opts, "rotate", 0),
            port=_int(opts, "port", 1),
            address=_int(opts, "address", 0x3C),
        )
    if family == "tft":
        width, height = _TFT_DEFAULT_SIZE[kind]
        return open_tft(
            kind,
            width=_int(opts, "width", width),
            height=_int(opts, "height", height),
            rotate=_int(opts, "rotate", 0),
            port=_int(opts, "port", 0),
            device=_int(opts, "device", 0),
            dc=_int(opts, "dc", _TFT_DEFAULT_PINS["dc"]),
            reset=_pin(opts, "reset", _TFT_DEFAULT_PINS["reset"]),
            backlight=_pin(opts, "backlight", _TFT_DEFAULT_PINS["backlight"]),
            backlight_active_high=_bool(opts, "backlight_active_high", True),
            bus_speed_hz=_int(opts, "bus_speed_hz", 32_000_000),
            bgr=_bool(opts, "bgr", False),
        )
    return FramebufferDisplay(
        _path(opts, "path") or Path("/dev/fb0"),
        sysfs_dir=_path(opts, "sysfs_dir"),
        width=_opt_int(opts, "width"),
        height=_opt_int(opts, "height"),
        bits_per_pixel=_opt_int(opts, "bits_per_pixel"),
        stride_bytes=_opt_int(opts, "stride_bytes"),
        bgr=_bool(opts, "bgr", False),
    )


def display_pins(kind: str, options: Mapping[str, object] | None = None) -> dict[int, str]:
    """The BCM GPIO pins display `kind` takes, each with what it is used for ("SPI0 MOSI").

    Raises:
        ValueError: unknown kind or option.
    """
    opts: Mapping[str, object] = options or {}
    _check_options(kind, opts)
    family = _family(kind)
    if family == "oled":
        # Other I2C buses (i2c-gpio overlays) are on pins the config names elsewhere.
        return dict(_I2C_PINS.get(_int(opts, "port", 1), {}))
    if family != "tft":
        return {}
    pins = dict(_SPI_PINS.get(_int(opts, "port", 0), {}))
    for role in ("dc", "reset", "backlight"):
        pin = _pin(opts, role, _TFT_DEFAULT_PINS[role])
        if pin is None:
            continue
        use = f"{kind} {role.upper() if role == 'dc' else role}"
        if pin in pins:
            raise ValueError(f"display {kind!r}: GPIO{pin} cannot be {use}, it is {pins[pin]}")
        pins[pin] = use
    return pins
