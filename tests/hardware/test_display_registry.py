"""Choosing a display by name: every kind, unknown kinds and options, through to the drivers."""

from pathlib import Path

import pytest

from hardware.display import (
    DISPLAY_KINDS,
    FramebufferDisplay,
    SimulatedDisplay,
    display_from_config,
)
from hardware.errors import DisplayError


def test_the_kinds() -> None:
    assert DISPLAY_KINDS == ("simulated", "ssd1306", "sh1106", "st7789", "ili9341", "framebuffer")


def test_simulated(tmp_path: Path) -> None:
    display = display_from_config(
        "simulated", {"width": 128, "height": 64, "mode": "1", "frames_dir": str(tmp_path)}
    )
    assert isinstance(display, SimulatedDisplay)
    assert display.size == (128, 64) and display.mode == "1" and display.out_dir == tmp_path
    assert display_from_config("simulated").size == (320, 240)


def test_framebuffer(tmp_path: Path) -> None:
    device = tmp_path / "fb0"
    device.write_bytes(b"")
    display = display_from_config(
        "framebuffer", {"path": str(device), "width": 16, "height": 8, "bits_per_pixel": 32}
    )
    assert isinstance(display, FramebufferDisplay) and display.size == (16, 8)
    display.close()


def test_unknown_kinds_and_options_name_the_choices() -> None:
    with pytest.raises(
        ValueError,
        match="unknown display 'epaper'; choose one of simulated, ssd1306, sh1106, st7789, "
        "ili9341, framebuffer",
    ):
        display_from_config("epaper", {})
    with pytest.raises(
        ValueError, match=r"unknown option\(s\) dc for display 'ssd1306'; allowed: address, height"
    ):
        display_from_config("ssd1306", {"dc": 25})
    with pytest.raises(ValueError, match="width must be an integer"):
        display_from_config("simulated", {"width": "wide"})
    with pytest.raises(ValueError, match="mode must be"):
        display_from_config("simulated", {"mode": "L"})
    with pytest.raises(ValueError, match="bgr must be true or false"):
        display_from_config("framebuffer", {"bgr": 1})
    with pytest.raises(ValueError, match="reset must be a GPIO number or -1"):
        display_from_config("st7789", {"reset": "none"})


def test_real_drivers_report_missing_buses_as_display_errors() -> None:
    # No /dev/i2c-* and no spidev on CI machines: the drivers run up to the bus and say so.
    with pytest.raises(DisplayError, match="cannot open sh1106 on I2C bus 1 at 0x3d"):
        display_from_config("sh1106", {"address": 0x3D})


def test_tft_through_the_registry_on_mock_pins() -> None:
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        with pytest.raises(DisplayError, match=r"cannot open ili9341 on SPI 1\.0"):
            display_from_config("ili9341", {"port": 1, "dc": 25, "reset": -1, "backlight": -1})
        # The failed open released its pins.
        assert all(pin.function == "input" for pin in factory.pins.values())
    finally:
        factory.reset()
        factory.close()
        Device.pin_factory = previous
