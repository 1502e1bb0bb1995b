"""The release workflow state machine: every transition, driven by events alone."""

from __future__ import annotations

from datetime import datetime

import pytest

from station.models import JobSummary
from station.screens import (
    DeliveringScreen,
    DoneScreen,
    ErrorScreen,
    IdleScreen,
    JobListScreen,
    NoJobsScreen,
    OfflineScreen,
    ReadingScreen,
)
from station.workflow import (
    Button,
    ButtonPressed,
    CardPresented,
    DeleteJob,
    DeliveryFinished,
    EndSession,
    JobDeleted,
    JobFailed,
    JobPrinted,
    JobProgress,
    OpenSession,
    ReleaseJobs,
    SessionOpened,
    SessionRefused,
    ShowScreen,
    State,
    Tick,
    Timings,
    Workflow,
)

TAG_A = "a" * 64
TAG_B = "b" * 64
TIMINGS = Timings(identify_s=5, session_s=30, done_s=4, error_s=6)
JOBS = (
    JobSummary("j1", "report.pdf", datetime(2026, 5, 9, 9, 30), 120_000, 3),
    JobSummary("j2", "slides.pdf", datetime(2026, 5, 9, 10, 0), 2_000_000, None),
    JobSummary("j3", "notes.txt", datetime(2026, 5, 9, 11, 15), 900, 1),
)


def screens(commands):
    return [c.screen for c in commands if isinstance(c, ShowScreen)]


def others(commands):
    return [c for c in commands if not isinstance(c, ShowScreen)]


@pytest.fixture
def wf() -> Workflow:
    workflow = Workflow(TIMINGS, station_name="Floor 2")
    workflow.handle(Tick(100.0))
    return workflow


def to_job_list(wf: Workflow, jobs=JOBS, tag=TAG_A) -> None:
    commands = wf.handle(CardPresented(tag))
    attempt = next(c for c in commands if isinstance(c, OpenSession)).attempt
    wf.handle(SessionOpened("s1", "Ana", jobs, attempt))
    assert wf.state is State.JOB_LIST


def test_start_shows_idle():
    wf = Workflow(station_name="Floor 2")
    assert wf.state is State.IDLE
    assert screens(wf.start()) == [IdleScreen("Floor 2")]


def test_tap_opens_a_session_and_shows_reading(wf):
    commands = wf.handle(CardPresented(TAG_A))
    assert wf.state is State.IDENTIFYING
    assert screens(commands) == [ReadingScreen()]
    assert others(commands) == [OpenSession(TAG_A, 1)]


def test_tag_is_never_in_a_repr(wf):
    commands = wf.handle(CardPresented(TAG_A))
    assert TAG_A not in repr(CardPresented(TAG_A))
    assert TAG_A not in repr(commands)


def test_session_opened_shows_the_job_list(wf):
    wf.handle(CardPresented(TAG_A))
    commands = wf.handle(SessionOpened("s1", "Ana", JOBS, 1))
    assert wf.state is State.JOB_LIST
    assert screens(commands) == [JobListScreen("Ana", JOBS, 0, frozenset())]
    assert wf.session_id == "s1"


def test_empty_job_list_says_no_jobs_then_idle(wf):
    wf.handle(CardPresented(TAG_A))
    commands = wf.handle(SessionOpened("s1", "Ana", (), 1))
    assert wf.state is State.DONE
    assert screens(commands) == [NoJobsScreen("Ana")]
    assert "No jobs waiting" in screens(commands)[0].lines()
    assert others(commands) == [EndSession("s1")]
    assert wf.handle(Tick(103.9)) == []
    assert screens(wf.handle(Tick(104.0))) == [IdleScreen("Floor 2")]
    assert wf.state is State.IDLE


def test_unknown_card_shows_badge_not_recognised_without_the_tag(wf):
    wf.handle(CardPresented(TAG_A))
    commands = wf.handle(SessionRefused("unknown-card", "Badge not recognised", 1))
    assert wf.state is State.ERROR
    (screen,) = screens(commands)
    assert isinstance(screen, ErrorScreen)
    assert screen.title == "Badge not recognised"
    assert TAG_A not in " ".join(screen.lines())
    wf.handle(Tick(105.9))
    assert wf.state is State.ERROR
    wf.handle(Tick(106.0))
    assert wf.state is State.IDLE


def test_offline_shows_the_offline_screen(wf):
    wf.handle(CardPresented(TAG_A))
    commands = wf.handle(SessionRefused("offline", "Cannot reach the print service", 1))
    assert wf.state is State.ERROR
    assert screens(commands) == [OfflineScreen("Cannot reach the print service")]


def test_other_refusal_shows_an_error(wf):
    wf.handle(CardPresented(TAG_A))
    commands = wf.handle(SessionRefused("error", "The print service refused", 1))
    assert screens(commands) == [ErrorScreen("Something went wrong", "The print service refused")]


def test_identify_timeout_says_cloud_not_responding_and_ends_the_late_session(wf):
    wf.handle(CardPresented(TAG_A))
    assert wf.handle(Tick(104.9)) == []
    commands = wf.handle(Tick(105.0))
    assert wf.state is State.ERROR
    assert screens(commands)[0].title == "Cloud not responding"
    late = wf.handle(SessionOpened("s-late", "Ana", JOBS, 1))
    assert late == [EndSession("s-late")]
    assert wf.state is State.ERROR


def test_deadline_starts_at_first_tick_when_none_was_seen():
    wf = Workflow(TIMINGS)
    wf.handle(CardPresented(TAG_A))
    assert wf.handle(Tick(1000.0)) == []  # arms the deadline
    assert wf.state is State.IDENTIFYING
    wf.handle(Tick(1005.0))
    assert wf.state is State.ERROR


def test_a_stale_answer_never_shows_jobs_to_the_next_person(wf):
    wf.handle(CardPresented(TAG_A))  # attempt 1
    wf.handle(Tick(105.0))  # times out
    wf.handle(CardPresented(TAG_B))  # attempt 2
    assert wf.handle(SessionOpened("s-a", "Ana", JOBS, 1)) == [EndSession("s-a")]
    assert wf.handle(SessionRefused("offline", "x", 1)) == []
    assert wf.state is State.IDENTIFYING
    wf.handle(SessionOpened("s-b", "Bo", JOBS, 2))
    assert wf.state is State.JOB_LIST
    assert wf.screen.display_name == "Bo"


def test_cancel_while_identifying_goes_idle(wf):
    wf.handle(CardPresented(TAG_A))
    wf.handle(ButtonPressed(Button.CANCEL))
    assert wf.state is State.IDLE
    assert wf.handle(SessionOpened("s1", "Ana", JOBS, 1)) == [EndSession("s1")]


def test_second_tap_while_identifying_is_ignored(wf):
    wf.handle(CardPresented(TAG_A))
    assert wf.handle(CardPresented(TAG_B)) == []
    assert wf.state is State.IDENTIFYING


def test_cursor_moves_and_wraps(wf):
    to_job_list(wf)
    assert screens(wf.handle(ButtonPressed(Button.DOWN)))[0].cursor == 1
    assert screens(wf.handle(ButtonPressed(Button.DOWN)))[0].cursor == 2
    assert screens(wf.handle(ButtonPressed(Button.DOWN)))[0].cursor == 0
    assert screens(wf.handle(ButtonPressed(Button.UP)))[0].cursor == 2


def test_select_toggles_the_job_under_the_cursor(wf):
    to_job_list(wf)
    assert screens(wf.handle(ButtonPressed(Button.SELECT)))[0].selected == {"j1"}
    wf.handle(ButtonPressed(Button.DOWN))
    wf.handle(ButtonPressed(Button.DOWN))
    assert screens(wf.handle(ButtonPressed(Button.SELECT)))[0].selected == {"j1", "j3"}
    assert screens(wf.handle(ButtonPressed(Button.SELECT)))[0].selected == {"j1"}


def test_print_all_releases_every_shown_job(wf):
    to_job_list(wf)
    commands = wf.handle(ButtonPressed(Button.PRINT_ALL))
    assert wf.state is State.DELIVERING
    assert others(commands) == [ReleaseJobs("s1", ("j1", "j2", "j3"))]
    (screen,) = screens(commands)
    assert isinstance(screen, DeliveringScreen)
    assert [item.name for item in screen.items] == ["report.pdf", "slides.pdf", "notes.txt"]
    assert {item.state for item in screen.items} == {"waiting"}


def test_print_selected_releases_the_ticked_jobs_in_list_order(wf):
    to_job_list(wf)
    wf.handle(ButtonPressed(Button.UP))
    wf.handle(ButtonPressed(Button.SELECT))  # j3
    wf.handle(ButtonPressed(Button.DOWN))
    wf.handle(ButtonPressed(Button.SELECT))  # j1
    commands = wf.handle(ButtonPressed(Button.PRINT_SELECTED))
    assert others(commands) == [ReleaseJobs("s1", ("j1", "j3"))]


def test_print_selected_with_nothing_ticked_prints_the_job_under_the_cursor(wf):
    to_job_list(wf)
    wf.handle(ButtonPressed(Button.DOWN))
    commands = wf.handle(ButtonPressed(Button.PRINT_SELECTED))
    assert others(commands) == [ReleaseJobs("s1", ("j2",))]


def test_delete_asks_the_cloud_and_removes_the_job_when_done(wf):
    to_job_list(wf)
    wf.handle(ButtonPressed(Button.DOWN))
    wf.handle(ButtonPressed(Button.DOWN))
    wf.handle(ButtonPressed(Button.SELECT))
    assert wf.handle(ButtonPressed(Button.DELETE)) == [DeleteJob("s1", "j3")]
    (screen,) = screens(wf.handle(JobDeleted("j3")))
    assert [job.job_id for job in screen.jobs] == ["j1", "j2"]
    assert screen.cursor == 1
    assert screen.selected == frozenset()
    assert wf.handle(JobDeleted("j3")) == []  # twice: nothing more


def test_deleting_the_last_job_says_no_jobs(wf):
    to_job_list(wf, jobs=JOBS[:1])
    wf.handle(ButtonPressed(Button.DELETE))
    commands = wf.handle(JobDeleted("j1"))
    assert wf.state is State.DONE
    assert screens(commands) == [NoJobsScreen("Ana")]
    assert others(commands) == [EndSession("s1")]


def test_cancel_on_the_job_list_ends_the_session(wf):
    to_job_list(wf)
    commands = wf.handle(ButtonPressed(Button.CANCEL))
    assert wf.state is State.IDLE
    assert others(commands) == [EndSession("s1")]
    assert screens(commands) == [IdleScreen("Floor 2")]
    assert wf.session_id is None


def test_job_list_inactivity_ends_the_session(wf):
    to_job_list(wf)
    wf.handle(Tick(120.0))
    wf.handle(ButtonPressed(Button.DOWN))  # activity restarts the timer: deadline 150
    assert wf.handle(Tick(149.9)) == []
    commands = wf.handle(Tick(150.0))
    assert wf.state is State.IDLE
    assert others(commands) == [EndSession("s1")]


def test_same_badge_on_the_job_list_keeps_the_session(wf):
    to_job_list(wf)
    wf.handle(Tick(125.0))
    assert wf.handle(CardPresented(TAG_A)) == []
    assert wf.state is State.JOB_LIST
    wf.handle(Tick(150.0))  # would have expired at 130 without the re-tap
    assert wf.state is State.JOB_LIST


def test_another_badge_on_the_job_list_starts_a_new_session(wf):
    to_job_list(wf)
    commands = wf.handle(CardPresented(TAG_B))
    assert wf.state is State.IDENTIFYING
    assert others(commands) == [EndSession("s1"), OpenSession(TAG_B, 2)]
    assert screens(commands) == [ReadingScreen()]


def test_delivery_shows_progress_then_done(wf):
    to_job_list(wf, jobs=JOBS[:2])
    wf.handle(ButtonPressed(Button.PRINT_ALL))
    (screen,) = screens(wf.handle(JobProgress("j1", 500, 1000)))
    assert screen.items[0].state == "sending"
    assert screen.items[0].percent == 50
    assert wf.handle(JobProgress("j1", 501, 1000)) == []  # same percent: no redraw
    assert screens(wf.handle(JobProgress("j1", 1000, 1000)))[0].items[0].percent == 99
    assert screens(wf.handle(JobPrinted("j1")))[0].items[0].status == "printed"
    assert wf.handle(JobProgress("j1", 1000, 1000)) == []  # late progress keeps "printed"
    wf.handle(JobPrinted("j2"))
    commands = wf.handle(DeliveryFinished())
    assert wf.state is State.DONE
    assert screens(commands) == [DoneScreen(2)]
    assert others(commands) == [EndSession("s1")]
    wf.handle(Tick(103.0))
    assert wf.state is State.DONE
    wf.handle(Tick(104.0))
    assert wf.state is State.IDLE


def test_no_timeout_while_delivering(wf):
    to_job_list(wf)
    wf.handle(ButtonPressed(Button.PRINT_ALL))
    wf.handle(Tick(10_000.0))
    assert wf.state is State.DELIVERING


def test_second_tap_during_delivery_is_ignored(wf):
    to_job_list(wf)
    wf.handle(ButtonPressed(Button.PRINT_ALL))
    assert wf.handle(CardPresented(TAG_B)) == []
    assert wf.handle(CardPresented(TAG_A)) == []
    assert wf.handle(ButtonPressed(Button.CANCEL)) == []
    assert wf.state is State.DELIVERING
    assert wf.session_id == "s1"


def test_a_failed_job_shows_the_reason_and_that_it_is_held(wf):
    to_job_list(wf, jobs=JOBS[:1])
    wf.handle(ButtonPressed(Button.PRINT_ALL))
    assert screens(wf.handle(JobFailed("j1", "Out of paper")))[0].items[0].state == "failed"
    commands = wf.handle(DeliveryFinished())
    assert wf.state is State.ERROR
    assert screens(commands) == [
        ErrorScreen("Not printed", "Out of paper — your job is still held")
    ]
    assert others(commands) == [EndSession("s1")]
    wf.handle(Tick(106.0))
    assert wf.state is State.IDLE


def test_partly_printed_says_how_many_failed(wf):
    to_job_list(wf)
    wf.handle(ButtonPressed(Button.PRINT_ALL))
    wf.handle(JobPrinted("j1"))
    wf.handle(JobFailed("j2", "Paper jam"))
    wf.handle(JobFailed("j3", "Paper jam"))
    (screen,) = screens(wf.handle(DeliveryFinished()))
    assert screen == ErrorScreen("2 of 3 not printed", "Paper jam — your jobs are still held")


def test_a_failed_release_request_shows_its_error(wf):
    to_job_list(wf)
    wf.handle(ButtonPressed(Button.PRINT_ALL))
    (screen,) = screens(wf.handle(DeliveryFinished(error="Cannot reach the print service")))
    assert wf.state is State.ERROR
    assert screen.message == "Cannot reach the print service — your jobs are still held"


def test_events_for_other_jobs_or_states_are_ignored(wf):
    assert wf.handle(JobPrinted("j1")) == []
    assert wf.handle(DeliveryFinished()) == []
    assert wf.handle(JobDeleted("j1")) == []
    assert wf.handle(ButtonPressed(Button.PRINT_ALL)) == []
    to_job_list(wf)
    wf.handle(ButtonPressed(Button.PRINT_ALL))
    assert wf.handle(JobProgress("unknown", 1, 2)) == []


def test_a_tap_on_the_done_screen_starts_the_next_person(wf):
    wf.handle(CardPresented(TAG_A))
    wf.handle(SessionOpened("s1", "Ana", (), 1))
    commands = wf.handle(CardPresented(TAG_B))
    assert wf.state is State.IDENTIFYING
    assert others(commands) == [OpenSession(TAG_B, 2)]


def test_a_button_dismisses_an_error(wf):
    wf.handle(CardPresented(TAG_A))
    wf.handle(SessionRefused("offline", "x", 1))
    wf.handle(ButtonPressed(Button.SELECT))
    assert wf.state is State.IDLE
