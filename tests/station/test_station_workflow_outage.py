"""The workflow's outage rules: CloudDown / CloudUp (sans-I/O; no clock but Tick)."""

from __future__ import annotations

from datetime import datetime

from station.models import JobSummary
from station.screens import IdleScreen, OfflineScreen
from station.workflow import (
    OFFLINE_TAP_MESSAGE,
    Button,
    ButtonPressed,
    CardPresented,
    CloudDown,
    CloudUp,
    DeliveryFinished,
    JobPrinted,
    OpenSession,
    SessionOpened,
    ShowScreen,
    State,
    Tick,
    Timings,
    Workflow,
)

TAG = "c" * 64
JOB = JobSummary("j1", "report.pdf", datetime(2026, 5, 9, 9, 30), 120_000, 3)


def _screens(commands):
    return [c.screen for c in commands if isinstance(c, ShowScreen)]


def _workflow() -> Workflow:
    wf = Workflow(Timings(identify_s=5, session_s=30, done_s=4, error_s=6))
    wf.handle(Tick(100.0))
    return wf


def test_idle_goes_offline_and_back_to_idle() -> None:
    wf = _workflow()
    assert _screens(wf.handle(CloudDown("Cannot reach the print service"))) == [
        OfflineScreen("Cannot reach the print service")
    ]
    assert wf.state is State.OFFLINE
    assert wf.handle(ButtonPressed(Button.PRINT_ALL)) == []  # nothing to do offline
    assert wf.handle(Tick(1000.0)) == []  # offline has no timeout of its own
    assert _screens(wf.handle(CloudUp())) == [IdleScreen("")]
    assert wf.state is State.IDLE


def test_a_tap_offline_says_so_opens_nothing_and_the_notice_times_out() -> None:
    wf = _workflow()
    wf.handle(CloudDown("Offline"))
    commands = wf.handle(CardPresented(TAG))
    assert not any(isinstance(c, OpenSession) for c in commands)
    assert _screens(commands) == [OfflineScreen(OFFLINE_TAP_MESSAGE)]
    assert TAG not in repr(commands)
    wf.handle(Tick(101.0))
    assert _screens(wf.handle(Tick(106.5))) == [OfflineScreen("Offline")]
    assert wf.state is State.OFFLINE


def test_a_delivery_finishes_before_the_station_shows_offline() -> None:
    wf = _workflow()
    attempt = next(c for c in wf.handle(CardPresented(TAG)) if isinstance(c, OpenSession)).attempt
    wf.handle(SessionOpened("s1", "Ana", (JOB,), attempt))
    wf.handle(ButtonPressed(Button.PRINT_ALL))
    assert wf.state is State.DELIVERING
    assert wf.handle(CloudDown("Offline")) == []  # the delivery screen stays
    assert wf.state is State.DELIVERING
    wf.handle(JobPrinted("j1"))
    wf.handle(DeliveryFinished())
    assert wf.state is State.DONE  # the person still sees that their job printed
    wf.handle(Tick(101.0))
    assert _screens(wf.handle(Tick(105.5))) == [OfflineScreen("Offline")]  # then offline
    assert wf.state is State.OFFLINE


def test_cloud_up_mid_session_just_forgets_the_outage() -> None:
    wf = _workflow()
    wf.handle(CardPresented(TAG))
    wf.handle(CloudDown("Offline"))
    assert wf.handle(CloudUp()) == []
    assert wf.state is State.IDENTIFYING
