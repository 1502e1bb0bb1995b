"""Keyboard-wedge readers: the pure decoder on synthetic event streams, the reader on a fake device.

There is no /dev/uinput on CI machines, so no real input device can be made: the decoder is fed
events built by hand, and `WedgeCardReader` is given a fake exposing the evdev methods it uses
(with a real pipe descriptor, so the reader's select() runs for real).
"""

import logging
import threading
import time

import pytest
from evdev import ecodes

from hardware.readers import wedge_decoder as wd
from hardware.readers.errors import CardUnreadableError, ReaderDisconnectedError
from hardware.readers.formats import h10301, mifare_uid
from hardware.readers.text import ReaderFormat
from hardware.readers.wedge import WedgeCardReader, check_device_spec
from hardware.readers.wedge_decoder import KeyEvent, WedgeDecoder, decode_key_events
from tests.support.evdev_fakes import FakeInputDevice, key_stroke

BADGE = h10301(90, 324)
BITS = int.from_bytes(BADGE.raw, "big")  # 11813448 in decimal

KEY = {
    **{str(d): getattr(ecodes, f"KEY_{d}") for d in range(10)},
    **{c: getattr(ecodes, f"KEY_{c.upper()}") for c in "abcdef"},
    ":": ecodes.KEY_SEMICOLON,
}
KP = {str(d): getattr(ecodes, f"KEY_KP{d}") for d in range(10)}


def typed(
    text: str,
    start_s: float = 0.0,
    step_s: float = 0.004,
    enter: int | None = ecodes.KEY_ENTER,
    keys: dict[str, int] = KEY,
) -> list[KeyEvent]:
    """The events a wedge reader sends to type `text`: scan code, key down, sync, key up, sync."""
    events: list[KeyEvent] = []
    t = start_s

    def press(code: int) -> None:
        nonlocal t
        events.extend(key_stroke(code, t, t + step_s / 2))
        t += step_s

    for char in text:
        shifted = char.isupper() or char == ":"
        if shifted:
            events.append(KeyEvent(ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 1, t))
        press(keys[char.lower()])
        if shifted:
            events.append(KeyEvent(ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 0, t))
    if enter is not None:
        press(enter)
    return events


def test_key_codes_are_the_kernels() -> None:
    assert (wd.EV_KEY, wd.KEY_ENTER, wd.KEY_KPENTER) == (
        ecodes.EV_KEY,
        ecodes.KEY_ENTER,
        ecodes.KEY_KPENTER,
    )
    assert (wd.KEY_LEFTSHIFT, wd.KEY_RIGHTSHIFT) == (ecodes.KEY_LEFTSHIFT, ecodes.KEY_RIGHTSHIFT)
    for char, code in {**KEY, **KP}.items():
        if char != ":":
            assert wd._KEYMAP[code][0] == char


def test_digits_then_enter_make_one_frame() -> None:
    assert decode_key_events(typed(str(BITS))) == [str(BITS)]


def test_shift_gives_upper_case_hex_and_the_colon() -> None:
    assert decode_key_events(typed("04A1b2C3")) == ["04A1b2C3"]
    assert decode_key_events(typed("90:324")) == ["90:324"]


def test_right_shift_and_shift_release_are_tracked() -> None:
    events = [
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_RIGHTSHIFT, 1, 0.0),
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_A, 1, 0.01),
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_RIGHTSHIFT, 2, 0.02),  # shift auto-repeat
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_RIGHTSHIFT, 0, 0.03),
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_B, 1, 0.04),
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_KPENTER, 1, 0.05),
    ]
    assert decode_key_events(events) == ["Ab"]


def test_keypad_digits_and_keypad_enter() -> None:
    events = typed("0123456789", keys=KP, enter=ecodes.KEY_KPENTER)
    assert decode_key_events(events) == ["0123456789"]


def test_key_repeat_and_key_up_do_not_type() -> None:
    events = [
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_1, 1, 0.0),
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_1, 2, 0.01),
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_1, 2, 0.02),
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_1, 0, 0.03),
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_ENTER, 1, 0.04),
    ]
    assert decode_key_events(events) == ["1"]


def test_a_gap_ends_a_frame_without_enter() -> None:
    first = typed("123", start_s=0.0, enter=None)
    second = typed("456", start_s=1.0, enter=None)
    decoder = WedgeDecoder(gap_s=0.15)
    assert decoder.feed_all(first) == []
    assert decoder.pending
    assert decoder.feed_all(second) == ["123"]
    assert decoder.flush() == "456"
    assert decoder.flush() is None


def test_a_short_pause_does_not_split_a_frame() -> None:
    events = typed("12", step_s=0.1, enter=None) + typed("34", start_s=0.22, step_s=0.1)
    assert decode_key_events(events, gap_s=0.15) == ["1234"]


def test_unknown_keys_spoil_the_frame_and_modifiers_are_ignored() -> None:
    events = [
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_NUMLOCK, 1, 0.0),
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_LEFTCTRL, 1, 0.001),
        *typed("12", start_s=0.002, enter=None),
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_F1, 1, 0.02),
        *typed("3", start_s=0.03),
    ]
    assert decode_key_events(events) == ["12" + wd.UNKNOWN_CHAR + "3"]


def test_empty_enters_and_non_key_events_make_no_frames() -> None:
    events = [
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_ENTER, 1, 0.0),
        KeyEvent(ecodes.EV_REL, ecodes.REL_X, 5, 0.01),
        KeyEvent(ecodes.EV_KEY, ecodes.KEY_ENTER, 1, 0.02),
    ]
    assert decode_key_events(events) == []


def test_an_overlong_frame_is_cut_one_past_the_limit() -> None:
    decoder = WedgeDecoder(max_frame_chars=8)
    [frame] = decoder.feed_all(typed("1" * 50))
    assert frame == "1" * 9


# ---- the reader, on a fake evdev device ----


def now_s() -> float:
    return time.time()


def test_reader_grabs_the_device_and_reads_a_badge() -> None:
    device = FakeInputDevice()
    reader = WedgeCardReader("RFIDeas USB Keyboard", ReaderFormat(), opener=lambda: device)
    assert device.grabbed
    assert reader.read(timeout_s=0.05) is None
    device.send(typed(str(BITS), start_s=now_s()))
    assert reader.read(timeout_s=2) == BADGE
    reader.close()
    assert device.closed and not device.grabbed


def test_reader_ends_a_frame_after_a_silent_gap() -> None:
    device = FakeInputDevice()
    fmt = ReaderFormat(technology="mifare", encoding="hex")
    reader = WedgeCardReader("by-name", fmt, gap_s=0.05, opener=lambda: device)
    device.send(typed("04a1b2c3", start_s=now_s(), enter=None))
    started = time.monotonic()
    assert reader.read(timeout_s=2) == mifare_uid(bytes.fromhex("04a1b2c3"))
    assert time.monotonic() - started < 1
    reader.close()


def test_reader_reports_garbage_frames_as_unreadable_without_their_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    device = FakeInputDevice()
    reader = WedgeCardReader("by-name", ReaderFormat(), opener=lambda: device)
    t = now_s()
    # A wrong-parity frame, an F1 key (no character), then a good badge right behind them.
    f1 = [KeyEvent(wd.EV_KEY, ecodes.KEY_F1, 1, t + 0.05), KeyEvent(wd.EV_KEY, 28, 1, t + 0.06)]
    device.send([*typed("11813449", start_s=t), *f1, *typed(str(BITS), start_s=t + 0.1)])
    reasons = []
    with caplog.at_level(logging.DEBUG):
        for _ in range(2):
            with pytest.raises(CardUnreadableError) as caught:
                reader.read(timeout_s=2)
            reasons.append(caught.value.reason)
            assert "1181344" not in str(caught.value)
        assert reader.read(timeout_s=2) == BADGE  # typed after the garbage: not lost
    assert reasons == ["parity", "garbled"]
    assert "dropped" in caplog.text
    assert "11813449" not in caplog.text and "1181344" not in caplog.text
    reader.close()


def test_reader_reports_an_unplug_and_reopens_with_back_off() -> None:
    devices = [FakeInputDevice()]
    plugged = threading.Event()
    plugged.set()

    def opener() -> FakeInputDevice:
        if not plugged.is_set():
            raise FileNotFoundError("no input device named 'by-name'")
        if devices[-1].closed:
            devices.append(FakeInputDevice())
        return devices[-1]

    reader = WedgeCardReader(
        "by-name", ReaderFormat(), opener=opener, reopen_min_s=0.01, reopen_max_s=0.02
    )
    plugged.clear()
    devices[0].unplug()
    with pytest.raises(ReaderDisconnectedError, match="disconnected"):
        reader.read(timeout_s=1)
    assert devices[0].closed
    with pytest.raises(ReaderDisconnectedError, match="not connected"):
        reader.read(timeout_s=0.05)
    plugged.set()
    assert reader.read(timeout_s=0.1) is None  # reopened, nothing typed yet
    assert reader.connected and devices[-1].grabbed
    devices[-1].send(typed(str(BITS), start_s=now_s()))
    assert reader.read(timeout_s=2) == BADGE
    reader.close()


def test_a_missing_reader_at_start_is_not_an_error_until_read() -> None:
    def opener() -> FakeInputDevice:
        raise FileNotFoundError("no input device named 'by-name'")

    reader = WedgeCardReader("by-name", ReaderFormat(), opener=opener, reopen_min_s=0.01)
    assert not reader.connected
    with pytest.raises(ReaderDisconnectedError):
        reader.read(timeout_s=0.05)
    reader.close()


@pytest.mark.parametrize("spec", ["/dev/input/event3", "/dev/hidraw0", " "])
def test_unstable_device_names_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=r"eventN|by-id|named"):
        check_device_spec(spec)


def test_stable_device_names_are_accepted() -> None:
    check_device_spec("/dev/input/by-id/usb-RFIDeas_USB_Keyboard-event-kbd")
    check_device_spec("/dev/input/by-path/platform-xhci-hcd.0-usb-0:1:1.0-event-kbd")
    check_device_spec("RFIDeas USB Keyboard")
