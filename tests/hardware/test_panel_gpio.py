"""The gpiozero panel drivers, running gpiozero's real device code on its MockFactory pins.

Buttons are pressed with `pin.drive_low()`; the LED is read back from the RGBLED and its pins;
the buzzer's sounds are checked by their shape in the pin's timed history (`pin.states`: each
entry holds how long the previous state lasted), with tolerances, never exact timings.
"""

import itertools
import threading
import time
from collections.abc import Iterator

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin

from hardware.panel import LightPattern, Sound, load_pin_map, panel_from_config
from hardware.panel.errors import PanelError
from hardware.panel.gpio_buttons import GpioButtonPanel
from hardware.panel.gpio_buzzer import GpioBuzzer
from hardware.panel.gpio_light import GpioStatusLight
from hardware.panel.pinmap import ButtonPin, BuzzerPin, RgbPins


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    """gpiozero's mock pins (PWM-capable) as the default factory, restored afterwards."""
    previous = Device.pin_factory
    factory = MockFactory(pin_class=MockPWMPin)
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()  # mock pins are not released on close: clear them for the next test
        factory.close()
        Device.pin_factory = previous


def wait_for(predicate, timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


# ---- buttons ----


def test_a_button_reports_its_name_the_moment_it_goes_down(mock_pins: MockFactory) -> None:
    panel = GpioButtonPanel([ButtonPin("print-all", 5), ButtonPin("up", 6)])
    pressed: list[str] = []
    panel.on_button = pressed.append
    pin = mock_pins.pin(5)
    pin.drive_low()  # wired to ground through the button, pulled up
    assert pressed == ["print-all"]
    pin.drive_high()
    mock_pins.pin(6).drive_low()
    assert pressed == ["print-all", "up"]
    assert panel.names == ("print-all", "up")
    panel.close()


def test_a_hold_button_reports_press_on_a_short_release_and_hold_after_hold_s(
    mock_pins: MockFactory,
) -> None:
    panel = GpioButtonPanel([ButtonPin("select", 19, hold="print-selected", hold_s=0.1)])
    pressed: list[str] = []
    lock = threading.Lock()

    def record(name: str) -> None:
        with lock:
            pressed.append(name)

    panel.on_button = record
    pin = mock_pins.pin(19)
    pin.drive_low()
    assert pressed == []  # not yet known whether it is a press or a hold
    pin.drive_high()
    assert pressed == ["select"]
    pin.drive_low()
    assert wait_for(lambda: pressed == ["select", "print-selected"])
    pin.drive_high()
    time.sleep(0.02)
    assert pressed == ["select", "print-selected"]  # no press after a hold
    assert panel.names == ("select", "print-selected")
    panel.close()


def test_closing_the_buttons_releases_the_pins_and_silences_them(mock_pins: MockFactory) -> None:
    panel = GpioButtonPanel([ButtonPin("up", 6)])
    pressed: list[str] = []
    panel.on_button = pressed.append
    panel.close()
    again = GpioButtonPanel([ButtonPin("up", 6)])  # the pin is free again
    mock_pins.pin(6).drive_low()
    assert pressed == []
    again.close()


def test_a_pin_in_use_is_a_panel_error_and_frees_what_was_claimed(mock_pins: MockFactory) -> None:
    with pytest.raises(PanelError, match="GPIO6"):
        GpioButtonPanel([ButtonPin("up", 5), ButtonPin("down", 6), ButtonPin("select", 6)])
    GpioButtonPanel([ButtonPin("up", 5)]).close()  # 5 was released on the failure


def test_a_failing_handler_is_logged_not_lost(
    mock_pins: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    panel = GpioButtonPanel([ButtonPin("up", 6)])

    def boom(name: str) -> None:
        raise RuntimeError("station queue full")

    panel.on_button = boom
    mock_pins.pin(6).drive_low()
    assert "button handler failed for up" in caplog.text
    panel.close()


# ---- status light ----


def test_steady_patterns_set_the_led(mock_pins: MockFactory) -> None:
    light = GpioStatusLight(RgbPins(17, 27, 22))
    light.show(LightPattern.READY)
    assert light.led.value == (0.0, 1.0, 0.0)
    assert mock_pins.pin(27).state == 1.0 and mock_pins.pin(17).state == 0.0
    light.set_colour((1.0, 0.0, 1.0))
    assert light.led.value == (1.0, 0.0, 1.0)
    assert light.pattern is None
    light.show(LightPattern.OFF)
    assert not light.led.is_lit
    light.close()


def test_brightness_scales_and_common_anode_inverts(mock_pins: MockFactory) -> None:
    light = GpioStatusLight(RgbPins(17, 27, 22, common_anode=True), brightness=0.5)
    light.show(LightPattern.READY)
    assert light.led.value == (0.0, 0.5, 0.0)
    # Common anode: a lit channel pulls its pin low (duty 1 - value).
    assert mock_pins.pin(27).state == pytest.approx(0.5)
    assert mock_pins.pin(17).state == pytest.approx(1.0)
    light.close()


def on_periods(pin, min_level: float = 0.5) -> int:
    """How many times a pin went from dark to lit in its history."""
    levels = [state.state >= min_level for state in pin.states]
    return sum(1 for before, after in itertools.pairwise(levels) if after and not before)


def test_reading_blinks_blue(mock_pins: MockFactory) -> None:
    light = GpioStatusLight(RgbPins(17, 27, 22))
    blue = mock_pins.pin(22)
    blue.clear_states()
    light.show(LightPattern.READING)
    time.sleep(0.7)  # 0.15 s on, 0.15 s off: about two cycles
    light.show(LightPattern.OFF)
    assert 2 <= on_periods(blue) <= 4
    assert on_periods(mock_pins.pin(17)) == 0  # red never lit
    light.close()


def test_error_blinks_red_and_offline_pulses_amber(mock_pins: MockFactory) -> None:
    light = GpioStatusLight(RgbPins(17, 27, 22))
    red, green = mock_pins.pin(17), mock_pins.pin(27)
    red.clear_states()
    light.show(LightPattern.ERROR)
    time.sleep(0.5)
    assert on_periods(red) >= 1 and on_periods(green) == 0
    light.show(LightPattern.OFFLINE)
    green.clear_states()
    time.sleep(0.5)  # fading in: red rises twice as fast as green (amber = 1, 0.5, 0)
    r, g, b = light.led.value
    assert 0 < r <= 1 and 0 < g < r and b == 0
    # A pulse passes through many levels, a blink only two.
    assert len({round(s.state, 2) for s in green.states}) > 5
    light.close()


def test_success_flashes_green_then_stays_green(mock_pins: MockFactory) -> None:
    light = GpioStatusLight(RgbPins(17, 27, 22))
    green = mock_pins.pin(27)
    green.clear_states()
    light.show(LightPattern.SUCCESS)
    assert wait_for(lambda: light.led.value == (0.0, 1.0, 0.0) and on_periods(green) >= 3)
    time.sleep(0.05)
    assert on_periods(green) == 3
    light.close()


def test_a_pattern_chosen_during_success_is_not_overwritten(mock_pins: MockFactory) -> None:
    light = GpioStatusLight(RgbPins(17, 27, 22))
    light.show(LightPattern.SUCCESS)
    time.sleep(0.05)
    light.show(LightPattern.ERROR)
    time.sleep(0.8)  # past the end of the success flashes
    assert light.pattern is LightPattern.ERROR
    assert light.led.value[1] == 0  # never went back to green
    light.close()


def test_without_pwm_colours_are_rounded_and_pulse_becomes_a_blink() -> None:
    previous = Device.pin_factory
    factory = MockFactory()  # plain pins: no PWM
    Device.pin_factory = factory
    try:
        light = GpioStatusLight(RgbPins(17, 27, 22, pwm=False), brightness=0.3)
        light.show(LightPattern.READY)
        assert light.led.value == (0, 1, 0)
        light.show(LightPattern.OFFLINE)
        time.sleep(0.1)
        assert light.led.value in ((1, 1, 0), (0, 0, 0))
        light.close()
    finally:
        factory.reset()
        factory.close()
        Device.pin_factory = previous


# ---- buzzer ----


def beeps(pin) -> list[float]:
    """The durations of the sounding periods in a pin's history (state > 0)."""
    durations: list[float] = []
    states = pin.states
    for current, following in itertools.pairwise(states):
        # `following.timestamp` is how long `current` lasted.
        if current.state > 0:
            durations.append(following.timestamp)
    return durations


@pytest.mark.parametrize("kind", ["tonal", "active"])
def test_success_is_two_short_beeps_and_failure_one_long_tone(
    mock_pins: MockFactory, kind: str
) -> None:
    buzzer = GpioBuzzer(BuzzerPin(18, kind=kind))
    pin = mock_pins.pin(18)
    pin.clear_states()
    buzzer.play(Sound.SUCCESS)
    assert buzzer.wait(2)
    success = beeps(pin)
    pin.clear_states()
    buzzer.play(Sound.FAILURE)
    assert buzzer.wait(2)
    failure = beeps(pin)
    assert len(success) == 2 and all(0.04 <= d <= 0.2 for d in success)
    assert len(failure) == 1 and 0.5 <= failure[0] <= 1.2
    # The rhythm alone tells them apart: count and length, not only pitch.
    assert failure[0] > 3 * max(success)
    buzzer.close()


def test_the_success_beeps_rise_in_pitch(mock_pins: MockFactory) -> None:
    buzzer = GpioBuzzer(BuzzerPin(18))
    seen: list[float] = []
    original = buzzer.device.play

    def spy(tone) -> None:
        seen.append(tone.frequency)
        original(tone)

    buzzer.device.play = spy
    buzzer.play(Sound.SUCCESS)
    assert buzzer.wait(2)
    buzzer.play(Sound.FAILURE)
    buzzer.stop()
    assert seen[0] < seen[1] and seen[2] < seen[0]
    buzzer.close()


def test_a_new_sound_cuts_the_old_one_short(mock_pins: MockFactory) -> None:
    buzzer = GpioBuzzer(BuzzerPin(18))
    pin = mock_pins.pin(18)
    buzzer.play(Sound.FAILURE)
    time.sleep(0.05)
    pin.clear_states()
    started = time.monotonic()
    buzzer.play(Sound.READ)
    assert buzzer.wait(2)
    assert time.monotonic() - started < 0.4  # the long tone did not play out
    # The history starts inside the long tone: it ends at once, then the one short beep.
    remnant, beep = beeps(pin)
    assert remnant < 0.03 and 0.03 <= beep <= 0.15
    buzzer.stop()
    assert pin.state == 0
    buzzer.close()


def test_a_tonal_buzzer_needs_a_pwm_pin() -> None:
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        with pytest.raises(PanelError, match="GPIO18"):
            GpioBuzzer(BuzzerPin(18, kind="tonal"))
        GpioBuzzer(BuzzerPin(18, kind="active")).close()
    finally:
        factory.reset()
        factory.close()
        Device.pin_factory = previous


# ---- the whole panel from a pin map ----


@pytest.mark.parametrize("name", ["generic-4button", "waveshare-lcd-hat-1in3"])
def test_every_bundled_pin_map_builds_on_mock_pins(mock_pins: MockFactory, name: str) -> None:
    pin_map = load_pin_map(name)
    panel = panel_from_config("gpio", pin_map, brightness=0.5)
    pressed: list[str] = []
    panel.buttons.on_button = pressed.append
    for button in pin_map.buttons:
        if button.hold is None:
            mock_pins.pin(button.pin).drive_low()
            mock_pins.pin(button.pin).drive_high()
    assert pressed == [b.name for b in pin_map.buttons if b.hold is None]
    assert set(panel.buttons.names) == set(pin_map.event_names)
    assert panel.light is not None and panel.buzzer is not None
    panel.light.show(LightPattern.READY)
    panel.buzzer.play(Sound.READ)
    panel.close()


def test_a_failed_panel_frees_the_pins_it_claimed(mock_pins: MockFactory) -> None:
    from gpiozero import LED

    squatter = LED(18)  # the buzzer's pin, taken by someone else
    pin_map = load_pin_map("generic-4button")
    with pytest.raises(PanelError, match="GPIO18"):
        panel_from_config("gpio", pin_map)
    squatter.close()
    panel_from_config("gpio", pin_map).close()  # buttons and LED pins were released


def test_the_simulated_panel_has_the_pin_maps_names() -> None:
    pin_map = load_pin_map("generic-4button")
    panel = panel_from_config("simulated", pin_map)
    pressed: list[str] = []
    panel.buttons.on_button = pressed.append
    panel.buttons.press("cancel")  # type: ignore[attr-defined]
    assert pressed == ["cancel"]
    with pytest.raises(ValueError, match="choose one of gpio, simulated"):
        panel_from_config("i2c-expander", pin_map)


# ---- one contract over every ButtonPanel / StatusLight / Buzzer implementation ----


@pytest.mark.parametrize("driver", ["simulated", "gpio"])
def test_the_panel_contract(mock_pins: MockFactory, driver: str) -> None:
    pin_map = load_pin_map("waveshare-lcd-hat-1in3")
    panel = panel_from_config(driver, pin_map)
    pins = {b.name: b.pin for b in pin_map.buttons}

    def press(name: str) -> None:
        if driver == "simulated":
            panel.buttons.press(name)  # type: ignore[attr-defined]
        else:
            mock_pins.pin(pins[name]).drive_low()
            mock_pins.pin(pins[name]).drive_high()

    pressed: list[str] = []
    panel.buttons.on_button = pressed.append
    press("print-all")
    press("select")  # a short press of a button that also has a hold action
    assert pressed == ["print-all", "select"]
    assert {"print-all", "select", "print-selected"} <= set(panel.buttons.names)
    assert panel.light is not None and panel.buzzer is not None
    for pattern in LightPattern:
        panel.light.show(pattern)
    panel.light.set_colour((0.2, 0.4, 0.6))
    with pytest.raises(ValueError, match="three values"):
        GpioStatusLight.set_colour(panel.light, (2.0, 0, 0))  # type: ignore[arg-type]
    for sound in Sound:
        panel.buzzer.play(sound)
    panel.buzzer.stop()
    panel.close()
    if driver == "simulated":
        press("up")
        assert pressed == ["print-all", "select"]  # closed: nothing reported
