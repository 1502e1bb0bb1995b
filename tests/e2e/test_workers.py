"""`pullprint cloud serve --workers 2` as real processes on the embedded SQLite database: the
workers share the port and the database, a release made through one wakes a station waiting
on the other, concurrent writers never see "database is locked", a killed worker comes back,
and SIGTERM stops them all. (PostgreSQL replicas: tests/e2e/test_replicas.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from cloud.config import generate_secrets, load_config
from cloud.context import utc_now
from cloud.events import SocketEventBus
from cloud.service import CloudService
from tests.cloud.conftest import PairedStation, SignedAuth, pair_station, random_tag
from tests.support import profile
from tools.procs import free_tcp_port

pytestmark = pytest.mark.skipif(
    profile.is_postgres(), reason="the SQLite workers; PostgreSQL replicas: test_replicas.py"
)


@dataclass
class Workers:
    process: subprocess.Popen[bytes]
    url: str
    service: CloudService  # the operator's view (as `pullprint admin` has): the same database
    log: Path

    def worker_pids(self) -> set[int]:
        return {child.pid for child in psutil.Process(self.process.pid).children()}


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    """One server for the module (starting one costs seconds); the last test stops it."""
    tmp_path = tmp_path_factory.mktemp("workers")
    data_dir = tmp_path / "cloud"
    data_dir.mkdir()
    generate_secrets(data_dir / "secrets.toml")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.pop("PULLPRINT_DATABASE_URL", None)
    port = free_tcp_port()
    log = tmp_path / "serve.log"
    args = [sys.executable, "-m", "tools.cli", "cloud", "serve", "--host", "127.0.0.1"]
    args += ["--port", str(port), "--data-dir", str(data_dir), "--workers", "2"]
    with open(log, "wb") as out:
        process = subprocess.Popen(args, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    service = None
    try:
        _wait_ready(process, url, log)
        config = load_config(None, {"PULLPRINT_DATA_DIR": str(data_dir)})
        service = CloudService.open(config)
        yield Workers(process, url, service, log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if service is not None:
            service.close()


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 90  # a loaded CI machine imports slowly
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1, trust_env=False).is_success:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, "the server exited:\n" + log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)


def _badge_user(service: CloudService) -> tuple[dict[str, str], str]:
    issued = service.identity.create_user(f"{random_tag()[:12]}@example.org", "Ada")
    tag = random_tag()
    service.identity.add_card(issued.id, tag, "blue")
    return {"Authorization": f"Bearer {issued.api_token}"}, tag


def test_a_release_through_one_worker_wakes_a_station_waiting_on_another(
    workers: Workers,
) -> None:
    assert len(workers.worker_pids()) == 2
    user, tag = _badge_user(workers.service)
    station: PairedStation = pair_station(workers.service)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def long_poll() -> None:
        # Each on its own connection: the kernel hands each to one worker or the other, so
        # with six of them the release below lands on a different worker than most.
        got = httpx.get(
            f"{workers.url}/api/v1/station/wait",
            params={"timeout_s": 40},
            auth=SignedAuth(station, utc_now),
            timeout=60,
            trust_env=False,
        )
        with lock:
            answers.append(got)

    waiters = [threading.Thread(target=long_poll) for _ in range(6)]
    for waiter in waiters:
        waiter.start()
    time.sleep(1.5)  # every long-poll is waiting
    assert answers == []
    started = time.monotonic()
    with httpx.Client(base_url=workers.url, timeout=15, trust_env=False) as http:
        job = http.post(
            "/api/v1/jobs",
            params={"name": "doc.pdf"},
            content=b"%PDF-1.7 hello",
            headers={**user, "Content-Type": "application/pdf"},
        )
        assert job.status_code == 201, job.text
        auth = SignedAuth(station, utc_now)
        session = http.post("/api/v1/station/sessions", json={"tag": tag}, auth=auth)
        assert session.status_code == 201, session.text
        released = http.post(
            f"/api/v1/station/sessions/{session.json()['session_id']}/releases",
            json={"job_ids": [job.json()["id"]]},
            auth=auth,
        )
        assert released.status_code == 201, released.text
    [release] = released.json()["releases"]
    for waiter in waiters:
        waiter.join(30)
    assert len(answers) == 6
    # Woken by the event (through the other worker's socket), not by the 40 s timeout.
    assert time.monotonic() - started < 20
    for answer in answers:
        assert answer.json() == {"events": ["release"], "releases": [release["id"]]}


def test_concurrent_writers_in_both_workers_never_see_a_locked_database(
    workers: Workers,
) -> None:
    admin = {"Authorization": f"Bearer {workers.service.config.admin_token}"}
    failures: list[str] = []

    def add_users(n: int) -> None:
        with httpx.Client(base_url=workers.url, timeout=30, trust_env=False) as http:
            for i in range(15):
                made = http.post(
                    "/api/v1/admin/users",
                    headers=admin,
                    json={"email": f"w{n}-{i}-{random_tag()[:6]}@example.org", "display_name": "W"},
                )
                if made.status_code != 201:
                    failures.append(f"{made.status_code} {made.text[:200]}")

    threads = [threading.Thread(target=add_users, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    assert len(workers.service.reports.users(workers.service.config.site)) >= 120


def test_workers_that_keep_failing_at_start_stop_the_server(tmp_path: Path) -> None:
    """Another process already holds worker 0's event socket (as a second server on the same
    database would): worker 0 dies at every start, and the server gives up with a reason
    instead of forking for ever."""
    data_dir = tmp_path / "cloud"
    data_dir.mkdir()
    generate_secrets(data_dir / "secrets.toml")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.pop("PULLPRINT_DATABASE_URL", None)
    config = load_config(None, {"PULLPRINT_DATA_DIR": str(data_dir)})
    squatter = SocketEventBus(config.database_url, 0, 2)
    log = tmp_path / "serve.log"
    args = [sys.executable, "-m", "tools.cli", "cloud", "serve", "--host", "127.0.0.1"]
    args += ["--port", str(free_tcp_port()), "--data-dir", str(data_dir), "--workers", "2"]
    try:
        with open(log, "wb") as out:
            process = subprocess.Popen(args, env=env, stdout=out, stderr=out)
        try:
            code = process.wait(120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
    finally:
        squatter.close()
    assert code != 0
    assert "workers keep exiting at start" in log.read_text()


def test_a_killed_worker_is_started_again_and_sigterm_stops_them_all(workers: Workers) -> None:
    before = workers.worker_pids()
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        now = workers.worker_pids()
        if len(now) == 2 and victim not in now:
            break
        assert time.monotonic() < deadline, f"not restarted: {now}"
        time.sleep(0.2)
    for _ in range(10):  # whichever worker answers, it answers
        assert httpx.get(f"{workers.url}/healthz", timeout=10, trust_env=False).is_success
    children = [psutil.Process(pid) for pid in workers.worker_pids()]
    workers.process.send_signal(signal.SIGTERM)
    assert workers.process.wait(30) == 0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
