"""Email + PIN at a full keyboard, in the sans-I/O workflow: the address shown as typed, the PIN
masked, the shape check, the answers in words, timeouts, Esc and a badge tap winning."""

from __future__ import annotations

from datetime import datetime

import pytest

from station.entry import MAX_EMAIL_CHARS, EmailEntry
from station.models import JobSummary
from station.screens import (
    EmailEntryScreen,
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
    Key,
    KeyPressed,
    OpenEmailSession,
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
JOBS = (JobSummary("j1", "report.pdf", datetime(2026, 5, 9, 9, 30), 120_000, 3),)
TIMINGS = Timings(identify_s=5, session_s=30, done_s=4, error_s=6, pin_s=20, enrolment_s=60)


def screens(commands):
    return [c.screen for c in commands if isinstance(c, ShowScreen)]


def others(commands):
    return [c for c in commands if not isinstance(c, ShowScreen)]


def type_text(wf: Workflow, text: str) -> list:
    out: list = []
    for char in text:
        key = Key.DIGIT if char.isdigit() else Key.CHARACTER
        out = wf.handle(KeyPressed(key, char))
    return out


def key(wf: Workflow, k: Key) -> list:
    return wf.handle(KeyPressed(k))


@pytest.fixture
def wf() -> Workflow:
    workflow = Workflow(TIMINGS, station_name="Floor 2", email_entry=True)
    workflow.handle(Tick(100.0))
    return workflow


def sign_in_until_pin(wf: Workflow, address: str = "Ana.Lima@Example.org ") -> None:
    type_text(wf, address.strip())
    assert wf.state is State.EMAIL_ENTRY
    key(wf, Key.ENTER)
    assert wf.state is State.PIN_ENTRY


def test_a_letter_opens_email_entry_and_the_address_is_shown_as_typed(wf):
    shown = screens(type_text(wf, "A"))
    assert wf.state is State.EMAIL_ENTRY
    assert shown == [EmailEntryScreen("A", "", "Enter your email")]
    shown = screens(type_text(wf, "na@x.org"))
    assert shown[-1].text == "Ana@x.org"
    assert screens(key(wf, Key.BACKSPACE))[-1].text == "Ana@x.or"
    assert wf.screen.lines() == ["Enter your email", "Ana@x.or_"]


def test_email_then_pin_opens_a_session_with_the_address_trimmed_and_lower_cased(wf):
    sign_in_until_pin(wf)
    assert wf.screen == PinEntryScreen("Enter your PIN", 0, 4, "")  # the station's guess
    for digit in "402817":
        shown = screens(wf.handle(KeyPressed(Key.DIGIT, digit)))
    assert shown == [PinEntryScreen("Enter your PIN", 6, 4, "")]
    commands = key(wf, Key.ENTER)
    assert wf.state is State.IDENTIFYING
    assert screens(commands) == [ReadingScreen("Checking…")]
    (sent,) = others(commands)
    assert sent == OpenEmailSession("ana.lima@example.org", "402817", sent.attempt)
    # Neither the address nor the PIN appears in a repr or on any screen from here on.
    assert "402817" not in repr(sent) and "ana.lima" not in repr(sent)
    shown = screens(wf.handle(SessionOpened("s1", "Ana Lima", JOBS, sent.attempt)))
    assert wf.state is State.JOB_LIST and isinstance(shown[0], JobListScreen)


def test_a_pin_shorter_than_four_is_not_sent_and_the_sites_minimum_is_learnt(wf):
    sign_in_until_pin(wf, "ana@x.org")
    for digit in "123":
        wf.handle(KeyPressed(Key.DIGIT, digit))
    assert others(key(wf, Key.ENTER)) == []
    assert wf.screen.message == "At least 4 digits"
    # A card + PIN challenge tells the station the site's minimum; email entry then uses it.
    attempt = others(wf.handle(CardPresented(TAG)))[0].attempt
    wf.handle(PinRequested("bo@x.org", 6, attempt))
    key(wf, Key.ESCAPE)
    sign_in_until_pin(wf, "ana@x.org")
    assert wf.screen == PinEntryScreen("Enter your PIN", 0, 6, "")


@pytest.mark.parametrize(
    "typed",
    [
        "ana",
        "ana@",
        "@x.org",
        "ana@x",
        "ana@x.",
        "ana@.org",
        "a@b@x.org",
        ".ana@x.org",
        "a..b@x.io",
    ],
)
def test_what_does_not_look_like_an_address_is_not_sent(wf, typed):
    key(wf, Key.TAB)  # "@" alone does not open the entry; Tab does
    type_text(wf, typed)
    commands = key(wf, Key.ENTER)
    assert wf.state is State.EMAIL_ENTRY and others(commands) == []
    assert screens(commands) == [
        EmailEntryScreen(typed, "Not an email address", "Enter your email")
    ]
    # Typing clears the message.
    assert screens(type_text(wf, "x"))[-1].message == ""


def test_the_address_is_capped_in_length():
    entry = EmailEntry()
    assert all(entry.type("a") for _ in range(MAX_EMAIL_CHARS))
    assert not entry.type("a") and len(entry.text) == MAX_EMAIL_CHARS
    assert not EmailEntry().type(" ") and not EmailEntry().type("ab")


def test_a_wrong_email_or_pin_brings_the_address_back_to_correct(wf):
    sign_in_until_pin(wf, "ana@x.org")
    for digit in "0000":
        wf.handle(KeyPressed(Key.DIGIT, digit))
    (sent,) = others(key(wf, Key.ENTER))
    shown = screens(wf.handle(SessionRefused("wrong-pin", "Wrong email or PIN", sent.attempt)))
    assert wf.state is State.EMAIL_ENTRY
    assert shown == [
        EmailEntryScreen("ana@x.org", "Wrong email or PIN, try again", "Enter your email")
    ]
    key(wf, Key.BACKSPACE)
    type_text(wf, "g")
    key(wf, Key.ENTER)
    for digit in "1234":
        wf.handle(KeyPressed(Key.DIGIT, digit))
    (again,) = others(key(wf, Key.ENTER))
    assert again == OpenEmailSession("ana@x.org", "1234", again.attempt)
    assert again.attempt == sent.attempt + 1


@pytest.mark.parametrize(
    ("kind", "message", "title"),
    [
        ("rate-limited", "Wait 8 seconds and try again", "Too many attempts"),
        ("pin-locked", "PIN locked", "PIN locked"),
    ],
)
def test_back_off_and_lockout_are_shown_in_words(wf, kind, message, title):
    sign_in_until_pin(wf, "ana@x.org")
    for digit in "1234":
        wf.handle(KeyPressed(Key.DIGIT, digit))
    (sent,) = others(key(wf, Key.ENTER))
    shown = screens(wf.handle(SessionRefused(kind, message, sent.attempt)))
    assert wf.state is State.ERROR and isinstance(shown[0], ErrorScreen)
    assert shown[0].title == title


@pytest.mark.parametrize("leave", ["escape", "cancel", "timeout"])
def test_esc_cancel_or_inactivity_drop_the_typed_address(wf, leave):
    type_text(wf, "ana@x")
    wf.handle(Tick(110.0))
    type_text(wf, ".or")  # typing restarts the inactivity timer
    wf.handle(Tick(125.0))
    assert wf.state is State.EMAIL_ENTRY
    if leave == "escape":
        shown = screens(key(wf, Key.ESCAPE))
    elif leave == "cancel":
        shown = screens(wf.handle(ButtonPressed(Button.CANCEL)))
    else:
        shown = screens(wf.handle(Tick(131.0)))
    assert wf.state is State.IDLE and shown == [IdleScreen("Floor 2")]
    # Nothing of the old address survives into the next entry.
    assert screens(type_text(wf, "b")) == [EmailEntryScreen("b", "", "Enter your email")]


@pytest.mark.parametrize("at", ["email", "pin"])
def test_a_badge_tap_while_typing_wins_and_discards_the_text(wf, at):
    if at == "email":
        type_text(wf, "ana@x.or")
    else:
        sign_in_until_pin(wf, "ana@x.org")
        wf.handle(KeyPressed(Key.DIGIT, "4"))
    commands = wf.handle(CardPresented(TAG))
    assert wf.state is State.IDENTIFYING
    (opened,) = others(commands)
    assert isinstance(opened, OpenSession) and opened.pin is None and opened.pin_email is None
    shown = screens(wf.handle(SessionOpened("s1", "Bo", JOBS, opened.attempt)))
    assert isinstance(shown[0], JobListScreen)
    key(wf, Key.ESCAPE)  # Esc means nothing on the job list
    wf.handle(ButtonPressed(Button.CANCEL))
    assert screens(type_text(wf, "c")) == [EmailEntryScreen("c", "", "Enter your email")]


def test_tab_opens_an_empty_entry_for_an_address_that_starts_with_a_digit(wf):
    assert screens(key(wf, Key.TAB)) == [EmailEntryScreen("", "", "Enter your email")]
    type_text(wf, "7@x.org")
    key(wf, Key.ENTER)
    assert wf.state is State.PIN_ENTRY


def test_a_digit_on_an_idle_station_is_still_a_passcode(wf):
    type_text(wf, "1234567890")
    assert wf.state is State.PIN_ENTRY
    type_text(wf, "a")  # letters do not go into a passcode (it is masked)
    (sent,) = others(key(wf, Key.ENTER))
    assert sent == OpenPasscodeSession("1234567890", sent.attempt)


def test_a_keypad_only_station_never_offers_email_entry():
    wf = Workflow(TIMINGS, station_name="Floor 2")  # email_entry=False: a numeric keypad
    wf.handle(Tick(100.0))
    for k in (Key.CHARACTER, Key.TAB):
        assert wf.handle(KeyPressed(k, "a" if k is Key.CHARACTER else "")) == []
        assert wf.state is State.IDLE
    # In a PIN entry, a letter is not mistaken for Enter.
    attempt = others(wf.handle(CardPresented(TAG)))[0].attempt
    wf.handle(PinRequested("bo@x.org", 4, attempt))
    for digit in "1234":
        wf.handle(KeyPressed(Key.DIGIT, digit))
    assert wf.handle(KeyPressed(Key.CHARACTER, "a")) == []
    assert wf.state is State.PIN_ENTRY
