"""The workflow at the keypad: a PIN after the badge, release passcodes, enrolment codes, and the
back-off and lockout answers in words; driven by events alone."""

from __future__ import annotations

from datetime import datetime

import pytest

from station.entry import KeypadEntry
from station.models import JobSummary
from station.screens import (
    EnrolmentScreen,
    ErrorScreen,
    IdleScreen,
    JobListScreen,
    PinEntryScreen,
    ReadingScreen,
)
from station.workflow import (
    Button,
    ButtonPressed,
    CardPresented,
    EnrolmentOffered,
    Key,
    KeyPressed,
    OpenPasscodeSession,
    OpenSession,
    PinRequested,
    SessionOpened,
    SessionRefused,
    ShowScreen,
    State,
    Tick,
    Timings,
    Workflow,
)

TAG = "a" * 64
OTHER = "b" * 64
EMAIL = "ana@example.org"
JOBS = (JobSummary("j1", "report.pdf", datetime(2026, 5, 9, 9, 30), 120_000, 3),)
TIMINGS = Timings(identify_s=5, session_s=30, done_s=4, error_s=6, pin_s=20, enrolment_s=60)


def screens(commands):
    return [c.screen for c in commands if isinstance(c, ShowScreen)]


def others(commands):
    return [c for c in commands if not isinstance(c, ShowScreen)]


def digits(wf: Workflow, text: str) -> list:
    out = []
    for digit in text:
        out = wf.handle(KeyPressed(Key.DIGIT, digit))
    return out


@pytest.fixture
def wf() -> Workflow:
    workflow = Workflow(TIMINGS, station_name="Floor 2")
    workflow.handle(Tick(100.0))
    return workflow


def tap_until_pin(wf: Workflow, tag: str = TAG, min_digits: int = 6) -> int:
    attempt = others(wf.handle(CardPresented(tag)))[0].attempt
    shown = screens(wf.handle(PinRequested(EMAIL, min_digits, attempt)))
    assert wf.state is State.PIN_ENTRY
    assert shown == [PinEntryScreen("Enter your PIN", 0, min_digits, "")]
    return attempt


def test_card_and_pin_sends_the_badge_with_the_pin_and_masks_every_digit(wf):
    first = tap_until_pin(wf)
    shown = screens(digits(wf, "4028"))
    assert shown == [PinEntryScreen("Enter your PIN", 4, 6, "")]
    assert "4028" not in repr(wf.screen) and "4028" not in str(wf.screen.lines())
    wf.handle(KeyPressed(Key.BACKSPACE))
    assert wf.screen.entered == 3
    digits(wf, "817")
    commands = wf.handle(KeyPressed(Key.ENTER))
    assert wf.state is State.IDENTIFYING
    assert screens(commands) == [ReadingScreen("Checking…")]
    (command,) = others(commands)
    assert command == OpenSession(TAG, first + 1, "402817", EMAIL)
    assert "402817" not in repr(command) and EMAIL not in repr(command)
    wf.handle(SessionOpened("s1", "Ana", JOBS, command.attempt))
    assert wf.state is State.JOB_LIST


def test_enter_with_too_few_digits_says_so_and_sends_nothing(wf):
    tap_until_pin(wf, min_digits=6)
    digits(wf, "12345")
    commands = wf.handle(KeyPressed(Key.ENTER))
    assert others(commands) == []
    assert screens(commands) == [PinEntryScreen("Enter your PIN", 5, 6, "At least 6 digits")]
    digits(wf, "6")
    assert wf.screen.message == ""  # typing clears the hint
    assert wf.handle(KeyPressed(Key.BACKSPACE)) != []
    for _ in range(5):
        wf.handle(KeyPressed(Key.BACKSPACE))
    assert wf.handle(KeyPressed(Key.BACKSPACE)) == []  # nothing left to erase


def test_a_wrong_pin_asks_again_for_the_same_badge(wf):
    tap_until_pin(wf)
    digits(wf, "000000")
    attempt = others(wf.handle(KeyPressed(Key.ENTER)))[0].attempt
    shown = screens(wf.handle(SessionRefused("wrong-pin", "Wrong PIN", attempt)))
    assert shown == [PinEntryScreen("Enter your PIN", 0, 6, "Wrong PIN, try again")]
    digits(wf, "402817")
    (again,) = others(wf.handle(KeyPressed(Key.ENTER)))
    assert (again.tag, again.pin, again.pin_email) == (TAG, "402817", EMAIL)


@pytest.mark.parametrize(
    ("kind", "message", "title", "words"),
    [
        ("rate-limited", "Wait 8 seconds and try again", "Too many attempts", "Wait 8 seconds"),
        ("pin-locked", "PIN locked", "PIN locked", "Ask your administrator to reset it"),
        ("pin-not-set", "No PIN set", "No PIN set", "ask your administrator for one"),
    ],
)
def test_back_off_and_lockout_are_shown_in_words(wf, kind, message, title, words):
    tap_until_pin(wf)
    digits(wf, "111111")
    attempt = others(wf.handle(KeyPressed(Key.ENTER)))[0].attempt
    shown = screens(wf.handle(SessionRefused(kind, message, attempt)))
    assert wf.state is State.ERROR
    assert isinstance(shown[0], ErrorScreen)
    assert shown[0].title == title and words in shown[0].message
    wf.handle(Tick(100.0 + 7))
    assert wf.state is State.IDLE


def test_escape_cancel_and_inactivity_drop_the_entry(wf):
    tap_until_pin(wf)
    digits(wf, "12")
    assert screens(wf.handle(KeyPressed(Key.ESCAPE))) == [IdleScreen("Floor 2")]
    tap_until_pin(wf)
    wf.handle(ButtonPressed(Button.CANCEL))
    assert wf.state is State.IDLE
    tap_until_pin(wf)
    digits(wf, "1")
    wf.handle(Tick(110.0))  # the timer restarted with the digit: not yet
    assert wf.state is State.PIN_ENTRY
    wf.handle(Tick(131.0))
    assert wf.state is State.IDLE
    # A later PinRequested for an old attempt is ignored.
    assert wf.handle(PinRequested(EMAIL, 6, 1)) == []


def test_another_badge_during_pin_entry_starts_over_with_that_badge(wf):
    tap_until_pin(wf)
    digits(wf, "123")
    commands = wf.handle(CardPresented(OTHER))
    (command,) = others(commands)
    assert command.tag == OTHER and command.pin is None
    assert wf.state is State.IDENTIFYING


def test_typing_on_an_idle_station_enters_a_passcode(wf):
    shown = screens(wf.handle(KeyPressed(Key.DIGIT, "7")))
    assert wf.state is State.PIN_ENTRY
    assert shown == [PinEntryScreen("Enter passcode", 1, 10, "")]
    digits(wf, "390164825")
    (command,) = others(wf.handle(KeyPressed(Key.ENTER)))
    assert command == OpenPasscodeSession("7390164825", command.attempt)
    assert "7390164825" not in repr(command)
    shown = screens(wf.handle(SessionRefused("wrong-passcode", "x", command.attempt)))
    assert shown == [PinEntryScreen("Enter passcode", 0, 10, "Passcode not recognised")]
    digits(wf, "1234567890")
    (second,) = others(wf.handle(KeyPressed(Key.ENTER)))
    wf.handle(SessionOpened("s9", "Ana", JOBS, second.attempt))
    assert isinstance(wf.screen, JobListScreen)
    # Keys do nothing on the job list.
    assert wf.handle(KeyPressed(Key.DIGIT, "1")) == []


def test_an_unknown_badge_shows_its_enrolment_code_then_idles(wf):
    attempt = others(wf.handle(CardPresented(TAG)))[0].attempt
    shown = screens(wf.handle(EnrolmentOffered("k7dq-m2xr", 10, attempt)))
    assert shown == [EnrolmentScreen("k7dq-m2xr", 10)]
    assert wf.state is State.ENROLMENT
    wf.handle(Tick(159.0))
    assert wf.state is State.ENROLMENT
    wf.handle(Tick(161.0))
    assert wf.state is State.IDLE
    # A button leaves it at once; a tap starts over.
    attempt = others(wf.handle(CardPresented(TAG)))[0].attempt
    wf.handle(EnrolmentOffered("k7dq-m2xr", 10, attempt))
    wf.handle(ButtonPressed(Button.PRINT_ALL))
    assert wf.state is State.IDLE
    attempt = others(wf.handle(CardPresented(TAG)))[0].attempt
    wf.handle(EnrolmentOffered("k7dq-m2xr", 10, attempt))
    assert others(wf.handle(CardPresented(OTHER)))[0].tag == OTHER
    # An offer answering an old attempt is ignored.
    assert wf.handle(EnrolmentOffered("zzzz-zzzz", 10, attempt)) == []


def test_the_entry_never_shows_or_keeps_digits_after_take():
    entry = KeypadEntry.for_pin(4)
    for digit in "98765":
        assert entry.type(digit)
    assert not entry.type("x") and not entry.type("12")
    assert "9876" not in repr(entry)
    assert entry.complete and entry.take() == "98765"
    assert entry.length == 0 and not entry.complete
    full = KeypadEntry.for_passcode()
    for _ in range(16):
        full.type("1")
    assert not full.type("1")  # the field is full
