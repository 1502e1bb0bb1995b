"""Keypad and touch input: the pure decoders on synthetic evdev streams, the device layers on a
fake device (CI machines have no /dev/uinput, so no real input device can be made)."""

import logging
import threading
import time

import pytest
from evdev import ecodes

from hardware.panel import keypad_decoder as kd
from hardware.panel import touch_decoder as td
from hardware.panel.errors import InputDeviceLostError
from hardware.panel.evdev_input import check_device_spec
from hardware.panel.keypad import EvdevKeypad
from hardware.panel.keypad_decoder import DigitEntry, KeypadDecoder, KeypadEvent, KeypadKey
from hardware.panel.simulated import SimulatedKeypad
from hardware.panel.touch import EvdevTouchPanel, calibration_from_device
from hardware.panel.touch_decoder import HitMap, Tap, TouchCalibration, TouchDecoder
from hardware.readers.wedge_decoder import KeyEvent
from tests.support.evdev_fakes import FakeInputDevice, key_stroke

DIGIT = KeypadKey.DIGIT


def keys(*codes: int, t: float = 0.0) -> list[KeyEvent]:
    """Key down, sync, key up, sync for each code."""
    return [event for code in codes for event in key_stroke(code, t)]


def digits(events: list[KeypadEvent]) -> str:
    return "".join(e.digit if e.key is DIGIT else f"<{e.key.value}>" for e in events)


# ---- keypad decoder ----


def test_key_codes_are_the_kernels() -> None:
    assert (kd.KEY_ESC, kd.KEY_BACKSPACE, kd.KEY_ENTER, kd.KEY_KPENTER) == (
        ecodes.KEY_ESC,
        ecodes.KEY_BACKSPACE,
        ecodes.KEY_ENTER,
        ecodes.KEY_KPENTER,
    )
    assert (kd.KEY_KPDOT, kd.KEY_DELETE) == (ecodes.KEY_KPDOT, ecodes.KEY_DELETE)
    for d in range(10):
        assert kd._KEYPAD[getattr(ecodes, f"KEY_KP{d}")] == str(d)
        assert kd._TOP_ROW[getattr(ecodes, f"KEY_{d}")] == str(d)


def test_keypad_and_top_row_digits_backspace_enter_escape() -> None:
    decoder = KeypadDecoder()
    events = decoder.feed_all(
        keys(ecodes.KEY_KP1, ecodes.KEY_KP9, ecodes.KEY_0, ecodes.KEY_BACKSPACE, ecodes.KEY_KP5)
        + keys(ecodes.KEY_KPDOT, ecodes.KEY_KPENTER, ecodes.KEY_ENTER, ecodes.KEY_ESC)
    )
    assert digits(events) == "190<backspace>5<backspace><enter><enter><escape>"


def test_repeats_and_other_keys_are_ignored() -> None:
    decoder = KeypadDecoder()
    held = [KeyEvent(ecodes.EV_KEY, ecodes.KEY_KP4, v, 0.0) for v in (1, 2, 2, 2, 0)]
    others = keys(ecodes.KEY_NUMLOCK, ecodes.KEY_A, ecodes.KEY_UP, ecodes.KEY_KPPLUS)
    assert digits(decoder.feed_all(held + others)) == "4"


def test_extra_keys_give_an_escape_to_keypads_without_one() -> None:
    decoder = KeypadDecoder({ecodes.KEY_KPMINUS: KeypadKey.ESCAPE})
    assert digits(decoder.feed_all(keys(ecodes.KEY_KPMINUS))) == "<escape>"
    with pytest.raises(ValueError, match="digits"):
        KeypadDecoder({ecodes.KEY_KPPLUS: DIGIT})


def test_the_digit_is_hidden_from_repr() -> None:
    event = KeypadEvent(DIGIT, "7")
    assert "7" not in repr(event)


def test_digit_entry_collects_a_pin() -> None:
    entry = DigitEntry(min_digits=4, max_digits=6)
    feed = [KeypadEvent(DIGIT, d) for d in "12345678"]
    changes = [entry.feed(e) for e in feed]
    assert changes == ["typed"] * 6 + [None, None]  # full at six
    assert entry.length == 6 and "123" not in repr(entry)
    assert entry.feed(KeypadEvent(KeypadKey.BACKSPACE)) == "erased"
    assert entry.feed(KeypadEvent(KeypadKey.ENTER)) == "submitted"
    assert entry.take() == "12345" and entry.length == 0
    assert entry.feed(KeypadEvent(KeypadKey.BACKSPACE)) is None
    entry.feed(KeypadEvent(DIGIT, "1"))
    assert entry.feed(KeypadEvent(KeypadKey.ENTER)) is None  # too short to send
    assert entry.feed(KeypadEvent(KeypadKey.ESCAPE)) == "cancelled" and entry.length == 0


def test_the_simulated_keypad() -> None:
    keypad = SimulatedKeypad()
    keypad.type_digits("42")
    keypad.backspace()
    keypad.enter()
    keypad.escape()
    got = [keypad.read(0.05) for _ in range(6)]
    assert digits([e for e in got if e is not None]) == "42<backspace><enter><escape>"
    assert got[-1] is None
    with pytest.raises(ValueError, match="digits only"):
        keypad.type_digits("12a")
    keypad.close()
    assert keypad.read(0) is None


# ---- the keypad device, on a fake evdev device ----


def test_the_keypad_grabs_the_device_and_reads_keys(caplog: pytest.LogCaptureFixture) -> None:
    device = FakeInputDevice()
    keypad = EvdevKeypad("USB Keypad", opener=lambda: device)
    assert device.grabbed and keypad.connected
    assert keypad.read(timeout_s=0.02) is None
    with caplog.at_level(logging.DEBUG):
        device.send(keys(ecodes.KEY_KP2, ecodes.KEY_KP7, ecodes.KEY_KPENTER))
        got = [keypad.read(timeout_s=1) for _ in range(3)]
    assert digits([e for e in got if e is not None]) == "27<enter>"
    assert "27" not in caplog.text
    keypad.close()
    assert device.closed and not device.grabbed


def test_an_unplugged_keypad_is_reported_and_reopened() -> None:
    devices = [FakeInputDevice()]
    plugged = threading.Event()
    plugged.set()

    def opener() -> FakeInputDevice:
        if not plugged.is_set():
            raise FileNotFoundError("no input device named 'USB Keypad'")
        if devices[-1].closed:
            devices.append(FakeInputDevice())
        return devices[-1]

    keypad = EvdevKeypad("USB Keypad", opener=opener, reopen_min_s=0.01, reopen_max_s=0.02)
    plugged.clear()
    devices[0].unplug()
    with pytest.raises(InputDeviceLostError, match="disconnected"):
        keypad.read(timeout_s=1)
    with pytest.raises(InputDeviceLostError, match="not connected"):
        keypad.read(timeout_s=0.05)
    plugged.set()
    assert keypad.read(timeout_s=0.1) is None
    devices[-1].send(keys(ecodes.KEY_ESC))
    event = keypad.read(timeout_s=1)
    assert event is not None and event.key is KeypadKey.ESCAPE
    keypad.close()


@pytest.mark.parametrize("spec", ["/dev/input/event3", "", "/dev/hidraw0"])
def test_unstable_device_names_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="keypad"):
        EvdevKeypad(spec, opener=FakeInputDevice)
    with pytest.raises(ValueError, match="touch panel"):
        check_device_spec(spec, "touch panel")


# ---- touch decoder ----

CAL = TouchCalibration(0, 4095, 0, 4095)
SIZE = (320, 240)


def syn(t: float = 0.0) -> KeyEvent:
    return KeyEvent(ecodes.EV_SYN, ecodes.SYN_REPORT, 0, t)


def abs_(code: int, value: int) -> KeyEvent:
    return KeyEvent(ecodes.EV_ABS, code, value, 0.0)


def btn(value: int) -> KeyEvent:
    return KeyEvent(ecodes.EV_KEY, ecodes.BTN_TOUCH, value, 0.0)


def single_touch(path: list[tuple[int, int]]) -> list[KeyEvent]:
    """A resistive panel: ABS_X/ABS_Y + BTN_TOUCH, one frame per point, then the lift."""
    events = [btn(1)]
    for x, y in path:
        events += [abs_(ecodes.ABS_X, x), abs_(ecodes.ABS_Y, y), syn()]
    return [*events, btn(0), syn()]


def multi_touch(
    path: list[tuple[int, int]], tracking_id: int = 7, with_btn: bool = True
) -> list[KeyEvent]:
    """A capacitive panel, MT protocol B, with the single-touch emulation alongside."""
    events = [abs_(ecodes.ABS_MT_SLOT, 0), abs_(ecodes.ABS_MT_TRACKING_ID, tracking_id)]
    if with_btn:
        events.append(btn(1))
    for x, y in path:
        events += [
            abs_(ecodes.ABS_MT_POSITION_X, x),
            abs_(ecodes.ABS_MT_POSITION_Y, y),
            abs_(ecodes.ABS_X, 0),  # emulation left stale on purpose: MT must win
            abs_(ecodes.ABS_Y, 0),
            syn(),
        ]
    events.append(abs_(ecodes.ABS_MT_TRACKING_ID, -1))
    if with_btn:
        events.append(btn(0))
    return [*events, syn()]


def test_touch_codes_are_the_kernels() -> None:
    assert (td.BTN_TOUCH, td.ABS_X, td.ABS_Y) == (ecodes.BTN_TOUCH, ecodes.ABS_X, ecodes.ABS_Y)
    assert (td.ABS_MT_SLOT, td.ABS_MT_POSITION_X, td.ABS_MT_POSITION_Y, td.ABS_MT_TRACKING_ID) == (
        ecodes.ABS_MT_SLOT,
        ecodes.ABS_MT_POSITION_X,
        ecodes.ABS_MT_POSITION_Y,
        ecodes.ABS_MT_TRACKING_ID,
    )
    assert td.SYN_DROPPED == ecodes.SYN_DROPPED


def test_a_single_touch_tap_is_scaled_to_the_display() -> None:
    decoder = TouchDecoder(CAL, SIZE)
    assert decoder.feed_all(single_touch([(4095, 4095)])) == [Tap(319, 239)]
    assert decoder.feed_all(single_touch([(0, 0), (20, 20)])) == [Tap(0, 0)]
    assert decoder.feed_all(single_touch([(2048, 1024)])) == [Tap(160, 60)]


def test_multi_touch_uses_slot_0_and_ignores_the_emulation() -> None:
    decoder = TouchDecoder(TouchCalibration(0, 799, 0, 479), (800, 480))
    assert decoder.feed_all(multi_touch([(100, 200), (102, 203)])) == [Tap(100, 200)]
    # A panel without BTN_TOUCH: the tracking id says when the finger is down.
    decoder = TouchDecoder(TouchCalibration(0, 799, 0, 479), (800, 480))
    assert decoder.feed_all(multi_touch([(700, 50)], with_btn=False)) == [Tap(700, 50)]
    # A second finger in slot 1 moves; the first finger's tap is unaffected.
    events = multi_touch([(300, 300)])
    second = [
        abs_(ecodes.ABS_MT_SLOT, 1),
        abs_(ecodes.ABS_MT_TRACKING_ID, 8),
        abs_(ecodes.ABS_MT_POSITION_X, 10),
        abs_(ecodes.ABS_MT_POSITION_Y, 400),
        syn(),
        abs_(ecodes.ABS_MT_SLOT, 0),  # the kernel switches back before slot 0's lift
    ]
    events[8:8] = second  # after the first finger's first frame
    assert decoder.feed_all(events) == [Tap(300, 300)]


def test_a_slide_is_not_a_tap_and_no_position_means_no_tap() -> None:
    decoder = TouchDecoder(CAL, SIZE, max_move_px=10)
    path = [(1000, 1000), (1300, 1000), (1000, 1000)]  # slid 23 px away and back
    assert decoder.feed_all(single_touch(path)) == []
    # The kernel sends an axis only when it changes: a touch with no new position is at the
    # last one; a panel that never sent one gives no tap.
    assert decoder.feed_all([btn(1), syn(), btn(0), syn()]) == [Tap(78, 58)]
    assert TouchDecoder(CAL, SIZE).feed_all([btn(1), syn(), btn(0), syn()]) == []
    # The position may arrive a frame after BTN_TOUCH.
    decoder = TouchDecoder(CAL, SIZE)
    late = [btn(1), syn(), abs_(ecodes.ABS_X, 4095), abs_(ecodes.ABS_Y, 0), syn(), btn(0), syn()]
    assert decoder.feed_all(late) == [Tap(319, 0)]


def test_a_dropped_report_spoils_the_touch_in_progress() -> None:
    decoder = TouchDecoder(CAL, SIZE)
    events = single_touch([(100, 100), (100, 100)])
    events.insert(4, KeyEvent(ecodes.EV_SYN, ecodes.SYN_DROPPED, 0, 0.0))
    assert decoder.feed_all(events) == []
    assert decoder.feed_all(single_touch([(100, 100)])) == [Tap(8, 6)]


def test_calibration_swaps_and_inverts_for_a_rotated_panel() -> None:
    rotated = TouchCalibration(200, 3900, 300, 3800, swap_xy=True, invert_x=True)
    # Raw y (the panel's long side) becomes display x, inverted.
    assert rotated.to_display(200, 300, SIZE) == Tap(319, 0)
    assert rotated.to_display(3900, 3800, SIZE) == Tap(0, 239)
    assert rotated.to_display(-50, 9999, SIZE) == Tap(0, 0)  # clamped
    with pytest.raises(ValueError, match="max > min"):
        TouchCalibration(10, 10, 0, 1)


def test_the_hit_map_names_regions() -> None:
    hits = HitMap([("print-all", (0, 200, 160, 240)), ("cancel", (160, 200, 320, 240))])
    assert hits.hit(Tap(10, 239)) == "print-all"
    assert hits.hit(Tap(160, 200)) == "cancel"  # right and bottom edges are exclusive
    assert hits.hit(Tap(100, 100)) is None
    assert hits.names == ("print-all", "cancel")
    with pytest.raises(ValueError, match="positive area"):
        HitMap([("up", (10, 10, 10, 20))])


# ---- the touch panel device ----


def test_the_touch_panel_reports_taps_and_region_names() -> None:
    device = FakeInputDevice({ecodes.ABS_X: (0, 4095), ecodes.ABS_Y: (0, 4095)})
    hits = HitMap([("print-all", (0, 0, 160, 240)), ("cancel", (160, 0, 320, 240))])
    panel = EvdevTouchPanel("ADS7846 Touchscreen", SIZE, hits, opener=lambda: device)
    names: list[str] = []
    taps: list[Tap] = []
    panel.on_button = names.append
    panel.on_tap = taps.append
    assert device.grabbed and panel.names == ("print-all", "cancel")
    device.send(single_touch([(4000, 100)]) + single_touch([(100, 100)]))
    deadline = time.monotonic() + 2
    while len(names) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert names == ["cancel", "print-all"]
    assert taps == [Tap(312, 6), Tap(8, 6)]
    panel.hit_map = HitMap([("select", (0, 0, 320, 240))])  # the screen changed
    device.send(single_touch([(2000, 2000)]))
    deadline = time.monotonic() + 2
    while len(names) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert names[-1] == "select"
    panel.close()
    assert device.closed


def test_calibration_comes_from_the_devices_axes() -> None:
    mt = FakeInputDevice(
        {
            ecodes.ABS_X: (0, 1),
            ecodes.ABS_Y: (0, 1),
            ecodes.ABS_MT_POSITION_X: (0, 799),
            ecodes.ABS_MT_POSITION_Y: (0, 479),
        }
    )
    assert calibration_from_device(mt, swap_xy=True) == TouchCalibration(0, 799, 0, 479, True)
    with pytest.raises(ValueError, match="no X/Y axes"):
        calibration_from_device(FakeInputDevice())
    mt.close()


# ---- untrusted input: any event stream is decoded without error, and taps stay on screen ----

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

raw_events = st.lists(
    st.builds(
        KeyEvent,
        st.sampled_from([ecodes.EV_SYN, ecodes.EV_KEY, ecodes.EV_ABS, ecodes.EV_MSC, 0x1F]),
        st.one_of(
            st.sampled_from(
                [0, 1, 3, ecodes.BTN_TOUCH, 0x2F, 0x35, 0x36, 0x39, ecodes.KEY_KP5, ecodes.KEY_ESC]
            ),
            st.integers(0, 0x2FF),
        ),
        st.integers(-(2**31), 2**31 - 1),
        st.floats(0, 1e9),
    ),
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(raw_events)
def test_any_event_stream_decodes_without_error(events: list[KeyEvent]) -> None:
    for event in KeypadDecoder().feed_all(events):
        assert event.key is not DIGIT or event.digit in "0123456789"
    for tap in TouchDecoder(CAL, SIZE).feed_all(events):
        assert 0 <= tap.x < SIZE[0] and 0 <= tap.y < SIZE[1]
