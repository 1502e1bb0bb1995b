"""A card the reader could not read: the workflow's rules, the screen, the light and the sound.

The readers' side (each reader type raising `CardUnreadableError` from its simulated device) is in
tests/hardware/test_reader_*.py; the runtime's pump from reader to workflow is at the end here.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from hardware.panel.base import LightPattern, Sound
from hardware.panel.simulated import SimulatedBuzzer, SimulatedStatusLight
from hardware.readers.errors import UNREADABLE_REASONS
from station.models import JobSummary
from station.parts import Feedback
from station.screens import (
    UNREADABLE_TEXT,
    CardUnreadableScreen,
    DeliveringScreen,
    EnrolmentScreen,
    IdleScreen,
    JobListScreen,
    OfflineScreen,
    PinEntryScreen,
    ReadingScreen,
)
from station.workflow import (
    CardPresented,
    CardUnreadable,
    CloudDown,
    EndSession,
    EnrolmentOffered,
    Key,
    KeyPressed,
    OpenSession,
    PinRequested,
    SessionOpened,
    ShowScreen,
    State,
    Tick,
    Timings,
    Workflow,
)

TAG = "a" * 64
TIMINGS = Timings(identify_s=5, session_s=30, done_s=4, error_s=6, pin_s=20)
JOBS = (JobSummary("j1", "report.pdf", datetime(2026, 5, 9, 9, 30), 120_000, 3),)


def _screens(commands: list) -> list:
    return [c.screen for c in commands if isinstance(c, ShowScreen)]


def _workflow() -> Workflow:
    wf = Workflow(TIMINGS, station_name="Floor 2")
    wf.handle(Tick(100.0))
    return wf


def _attempt(commands: list) -> int:
    return next(c for c in commands if isinstance(c, OpenSession)).attempt


def test_idle_shows_the_error_then_returns_to_idle_after_the_error_timeout() -> None:
    wf = _workflow()
    commands = wf.handle(CardUnreadable("parity"))
    assert commands == [ShowScreen(CardUnreadableScreen("parity"))]
    assert wf.state is State.ERROR
    assert wf.handle(Tick(105.9)) == []
    assert _screens(wf.handle(Tick(106.0))) == [IdleScreen("Floor 2")]
    assert wf.state is State.IDLE


def test_a_good_tap_right_after_is_read_as_usual() -> None:
    wf = _workflow()
    wf.handle(CardUnreadable("garbled"))
    commands = wf.handle(CardPresented(TAG))
    assert _screens(commands) == [ReadingScreen()]
    assert wf.state is State.IDENTIFYING
    assert any(isinstance(c, OpenSession) for c in commands)


def test_a_bad_read_during_a_job_list_keeps_the_session_and_its_timer() -> None:
    wf = _workflow()
    attempt = _attempt(wf.handle(CardPresented(TAG)))
    wf.handle(SessionOpened("s1", "Ana", JOBS, attempt))
    assert wf.state is State.JOB_LIST
    wf.handle(Tick(120.0))
    assert wf.handle(CardUnreadable("garbled")) == []  # no screen change, no EndSession
    assert wf.state is State.JOB_LIST and wf.session_id == "s1"
    assert isinstance(wf.screen, JobListScreen)
    # Not activity by the user: the inactivity timeout still ends the session on time.
    ended = wf.handle(Tick(130.0))
    assert EndSession("s1") in ended and wf.state is State.IDLE


def test_a_bad_read_never_interrupts_identifying_a_pin_an_enrolment_or_a_delivery() -> None:
    wf = _workflow()
    attempt = _attempt(wf.handle(CardPresented(TAG)))
    assert wf.handle(CardUnreadable("garbled")) == []
    assert wf.state is State.IDENTIFYING
    wf.handle(PinRequested("ana@example.org", 4, attempt))
    wf.handle(KeyPressed(Key.DIGIT, "1"))
    assert wf.handle(CardUnreadable("not-read")) == []
    assert wf.state is State.PIN_ENTRY
    assert isinstance(wf.screen, PinEntryScreen) and wf.screen.entered == 1  # digits kept

    wf = _workflow()
    attempt = _attempt(wf.handle(CardPresented(TAG)))
    wf.handle(EnrolmentOffered("k7dq-m2xr", 10, attempt))
    assert wf.handle(CardUnreadable("garbled")) == []
    assert isinstance(wf.screen, EnrolmentScreen)

    wf = _workflow()
    attempt = _attempt(wf.handle(CardPresented(TAG)))
    wf.handle(SessionOpened("s1", "Ana", JOBS, attempt, release_all=True))
    assert wf.state is State.DELIVERING
    assert wf.handle(CardUnreadable("garbled")) == []
    assert isinstance(wf.screen, DeliveringScreen)


def test_offline_shows_the_card_problem_then_the_offline_screen_again() -> None:
    wf = _workflow()
    wf.handle(CloudDown("Cannot reach the print service"))
    assert _screens(wf.handle(CardUnreadable("unsupported"))) == [
        CardUnreadableScreen("unsupported")
    ]
    assert wf.state is State.OFFLINE
    assert _screens(wf.handle(Tick(106.0))) == [OfflineScreen("Cannot reach the print service")]


def test_every_reader_reason_has_its_own_words_and_no_card_data() -> None:
    assert set(UNREADABLE_TEXT) == set(UNREADABLE_REASONS)
    texts = {reason: CardUnreadableScreen(reason).lines() for reason in UNREADABLE_REASONS}
    assert len({tuple(lines) for lines in texts.values()}) == len(UNREADABLE_REASONS)
    for reason, lines in texts.items():
        assert lines[0] == ("Unusable card" if reason == "unsupported" else "Card not read")
        assert not any(ch.isdigit() for line in lines for ch in line)
    # A reason this station does not know yet still gets the general advice, not a crash.
    assert CardUnreadableScreen("new-kind").lines() == CardUnreadableScreen("garbled").lines()
    assert CardUnreadableScreen().label == "unreadable"


def test_the_error_light_and_sound_go_with_the_screen() -> None:
    light, buzzer = SimulatedStatusLight(), SimulatedBuzzer()
    Feedback(light, buzzer).screen_shown(CardUnreadableScreen("garbled"))
    assert light.pattern is LightPattern.ERROR
    assert buzzer.played == [Sound.FAILURE]


@pytest.mark.parametrize("reason", ["garbled", "unsupported"])
def test_the_runtime_turns_a_reader_signal_into_the_screen(tmp_path, reason: str) -> None:
    from hardware.display.simulated import SimulatedDisplay
    from hardware.readers.simulated import SimulatedCardReader
    from station.app import build_station
    from station.config import load_config
    from tests.station.test_station_app import ANA, CONFIG, FakeCloud, FakePrinter

    (tmp_path / "station.toml").write_text(CONFIG)
    reader = SimulatedCardReader()
    station = build_station(
        load_config(tmp_path / "station.toml", {}),
        reader=reader,
        display=SimulatedDisplay(128, 64, "1"),
        transport=FakePrinter(),
        client=FakeCloud({"report.txt": b"report"}),
    )
    station.start()
    try:
        reader.present_unreadable(reason)  # type: ignore[arg-type]
        assert station.wait_for_state(State.ERROR, 5)
        assert CardUnreadableScreen(reason) in station.screens
        assert station.wait_for_state(State.IDLE, 5)  # error_s is 0.3 s in this config
        reader.present(ANA)  # the reader thread kept going: the next tap is served
        assert station.wait_for_state(State.JOB_LIST, 5)
    finally:
        station.stop()
