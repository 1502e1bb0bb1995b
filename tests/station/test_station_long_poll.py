"""The long-poll loop (station.long_poll) and the workflow's remote deliveries: polls only while
idle and online, hands an unreachable cloud to the outage logic, backs off on other errors; the
workflow takes remote releases only while idle and names their owner."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from station.errors import CloudRejectedError, CloudUnreachableError
from station.long_poll import LongPoll
from station.models import JobSummary
from station.screens import DeliveringScreen, DeliveryItem, DoneScreen, IdleScreen, JobListScreen
from station.workflow import (
    CardPresented,
    DeliverRemote,
    DeliveryFinished,
    JobPrinted,
    RemoteJob,
    RemoteJobs,
    RemoteReleases,
    SessionOpened,
    ShowScreen,
    State,
    Tick,
    Workflow,
)


class FakeStation:
    def __init__(self) -> None:
        self.state = State.IDLE
        self.offline = False
        self.offered: list[list[str]] = []
        self.unreachable: list[BaseException] = []

    def remote_releases(self, release_ids: list[str]) -> None:
        self.offered.append(release_ids)
        self.state = State.DELIVERING  # as the workflow would

    def cloud_unreachable(self, exc: BaseException) -> None:
        self.unreachable.append(exc)
        self.offline = True


class ScriptedCloud:
    """Answers each wait() with the next scripted answer (a list of ids or an exception)."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.calls: list[int] = []
        self.done = threading.Event()

    def wait(self, timeout_s: int) -> list[str]:
        self.calls.append(timeout_s)
        if not self.answers:
            self.done.set()
            time.sleep(0.05)
            return []
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, list)
        return answer


def run(station: FakeStation, cloud: ScriptedCloud, delays: list[int]) -> LongPoll:
    def delay_s(attempt: int) -> float:
        delays.append(attempt)
        return 0.01

    poll = LongPoll(station, cloud, delay_s, poll_s=7, idle_check_s=0.01)
    poll.start()
    return poll


def test_releases_go_to_the_station_and_errors_back_off() -> None:
    station, delays = FakeStation(), []
    rejected = CloudRejectedError("HTTP 500", status=500, code=None, detail=None)
    cloud = ScriptedCloud([], rejected, rejected, ["r1", "r2"])
    poll = run(station, cloud, delays)
    try:
        deadline = time.monotonic() + 5
        while not station.offered and time.monotonic() < deadline:
            time.sleep(0.01)
        assert station.offered == [["r1", "r2"]]
        assert delays == [0, 1]  # exponential: the second failure waits the second step
        calls = len(cloud.calls)
        time.sleep(0.1)  # the station is delivering: no poll meanwhile
        assert len(cloud.calls) == calls
        assert set(cloud.calls) == {7}
        station.state = State.IDLE
        assert cloud.done.wait(5)
    finally:
        poll.stop()
    assert poll.errors == 2


def test_an_unreachable_cloud_stops_polling_until_the_station_is_online() -> None:
    station, delays = FakeStation(), []
    cloud = ScriptedCloud(CloudUnreachableError("cannot reach the cloud"), ["r9"])
    poll = run(station, cloud, delays)
    try:
        deadline = time.monotonic() + 5
        while not station.unreachable and time.monotonic() < deadline:
            time.sleep(0.01)
        assert station.offline and len(cloud.calls) == 1
        time.sleep(0.1)
        assert len(cloud.calls) == 1 and delays == []  # the outage logic owns the probing
        station.offline = False
        deadline = time.monotonic() + 5
        while not station.offered and time.monotonic() < deadline:
            time.sleep(0.01)
        assert station.offered == [["r9"]]
    finally:
        poll.stop()


JOBS = (JobSummary("j1", "report.pdf", datetime(2026, 5, 9, 9, 30), 120_000, 3),)


def screens(commands):
    return [c.screen for c in commands if isinstance(c, ShowScreen)]


def test_the_workflow_delivers_remote_releases_only_when_idle_and_names_the_owner() -> None:
    wf = Workflow(station_name="Floor 2")
    wf.handle(Tick(0.0))
    commands = wf.handle(RemoteReleases(("r1",)))
    assert wf.state is State.DELIVERING
    assert [c for c in commands if not isinstance(c, ShowScreen)] == [DeliverRemote(("r1",))]
    shown = screens(wf.handle(RemoteJobs((RemoteJob("j1", "report.pdf", "Ana Lima"),))))
    assert shown == [DeliveringScreen((DeliveryItem("report.pdf"),), "Ana Lima")]
    assert shown[0].lines()[0] == "Printing for Ana Lima"
    assert wf.handle(CardPresented("a" * 64)) == []  # a tap while delivering is ignored
    wf.handle(JobPrinted("j1"))
    done = screens(wf.handle(DeliveryFinished()))
    assert done == [DoneScreen(1, "Ana Lima")] and wf.state is State.DONE
    assert done[0].lines()[1] == "Printed 1 job for Ana Lima"
    # The next, ordinary delivery is nobody's in particular.
    wf.handle(Tick(10.0))
    assert wf.state is State.IDLE


def test_remote_releases_with_nothing_left_to_print_return_to_idle() -> None:
    wf = Workflow(station_name="Floor 2")
    wf.handle(RemoteReleases(("r1",)))
    wf.handle(RemoteJobs(()))
    assert screens(wf.handle(DeliveryFinished())) == [IdleScreen("Floor 2")]


def test_remote_releases_are_ignored_while_someone_is_at_the_station() -> None:
    wf = Workflow()
    attempt = [c for c in wf.handle(CardPresented("a" * 64)) if not isinstance(c, ShowScreen)]
    wf.handle(SessionOpened("s1", "Bo", JOBS, attempt[0].attempt))
    assert isinstance(wf.screen, JobListScreen)
    assert wf.handle(RemoteReleases(("r1",))) == []
    assert wf.handle(RemoteJobs((RemoteJob("j9", "x.pdf", "Eve"),))) == []
    assert wf.state is State.JOB_LIST
