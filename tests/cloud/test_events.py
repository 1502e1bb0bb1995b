"""The event bus (cloud.events) and the station long-poll `GET /api/v1/station/wait`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest

from cloud.app import create_app
from cloud.config import CloudConfig
from cloud.events import RESYNC, LocalEventBus, PostgresEventBus, station_topic
from cloud.server import RunningServer, start_in_thread
from cloud.service import CloudService
from tests.cloud.conftest import FakeClock, SignedAuth, TestClient, World, pair_station
from tests.support import profile


def test_local_bus_delivers_to_the_topic_only() -> None:
    bus = LocalEventBus()
    with bus.subscribe("station:a") as a, bus.subscribe("station:b") as b:
        bus.publish("station:a", "release")
        assert a.wait(1.0) == ["release"]
        assert b.wait(0.0) == []
    bus.publish("station:a", "release")  # nobody subscribed any more: dropped, no error
    with bus.subscribe("station:a") as late:
        assert late.wait(0.05) == []  # hints are not stored for later subscribers


def test_wait_times_out_empty_and_reports_a_waiting_release(world: World) -> None:
    client = world.client
    empty = client.get("/api/v1/station/wait", params={"timeout_s": 0}, auth=world.station)
    assert empty.status_code == 200
    assert empty.json() == {"events": [], "releases": []}
    job = world.submit()
    [release] = world.release(world.session(), {"job_ids": [job["id"]]}).json()["releases"]
    found = client.get("/api/v1/station/wait", params={"timeout_s": 30}, auth=world.station)
    assert found.json() == {"events": ["release"], "releases": [release["id"]]}
    # Fetching the content takes it out of the list.
    client.get(f"/api/v1/station/releases/{release['id']}/content", auth=world.station)
    again = client.get("/api/v1/station/wait", params={"timeout_s": 0}, auth=world.station)
    assert again.json() == {"events": [], "releases": []}


def test_wait_is_signed_and_bounded(world: World) -> None:
    unsigned = world.client.get("/api/v1/station/wait", params={"timeout_s": 0})
    assert unsigned.status_code == 401
    too_long = world.client.get(
        "/api/v1/station/wait", params={"timeout_s": 600}, auth=world.station
    )
    assert too_long.status_code == 422


@pytest.fixture
def server(config: CloudConfig, clock: FakeClock) -> Iterator[RunningServer]:
    app = create_app(config, now=clock, run_sweeper=False)
    running = start_in_thread(app, host="127.0.0.1", port=0)
    yield running
    running.stop()


class SocketClient(httpx.Client):
    """An HTTP client over a real socket that `World` can drive like a TestClient."""

    def __init__(self, server: RunningServer) -> None:
        super().__init__(base_url=server.url, timeout=30, trust_env=False)
        self.app = server.app


def test_a_release_wakes_a_waiting_station_at_once(server: RunningServer, clock: FakeClock) -> None:
    with SocketClient(server) as http:
        world = World(cast(Any, http), clock)
        answers: list[httpx.Response] = []

        def long_poll() -> None:
            answers.append(
                http.get("/api/v1/station/wait", params={"timeout_s": 20}, auth=world.station)
            )

        waiter = threading.Thread(target=long_poll)
        started = time.monotonic()
        waiter.start()
        time.sleep(0.5)  # the station is waiting
        assert answers == []
        job = world.submit()
        [release] = world.release(world.session(), {"job_ids": [job["id"]]}).json()["releases"]
        waiter.join(15)
        assert answers, "the station was not woken"
        assert time.monotonic() - started < 10  # woken, not timed out (20 s)
        assert answers[0].json() == {"events": ["release"], "releases": [release["id"]]}


def test_another_sites_release_neither_wakes_nor_shows(
    client: TestClient, clock: FakeClock
) -> None:
    service: CloudService = client.app.state.service  # type: ignore[attr-defined]
    a = World(client, clock)
    service.sites.add("site-b")
    b_station = SignedAuth(pair_station(service, "B printer", site="site-b"), clock)
    with service.events.subscribe(station_topic(a.station_id)) as watch:
        job = a.submit()
        a.release(a.session(), {"job_ids": [job["id"]]})
        assert watch.wait(5.0) == ["release"]
    waited = client.get("/api/v1/station/wait", params={"timeout_s": 0}, auth=b_station)
    assert waited.json() == {"events": [], "releases": []}


@pytest.mark.skipif(not profile.is_postgres(), reason="LISTEN/NOTIFY: the postgres profile")
def test_notify_reaches_another_replica_and_survives_a_database_restart(
    service: CloudService,
) -> None:
    other = PostgresEventBus(service.engine)
    assert isinstance(service.events, PostgresEventBus)
    try:
        with other.subscribe("station:x") as sub:
            assert other.wait_listening()
            service.events.publish("station:x", "release")
            assert sub.wait(5.0) == ["release"]
            pg = profile.backends().pg
            pg.kill()
            pg.restart()
            # The listener reconnects and wakes everyone: NOTIFYs sent meanwhile were lost.
            assert RESYNC in sub.wait(15.0)
            assert other.wait_listening(15.0)
            service.events.publish("station:x", "config")
            assert sub.wait(5.0) == ["config"]
    finally:
        other.close()


@pytest.mark.skipif(not profile.is_postgres(), reason="LISTEN/NOTIFY: the postgres profile")
def test_the_listener_runs_only_while_someone_waits(service: CloudService) -> None:
    bus = PostgresEventBus(service.engine)
    bus.LINGER_S = 0.2  # type: ignore[misc]
    try:
        assert not bus.wait_listening(0.1)  # nobody subscribed: no connection held
        with bus.subscribe("station:y"):
            assert bus.wait_listening(5.0)
        deadline = time.monotonic() + 10
        while bus.wait_listening(0):
            assert time.monotonic() < deadline, "the idle listener kept its connection"
            time.sleep(0.1)
        with bus.subscribe("station:y") as sub:  # started again on demand
            bus.publish("station:y", "release")
            assert sub.wait(5.0) == ["release"]
    finally:
        bus.close()


def test_revoking_a_station_wakes_it(service: CloudService) -> None:
    paired = pair_station(service)
    with service.events.subscribe(station_topic(paired.id)) as watch:
        service.stations.revoke(paired.id)
        assert watch.wait(5.0) == ["revoked"]
