"""luma displays: the real luma.oled / luma.lcd drivers run on a recording serial interface (I2C)
or on luma's real SPI interface over a fake spidev, with D/C, reset and backlight on gpiozero's
MockFactory pins; rendered station screens go through unchanged in size and mode."""

from collections.abc import Iterator

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from luma.core.device import dummy
from PIL import Image

from hardware.display.luma import LumaDisplay, open_oled, open_tft
from hardware.errors import DisplayError
from station.render import render
from station.samples import sample_screens

# luma.oled 3.16 still calls Image.getdata, deprecated in Pillow 13 and gone in Pillow 14: the
# station extra must keep pillow < 14 until luma moves on. Known; not this code's to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Image.Image.getdata is deprecated:DeprecationWarning"
)


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        factory.close()
        Device.pin_factory = previous


class RecordingSerial:
    """A luma serial interface that keeps every command and data call (noop() keeps nothing)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.cleaned_up = False

    def command(self, *cmd: int) -> None:
        self.calls.append(("command", bytes(cmd)))

    def data(self, data: list[int]) -> None:
        self.calls.append(("data", bytes(data)))

    def cleanup(self) -> None:
        self.cleaned_up = True

    def take(self) -> list[tuple[str, bytes]]:
        calls, self.calls = self.calls, []
        return calls


class FakeSpiDev:
    """Quacks like spidev.SpiDev; records each write with the D/C line's level at that moment."""

    def __init__(self, factory: MockFactory, dc: int) -> None:
        self._dc = factory.pin(dc)
        self.writes: list[tuple[str, bytes]] = []
        self.opened: tuple[int, int] | None = None
        self.closed = False
        self.max_speed_hz = 0

    def open(self, port: int, device: int) -> None:
        self.opened = (port, device)

    def writebytes(self, data: list[int]) -> None:
        self.writes.append(("data" if self._dc.state else "command", bytes(data)))

    def close(self) -> None:
        self.closed = True

    def take(self) -> list[tuple[str, bytes]]:
        writes, self.writes = self.writes, []
        return writes


def pixel_data(calls: list[tuple[str, bytes]], ramwr: int) -> bytes:
    """Every pixel byte sent after any memory-write command."""
    out, writing = [], False
    for kind, data in calls:
        if kind == "command":
            writing = data == bytes([ramwr])
        elif writing:
            out.append(data)
    return b"".join(out)


def frame_data(calls: list[tuple[str, bytes]], ramwr: int) -> bytes:
    """The pixel bytes sent after the last memory-write command."""
    last = max(
        i for i, (kind, data) in enumerate(calls) if kind == "command" and data == bytes([ramwr])
    )
    return b"".join(data for kind, data in calls[last + 1 :] if kind == "data")


# ---- SSD1306 / SH1106 on I2C ----


def test_ssd1306_sends_its_init_and_a_page_ordered_frame() -> None:
    serial = RecordingSerial()
    display = open_oled("ssd1306", serial_interface=serial)
    assert display.size == (128, 64) and display.mode == "1"
    init = serial.take()
    assert init[0] == ("command", init[0][1]) and init[0][1][0] == 0xAE  # DISPLAYOFF first
    assert init[-1] == ("command", b"\xaf")  # DISPLAYON last
    frame = Image.new("1", (128, 64), 0)
    frame.putpixel((0, 0), 1)  # page 0, column 0, bit 0
    frame.putpixel((127, 63), 1)  # page 7, column 127, bit 7
    display.show(frame)
    (cmd, window), (kind, buffer) = serial.take()
    assert cmd == "command" and window == bytes([0x21, 0, 127, 0x22, 0, 7])
    assert kind == "data" and len(buffer) == 1024
    assert buffer[0] == 0x01 and buffer[1023] == 0x80 and sum(buffer) == 0x81
    display.contrast(0x40)
    assert serial.take() == [("command", bytes([0x81, 0x40]))]
    display.close()
    calls = serial.take()
    assert ("command", b"\xae") in calls and serial.cleaned_up  # switched off, bus released
    with pytest.raises(DisplayError, match="closed"):
        display.show(frame)


def test_sh1106_writes_page_by_page_with_its_column_offset() -> None:
    serial = RecordingSerial()
    display = open_oled("sh1106", serial_interface=serial)
    serial.take()
    display.show(Image.new("1", (128, 64), 1))
    calls = serial.take()
    pages = [data for kind, data in calls if kind == "data"]
    assert len(pages) == 8 and all(page == b"\xff" * 128 for page in pages)
    # Each page starts with "page address" 0xB0+n and the column offset of 2 (0x02, 0x10).
    addresses = [data for kind, data in calls if kind == "command"]
    assert addresses[0] == bytes([0xB0, 0x02, 0x10]) and addresses[7][0] == 0xB7
    display.close()


@pytest.mark.parametrize("name", ["idle", "jobs", "pin", "error-long"])
def test_station_screens_go_through_an_oled_unchanged(name: str) -> None:
    serial = RecordingSerial()
    display = open_oled("ssd1306", serial_interface=serial)
    image = render(sample_screens()[name], display.size, display.mode)
    assert image.size == display.size and image.mode == display.mode
    serial.take()
    display.show(image)
    buffer = serial.take()[-1][1]
    # Decode the page-ordered buffer back into pixels: it is the frame, bit for bit.
    lit = {
        (x, page * 8 + bit)
        for page in range(8)
        for x in range(128)
        for bit in range(8)
        if buffer[page * 128 + x] >> bit & 1
    }
    assert lit == {(x, y) for y in range(64) for x in range(128) if image.getpixel((x, y))}
    display.close()


def test_an_unsupported_oled_size_or_kind_is_refused() -> None:
    with pytest.raises(DisplayError, match="Unsupported display mode: 128 x 48"):
        open_oled("ssd1306", height=48, serial_interface=RecordingSerial())
    with pytest.raises(ValueError, match="choose one of ssd1306, sh1106"):
        open_oled("ssd1351", serial_interface=RecordingSerial())


def test_a_missing_i2c_bus_is_a_display_error() -> None:
    with pytest.raises(DisplayError, match="cannot open ssd1306 on I2C bus 7 at 0x3c"):
        open_oled("ssd1306", port=7)


# ---- ST7789 / ILI9341 on SPI ----


def test_st7789_frames_are_written_as_rgb_after_the_window(mock_pins: MockFactory) -> None:
    spi = FakeSpiDev(mock_pins, dc=25)
    display = open_tft("st7789", width=240, height=240, dc=25, reset=27, backlight=24, spidev=spi)
    assert spi.opened == (0, 0) and spi.max_speed_hz == 32_000_000
    assert display.size == (240, 240) and display.mode == "RGB"
    assert mock_pins.pin(24).state  # backlight on
    assert mock_pins.pin(27).state  # out of reset
    init = spi.take()
    assert ("command", b"\x11") in init and ("command", b"\x29") in init  # SLPOUT, DISPON
    image = render(sample_screens()["jobs"], display.size, display.mode)
    display.show(image)
    calls = spi.take()
    assert calls[:2] == [("command", b"\x2a"), ("data", bytes([0, 0, 0, 239]))]  # CASET
    assert frame_data(calls, 0x2C) == image.tobytes()  # unchanged, pixel for pixel
    display.backlight(False)
    assert not mock_pins.pin(24).state
    display.close()
    assert spi.closed and not mock_pins.pin(24).state


def test_st7789_320x240_and_no_backlight_pin(mock_pins: MockFactory) -> None:
    spi = FakeSpiDev(mock_pins, dc=24)
    display = open_tft("st7789", width=320, height=240, backlight=None, spidev=spi)
    spi.take()
    display.show(Image.new("RGB", (320, 240), (0, 0, 255)))
    calls = spi.take()
    assert calls[1] == ("data", bytes([0, 0, 0x01, 0x3F]))  # columns 0..319
    assert frame_data(calls, 0x2C) == bytes([0, 0, 255]) * (320 * 240)
    display.backlight(True)  # nothing to switch: no error
    display.close()


def test_ili9341_sends_only_what_changed(mock_pins: MockFactory) -> None:
    spi = FakeSpiDev(mock_pins, dc=24)
    display = open_tft("ili9341", spidev=spi)
    assert display.size == (320, 240)
    spi.take()
    display.show(Image.new("RGB", (320, 240), (255, 0, 0)))
    first = pixel_data(spi.take(), 0x2C)
    assert first == b"\xff\x00\x00" * (320 * 240)
    changed = Image.new("RGB", (320, 240), (255, 0, 0))
    changed.putpixel((5, 5), (0, 255, 0))
    display.show(changed)
    second = pixel_data(spi.take(), 0x2C)
    assert second == b"\x00\xff\x00"  # one segment of one pixel
    display.close()


def test_tft_pins_in_use_or_a_bad_size_release_everything(mock_pins: MockFactory) -> None:
    with pytest.raises(DisplayError, match="Unsupported display mode: 240 x 135"):
        open_tft("ili9341", width=240, height=135, spidev=FakeSpiDev(mock_pins, dc=24))
    # The failed attempt released its pins: the same pins open fine now.
    open_tft("ili9341", spidev=FakeSpiDev(mock_pins, dc=24)).close()


def test_a_tft_without_spidev_is_a_display_error(mock_pins: MockFactory) -> None:
    with pytest.raises(DisplayError, match=r"cannot open st7789 on SPI 0\.0"):
        open_tft("st7789")


# ---- the adapter on luma's dummy device ----


@pytest.mark.parametrize(
    ("size", "mode"), [((128, 64), "1"), ((320, 240), "RGB"), ((240, 240), "RGB")]
)
def test_every_screen_goes_through_a_dummy_device_unchanged(
    size: tuple[int, int], mode: str
) -> None:
    device = dummy(width=size[0], height=size[1], mode=mode)
    display = LumaDisplay(device)
    assert display.size == size and display.mode == mode
    for screen in sample_screens().values():
        image = render(screen, display.size, display.mode)
        display.show(image)
        assert device.image.size == size and device.image.mode == mode
        assert device.image.tobytes() == image.tobytes()
    display.close()


def test_frames_of_another_mode_are_converted_and_wrong_sizes_refused() -> None:
    device = dummy(width=128, height=64, mode="1")
    display = LumaDisplay(device)
    display.show(Image.new("RGB", (128, 64), "white"))
    assert device.image.mode == "1" and device.image.getextrema() == (255, 255)
    with pytest.raises(DisplayError, match="display is"):
        display.show(Image.new("1", (128, 32)))
    with pytest.raises(ValueError, match="0-255"):
        display.contrast(300)
    with pytest.raises(DisplayError, match="not supported"):
        LumaDisplay(dummy(mode="RGBA"))


def test_a_bus_error_while_showing_is_a_display_error() -> None:
    class FailingSerial(RecordingSerial):
        def data(self, data: list[int]) -> None:
            raise OSError(121, "Remote I/O error")  # an I2C NACK: the OLED came loose

    serial = FailingSerial()
    serial.data = RecordingSerial().data  # type: ignore[method-assign]  # let the init through
    display = open_oled("ssd1306", serial_interface=serial)
    del serial.data  # from now on the bus fails
    with pytest.raises(DisplayError, match="Remote I/O error"):
        display.show(Image.new("1", (128, 64)))
