"""Pin maps: the bundled ones load, and every kind of mistake is refused naming the key and pin."""

import tomllib
from pathlib import Path

import pytest

from hardware.display.registry import display_pins
from hardware.panel.errors import PinMapError
from hardware.panel.pinmap import available_pin_maps, load_pin_map, parse_pin_map

BASE = """
name = "test"
[buttons]
print-all = 5
up = 6
[status_light]
red = 17
green = 27
blue = 22
[buzzer]
pin = 18
"""


def parse(text: str, **kwargs) -> object:
    return parse_pin_map(tomllib.loads(text), source="test.toml", **kwargs)


def test_the_bundled_pin_maps_load() -> None:
    names = available_pin_maps()
    assert {"generic-4button", "waveshare-lcd-hat-1in3"} <= set(names)
    generic = load_pin_map("generic-4button")
    assert generic.display_kind == "ssd1306"
    assert generic.event_names == (
        "print-all",
        "up",
        "cancel",
        "down",
        "delete",
        "select",
        "print-selected",
    )
    hat = load_pin_map("waveshare-lcd-hat-1in3")
    assert hat.display_kind == "st7789"
    assert hat.display_options == {"port": 0, "device": 0, "dc": 25, "reset": 27, "backlight": 24}
    assert hat.buzzer is not None and hat.buzzer.kind == "active"
    assert hat.status_light is not None and hat.status_light.common_anode


def test_the_bundled_maps_cover_every_station_button() -> None:
    # The station's Button values, spelled out: hardware may not import station, tests may.
    from station.workflow import Button

    wanted = {button.value for button in Button}
    for name in available_pin_maps():
        assert set(load_pin_map(name).event_names) == wanted, name


def test_a_pin_map_loads_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(BASE)
    pin_map = load_pin_map(path)
    assert [b.name for b in pin_map.buttons] == ["print-all", "up"]
    assert load_pin_map(str(path)).name == "test"


def test_an_unknown_name_lists_the_bundled_maps() -> None:
    with pytest.raises(PinMapError, match="bundled maps: generic-4button"):
        load_pin_map("no-such-board")


def test_bad_toml_is_a_pin_map_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[buttons\n")
    with pytest.raises(PinMapError, match="not valid TOML"):
        load_pin_map(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "buzzr = 1\n", "unknown key buzzer.buzzr"),
        (BASE.replace('name = "test"', 'name = "test"\nleds = 1'), "unknown key leds"),
        (
            BASE.replace("up = 6", "up = { pin = 6, hold_time = 1 }"),
            r"unknown key buttons\.up\.hold_time",
        ),
        (
            BASE.replace("pin = 18", "pin = 5"),
            "GPIO5 is used twice: by buttons.print-all and by buzzer.pin",
        ),
        (BASE.replace("blue = 22", "blue = 17"), "GPIO17 is used twice"),
        (BASE.replace("up = 6", "up = 40"), "buttons.up uses pin 40, out of range.*not header pin"),
        (
            BASE.replace("up = 6", "up = 1"),
            "buttons.up uses GPIO1, which is kept for the HAT ID EEPROM",
        ),
        (BASE.replace("up = 6", "up = -3"), "out of range"),
        (BASE.replace("up = 6", 'up = "six"'), "buttons.up must be a BCM GPIO number"),
        (BASE.replace("up = 6", "Up = 6"), "buttons.Up: a button name"),
        (BASE.replace("[buzzer]\npin = 18", '[buzzer]\npin = 18\nkind = "loud"'), "buzzer.kind"),
        (BASE.replace("blue = 22\n", ""), "status_light.blue is missing"),
        ('name = "x"\n[buttons]\n', "at least one button"),
        ("[buttons]\nup = 6\n", "name is missing"),
        (BASE.replace("up = 6", "up = { pin = 6, hold_s = 0 }"), r"buttons\.up\.hold_s"),
    ],
)
def test_mistakes_are_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(PinMapError, match=message):
        parse(text)


def test_pins_taken_by_the_maps_own_display_are_refused() -> None:
    text = BASE.replace("up = 6", "up = 3") + '[display]\nkind = "ssd1306"\nport = 1\n'
    with pytest.raises(
        PinMapError, match=r"buttons\.up uses GPIO3, which the display \(I2C1 SCL\)"
    ):
        parse(text)


def test_pins_taken_by_the_stations_display_are_refused() -> None:
    # The map has no display; the station is configured with an ST7789 on SPI0.
    with pytest.raises(PinMapError, match=r"buttons\.up uses GPIO10, .*SPI0 MOSI"):
        parse(BASE.replace("up = 6", "up = 10"), display_kind="st7789", display_options={})
    with pytest.raises(PinMapError, match=r"buzzer\.pin uses GPIO18, .*st7789 backlight"):
        parse(BASE, display_kind="st7789")
    # With the backlight on another line (or none), the same map is fine.
    pin_map = parse(BASE, display_kind="st7789", display_options={"backlight": -1})
    assert pin_map.display_kind == "st7789"


def test_station_display_options_override_the_maps_wiring() -> None:
    hat = load_pin_map("waveshare-lcd-hat-1in3", display_options={"backlight": 4})
    assert hat.display_options["backlight"] == 4 and hat.display_options["dc"] == 25
    # Another kind of display: the map's ST7789 wiring does not apply to it.
    oled = load_pin_map("waveshare-lcd-hat-1in3", display_kind="ssd1306")
    assert oled.display_options == {}
    with pytest.raises(
        PinMapError, match=r"buttons\.down uses GPIO19, which the display \(SPI1 MISO\) needs"
    ):
        load_pin_map("waveshare-lcd-hat-1in3", display_options={"port": 1})


def test_a_bad_display_table_is_a_pin_map_error() -> None:
    with pytest.raises(PinMapError, match="unknown display 'epaper'"):
        parse(BASE + '[display]\nkind = "epaper"\n')
    with pytest.raises(PinMapError, match=r"unknown option.*speed"):
        parse(BASE + '[display]\nkind = "st7789"\nspeed = 4\nbacklight = -1\n')
    with pytest.raises(PinMapError, match="GPIO10 cannot be st7789 DC, it is SPI0 MOSI"):
        parse(BASE + '[display]\nkind = "st7789"\ndc = 10\nbacklight = -1\n')


def test_display_pins_per_bus() -> None:
    assert display_pins("ssd1306") == {2: "I2C1 SDA", 3: "I2C1 SCL"}
    assert display_pins("sh1106", {"port": 0}) == {0: "I2C0 SDA", 1: "I2C0 SCL"}
    tft = display_pins("ili9341", {"dc": 25, "reset": -1, "backlight": 24})
    assert tft[25] == "ili9341 DC" and tft[24] == "ili9341 backlight" and 27 not in tft
    assert {7, 8, 9, 10, 11} <= set(tft)
    assert display_pins("simulated") == {} and display_pins("framebuffer") == {}
