"""Displays driven through luma (luma.oled, luma.lcd): the `Display` port over a luma device.

`LumaDisplay` adapts any luma device (a real driver, or `luma.core.device.dummy` in tests);
`open_oled` and `open_tft` build the drivers PullPrint supports:

* SSD1306 / SH1106 128x64 monochrome OLEDs on I2C (mode "1");
* ST7789 (240x240, 320x240) and ILI9341 (320x240) colour TFTs on SPI (mode "RGB").

luma's SPI interface drives the D/C and reset lines through an RPi.GPIO-style object, and its TFT
drivers a backlight through RPi.GPIO too; here both go through gpiozero (`_GpiozeroGPIO`,
`_GpiozeroBacklight`), so a station needs no RPi.GPIO (which does not work on a Pi 5) and tests run
the real luma code on gpiozero's `MockFactory`. luma and gpiozero are imported only when a display
is opened, so this module imports on a machine without them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, cast

from PIL import Image

from hardware.display.base import DisplayMode
from hardware.errors import DisplayError

__all__ = ["LumaDeviceLike", "LumaDisplay", "open_oled", "open_tft"]

logger = logging.getLogger(__name__)

OLED_KINDS = ("ssd1306", "sh1106")
TFT_KINDS = ("st7789", "ili9341")


class LumaDeviceLike(Protocol):
    """The part of a `luma.core.device.device` the adapter uses."""

    @property
    def size(self) -> tuple[int, int]: ...
    @property
    def mode(self) -> str: ...
    def display(self, image: Image.Image) -> None: ...
    def contrast(self, level: int) -> None: ...
    def cleanup(self) -> None: ...


class LumaDisplay:
    """A `Display` over a luma device: size and mode come from the device.

    Args:
        device: an open luma device.
        on_close: releases what the device does not own (gpiozero pins), after `device.cleanup`.
    """

    def __init__(self, device: LumaDeviceLike, on_close: Callable[[], None] | None = None) -> None:
        if device.mode not in ("1", "RGB"):
            raise DisplayError(f"luma device mode {device.mode!r} is not supported (1 or RGB)")
        self.device = device
        self._on_close = on_close
        self._closed = False

    @property
    def size(self) -> tuple[int, int]:
        """Width and height in pixels, after the device's rotation."""
        width, height = self.device.size
        return (width, height)

    @property
    def mode(self) -> DisplayMode:
        """ "1" for the OLEDs, "RGB" for the TFTs."""
        return cast(DisplayMode, self.device.mode)

    def show(self, image: Image.Image) -> None:
        """Send one frame to the panel.

        Raises:
            DisplayError: the frame has the wrong size, or the bus failed (I2C NACK, SPI error).
        """
        if self._closed:
            raise DisplayError("the display is closed")
        if image.size != self.size:
            raise DisplayError(f"frame is {image.size}, display is {self.size}")
        frame = image if image.mode == self.mode else image.convert(self.mode)
        try:
            self.device.display(frame)
        except OSError as exc:
            raise DisplayError(f"display bus error: {exc}") from exc

    def contrast(self, level: int) -> None:
        """Set the contrast, 0-255 (OLEDs; the TFT drivers accept and ignore it)."""
        if not 0 <= level <= 255:
            raise ValueError("contrast is 0-255")
        try:
            self.device.contrast(level)
        except OSError as exc:
            raise DisplayError(f"display bus error: {exc}") from exc

    def backlight(self, on: bool) -> None:
        """Switch the backlight of a TFT on or off (no effect on an OLED, which has none)."""
        light = getattr(self.device, "backlight", None)
        if callable(light):
            light(on)

    def close(self) -> None:
        """Blank the panel (luma's cleanup switches it off and clears it), then free the pins."""
        if self._closed:
            return
        self._closed = True
        try:
            self.device.cleanup()
        except OSError as exc:
            logger.warning("display cleanup failed: %s", exc)
        finally:
            if self._on_close is not None:
                self._on_close()


def open_oled(
    kind: str,
    *,
    width: int = 128,
    height: int = 64,
    rotate: int = 0,
    port: int = 1,
    address: int = 0x3C,
    serial_interface: object | None = None,
) -> LumaDisplay:
    """Open an SSD1306 or SH1106 OLED on I2C bus `port` at `address`.

    `serial_interface` replaces the I2C bus (tests pass a recording one).

    Raises:
        DisplayError: no device answers, or the size is not one the controller supports.
    """
    if kind not in OLED_KINDS:
        raise ValueError(f"unknown OLED {kind!r}; choose one of {', '.join(OLED_KINDS)}")
    import luma.core.error  # noqa: PLC0415
    import luma.oled.device  # noqa: PLC0415
    from luma.core.interface.serial import i2c  # noqa: PLC0415

    try:
        serial = (
            serial_interface if serial_interface is not None else i2c(port=port, address=address)
        )
        driver = getattr(luma.oled.device, kind)
        device = driver(serial, width=width, height=height, rotate=rotate)
    except (luma.core.error.Error, OSError) as exc:
        raise DisplayError(
            f"cannot open {kind} on I2C bus {port} at {address:#04x}: {exc}"
        ) from exc
    return LumaDisplay(cast(LumaDeviceLike, device))


class _GpiozeroGPIO:
    """The corner of the RPi.GPIO API that luma's SPI interface uses, on gpiozero outputs."""

    BCM, OUT, IN, LOW, HIGH = 11, 0, 1, 0, 1

    def __init__(self) -> None:
        self._pins: dict[int, object] = {}

    def setmode(self, mode: int) -> None:
        """BCM numbering is gpiozero's own."""

    def setwarnings(self, enabled: bool) -> None:
        """gpiozero warns through the warnings module."""

    def setup(self, pin: int, direction: int, initial: int = 0) -> None:
        """Claim `pin` as an output."""
        from gpiozero import DigitalOutputDevice  # noqa: PLC0415

        self._pins[pin] = DigitalOutputDevice(pin, initial_value=bool(initial))

    def output(self, pin: int, value: int) -> None:
        """Drive `pin` high (non-zero) or low."""
        device = self._pins[pin]
        device.value = 1 if value else 0  # type: ignore[attr-defined]

    def cleanup(self, pins: int | list[int] | None = None) -> None:
        """Release `pins` (all when None)."""
        chosen = list(self._pins) if pins is None else [pins] if isinstance(pins, int) else pins
        for pin in chosen:
            device = self._pins.pop(pin, None)
            if device is not None:
                device.close()  # type: ignore[attr-defined]


class _GpiozeroBacklight:
    """A luma backlight (callable with on/off, plus `cleanup`) on a gpiozero output pin."""

    def __init__(self, pin: int, active_high: bool = True) -> None:
        from gpiozero import DigitalOutputDevice  # noqa: PLC0415

        self._device = DigitalOutputDevice(pin, active_high=active_high)

    def __call__(self, on: bool) -> None:
        self._device.value = 1 if on else 0

    @property
    def is_lit(self) -> bool:
        """True while the backlight is on."""
        return bool(self._device.value)

    def cleanup(self) -> None:
        """Release the pin."""
        self._device.close()


class _NoBacklight:
    """For panels whose backlight is wired to 3.3 V: luma insists on having one."""

    def __call__(self, on: bool) -> None:
        """Nothing to switch."""


def open_tft(
    kind: str,
    *,
    width: int = 320,
    height: int = 240,
    rotate: int = 0,
    port: int = 0,
    device: int = 0,
    dc: int = 24,
    reset: int | None = 25,
    backlight: int | None = 18,
    backlight_active_high: bool = True,
    bus_speed_hz: int = 32_000_000,
    bgr: bool = False,
    spidev: object | None = None,
) -> LumaDisplay:
    """Open an ST7789 or ILI9341 TFT on SPI `port`.`device` with D/C, reset and backlight pins.

    `spidev` replaces the `spidev.SpiDev` object (tests pass one that records what is written);
    the D/C, reset and backlight pins go through gpiozero's current pin factory.

    Raises:
        DisplayError: the SPI device is missing, or the size is not one the controller supports.
    """
    if kind not in TFT_KINDS:
        raise ValueError(f"unknown TFT {kind!r}; choose one of {', '.join(TFT_KINDS)}")
    import luma.core.error  # noqa: PLC0415
    import luma.lcd.device  # noqa: PLC0415
    from luma.core.interface.serial import spi  # noqa: PLC0415

    gpio = _GpiozeroGPIO()
    light: _GpiozeroBacklight | _NoBacklight = _NoBacklight()
    try:
        if backlight is not None:
            light = _GpiozeroBacklight(backlight, backlight_active_high)
        serial = spi(
            spi=spidev,
            gpio=gpio,
            port=port,
            device=device,
            gpio_DC=dc,
            gpio_RST=reset,
            bus_speed_hz=bus_speed_hz,
        )
        options: dict[str, object] = {"width": width, "height": height, "rotate": rotate}
        if kind == "ili9341":
            options["bgr"] = bgr
        driver = getattr(luma.lcd.device, kind)
        tft = driver(serial, backlight=light, **options)
    except (luma.core.error.Error, OSError, ImportError) as exc:
        # ImportError: luma's SPI interface needs the `spidev` package, absent off a Pi.
        _release(light, gpio)
        raise DisplayError(f"cannot open {kind} on SPI {port}.{device}: {exc}") from exc
    except Exception:
        _release(light, gpio)  # a pin already in use (gpiozero's GPIOPinInUse), a bad size, ...
        raise
    return LumaDisplay(cast(LumaDeviceLike, tft), on_close=lambda: _release(light, gpio))


def _release(light: _GpiozeroBacklight | _NoBacklight, gpio: _GpiozeroGPIO) -> None:
    if isinstance(light, _GpiozeroBacklight):
        light.cleanup()
    gpio.cleanup()
