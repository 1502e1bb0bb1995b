"""A full USB keyboard at the station (email + PIN): the keypad decoder in keyboard mode, on
synthetic evdev streams (CI has no /dev/uinput), and the simulated keyboard."""

import pytest
from evdev import ecodes

from hardware.panel import keypad_decoder as kd
from hardware.panel.errors import InputDeviceLostError
from hardware.panel.keypad import EvdevKeypad
from hardware.panel.keypad_decoder import KeypadDecoder, KeypadEvent, KeypadKey
from hardware.panel.simulated import SimulatedKeypad
from hardware.readers.wedge_decoder import KeyEvent
from tests.hardware.test_panel_input import FakeInputDevice, keys

SHIFT, RSHIFT = ecodes.KEY_LEFTSHIFT, ecodes.KEY_RIGHTSHIFT


def down(code: int) -> KeyEvent:
    return KeyEvent(ecodes.EV_KEY, code, 1, 0.0)


def up(code: int) -> KeyEvent:
    return KeyEvent(ecodes.EV_KEY, code, 0, 0.0)


press = keys  # key down, sync, key up, sync for each code (as a USB keyboard reports it)


def shifted(code: int, shift: int = SHIFT) -> list[KeyEvent]:
    return [down(shift), *press(code), up(shift)]


def text(events: list[KeypadEvent]) -> str:
    out = []
    for event in events:
        if event.key in (KeypadKey.DIGIT, KeypadKey.CHARACTER):
            out.append(event.digit)
        else:
            out.append(f"<{event.key.value}>")
    return "".join(out)


def letters(word: str) -> list[KeyEvent]:
    return press(*(getattr(ecodes, f"KEY_{c.upper()}") for c in word))


def test_the_kernel_codes_of_the_keyboard_keys() -> None:
    assert (kd.KEY_TAB, kd.KEY_LEFTSHIFT, kd.KEY_RIGHTSHIFT) == (
        ecodes.KEY_TAB,
        ecodes.KEY_LEFTSHIFT,
        ecodes.KEY_RIGHTSHIFT,
    )


def test_a_keyboard_types_an_email_address_with_both_shift_keys() -> None:
    decoder = KeypadDecoder(keyboard=True)
    events = (
        shifted(ecodes.KEY_A)  # "A"
        + letters("na")
        + press(ecodes.KEY_DOT)
        + letters("lima")
        + shifted(ecodes.KEY_EQUAL, RSHIFT)  # "+"
        + press(ecodes.KEY_7, ecodes.KEY_MINUS)
        + shifted(ecodes.KEY_MINUS)  # "_"
        + letters("x")
        + shifted(ecodes.KEY_2, RSHIFT)  # "@"
        + letters("ex")
        + press(ecodes.KEY_KPMINUS, ecodes.KEY_KPPLUS, ecodes.KEY_KPDOT)
        + letters("org")
    )
    decoded = decoder.feed_all(events)
    assert text(decoded) == "Ana.lima+7-_x@ex-+.org"
    kinds = {event.digit: event.key for event in decoded}
    assert kinds["7"] is KeypadKey.DIGIT and kinds["@"] is KeypadKey.CHARACTER


def test_keyboard_editing_keys_and_tab() -> None:
    decoder = KeypadDecoder(keyboard=True)
    events = press(ecodes.KEY_TAB, ecodes.KEY_B, ecodes.KEY_BACKSPACE, ecodes.KEY_DELETE)
    events += press(ecodes.KEY_ENTER, ecodes.KEY_KPENTER, ecodes.KEY_ESC)
    assert text(decoder.feed_all(events)) == "<tab>b<backspace><backspace><enter><enter><escape>"


def test_caps_lock_repeats_and_characters_outside_an_address_are_ignored() -> None:
    decoder = KeypadDecoder(keyboard=True)
    held = [KeyEvent(ecodes.EV_KEY, ecodes.KEY_Q, v, 0.0) for v in (1, 2, 2, 0)]
    events = press(ecodes.KEY_CAPSLOCK, ecodes.KEY_Z)  # Caps Lock: ignored (lower-cased anyway)
    events += press(ecodes.KEY_SPACE, ecodes.KEY_COMMA, ecodes.KEY_SLASH, ecodes.KEY_F1)
    events += shifted(ecodes.KEY_1) + shifted(ecodes.KEY_3)  # "!" and "#"
    events += press(ecodes.KEY_UP, ecodes.KEY_NUMLOCK)
    assert text(decoder.feed_all(held + events)) == "qz"


def test_shift_is_released_with_its_key_up_and_forgotten_on_reset() -> None:
    decoder = KeypadDecoder(keyboard=True)
    assert decoder.feed(down(SHIFT)) is None
    assert text(decoder.feed_all(press(ecodes.KEY_K))) == "K"
    decoder.feed(up(SHIFT))
    assert text(decoder.feed_all(press(ecodes.KEY_K))) == "k"
    decoder.feed(down(RSHIFT))
    decoder.reset()  # the device went away: its key-up never comes
    assert text(decoder.feed_all(press(ecodes.KEY_K))) == "k"


def test_a_numeric_keypad_decodes_exactly_as_before() -> None:
    decoder = KeypadDecoder()  # keyboard=False: no letters, no Tab, Shift means nothing
    events = shifted(ecodes.KEY_2) + press(ecodes.KEY_A, ecodes.KEY_TAB, ecodes.KEY_KP7)
    events += press(ecodes.KEY_KPDOT, ecodes.KEY_KPPLUS, ecodes.KEY_DOT)
    assert text(decoder.feed_all(events)) == "27<backspace>"


def test_extra_keys_cannot_add_characters() -> None:
    with pytest.raises(ValueError, match="characters"):
        KeypadDecoder({ecodes.KEY_F2: KeypadKey.CHARACTER}, keyboard=True)
    decoder = KeypadDecoder({ecodes.KEY_KPMINUS: KeypadKey.ESCAPE}, keyboard=True)
    assert text(decoder.feed_all(press(ecodes.KEY_KPMINUS, ecodes.KEY_MINUS))) == "<escape>-"


def test_the_character_is_hidden_from_repr() -> None:
    assert "x" not in repr(KeypadEvent(KeypadKey.CHARACTER, "x")).replace("CHARACTER", "")


def test_the_evdev_keypad_in_keyboard_mode_reads_letters() -> None:
    device = FakeInputDevice()
    keypad = EvdevKeypad("USB Keyboard", keyboard=True, opener=lambda: device)
    try:
        assert keypad.keyboard and device.grabbed
        device.send(shifted(ecodes.KEY_2) + letters("ab") + press(ecodes.KEY_ENTER))
        got = [keypad.read(timeout_s=1) for _ in range(4)]
        assert text([e for e in got if e is not None]) == "@ab<enter>"
    finally:
        keypad.close()


def test_a_shift_held_while_the_keyboard_is_unplugged_is_not_stuck() -> None:
    devices = [FakeInputDevice()]

    def opener() -> FakeInputDevice:
        if devices[-1].closed:
            devices.append(FakeInputDevice())
        return devices[-1]

    keypad = EvdevKeypad("USB Keyboard", keyboard=True, opener=opener, reopen_min_s=0.01)
    try:
        devices[0].send([down(SHIFT)])
        assert keypad.read(timeout_s=0.1) is None
        devices[0].unplug()  # the Shift key-up is never seen
        with pytest.raises(InputDeviceLostError):
            keypad.read(timeout_s=1)
        assert keypad.read(timeout_s=0.1) is None  # reopened
        devices[-1].send(press(ecodes.KEY_K))
        event = keypad.read(timeout_s=1)
        assert event is not None and event.digit == "k"
    finally:
        keypad.close()


def test_the_simulated_keyboard_types_text_and_a_simulated_keypad_refuses_it() -> None:
    keyboard = SimulatedKeypad(keyboard=True)
    keyboard.type_text("Ana.L+1@x.org")
    got = [keyboard.read(0.05) for _ in range(13)]
    assert text([e for e in got if e is not None]) == "Ana.L+1@x.org"
    assert got[6] is not None and got[6].key is KeypadKey.DIGIT
    with pytest.raises(ValueError, match="letters, digits"):
        keyboard.type_text("a b")
    keypad = SimulatedKeypad()
    assert not keypad.keyboard
    with pytest.raises(ValueError, match="digits only"):
        keypad.type_text("ana")
