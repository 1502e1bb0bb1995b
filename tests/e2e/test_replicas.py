"""Two cloud replicas (real `pullprint cloud serve` processes) on one PostgreSQL + S3, and the
faults of the cloud issue: a replica killed mid-upload or mid-release, the database restarting
under load. Runs under the postgres profile only (PULLPRINT_TEST_PROFILE=postgres)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cloud.config import generate_secrets, load_config
from cloud.context import utc_now
from cloud.db import Job
from cloud.service import CloudService
from station.signing import signature_headers
from tests.cloud.conftest import PairedStation, SignedAuth, pair_station, random_tag
from tests.support import profile
from tools.procs import ServerProcess, free_tcp_port

pytestmark = pytest.mark.skipif(
    not profile.is_postgres(), reason="replicas share PostgreSQL + S3: the postgres profile"
)
LEASE_S = 3


class Replica:
    """One `pullprint cloud serve` process."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._args = [
            sys.executable,
            "-m",
            "tools.cli",
            "cloud",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
        ]
        self._env = env
        self._server = ServerProcess(
            "the replica", data_dir.parent / f"replica-{self.port}.log", error=AssertionError
        )

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._server.process

    def spawn(self) -> None:
        self._server.spawn(self._args, env=self._env)

    def wait_ready(self) -> Replica:
        # 90 s: a loaded CI machine imports slowly.
        self._server.wait_until(self._healthy, 90, interval_s=0.1)
        return self

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1, trust_env=False).is_success
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine dies."""
        self._server.kill()

    def stop(self) -> None:
        self._server.stop(timeout_s=10)


@dataclass
class Cluster:
    a: Replica
    b: Replica
    service: CloudService  # the operator's view (as `pullprint admin` has): the same database
    user: dict[str, str]
    tag: str
    station: PairedStation

    def signed(self) -> SignedAuth:
        return SignedAuth(self.station, utc_now)

    def held(self, via: Replica) -> list[str]:
        got = httpx.get(f"{via.url}/api/v1/jobs", headers=self.user, timeout=10, trust_env=False)
        assert got.status_code == 200, got.text
        return [job["id"] for job in got.json()["jobs"] if job["state"] == "held"]


@dataclass
class Replicas:
    a: Replica
    b: Replica
    service: CloudService


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    """Two replicas for the module (starting one costs seconds); a test that kills one gets it
    back by the `cluster` fixture."""
    data_dir = tmp_path_factory.mktemp("replicas") / "cloud"
    data_dir.mkdir()
    generate_secrets(data_dir / "secrets.toml")
    storage = profile.cloud_env(data_dir, keep=True)  # starts the servers, sets S3 credentials
    env = {
        **{k: v for k, v in os.environ.items() if "proxy" not in k.lower()},
        **storage,
        "PULLPRINT_RELEASE_LEASE_S": str(LEASE_S),
        "PULLPRINT_SWEEP_INTERVAL_S": "1",
    }
    config = load_config(None, {**env, "PULLPRINT_DATA_DIR": str(data_dir)})
    service = CloudService.open(config)
    a, b = Replica(data_dir, env), Replica(data_dir, env)
    try:
        a.spawn()
        b.spawn()
        a.wait_ready()
        b.wait_ready()
        yield Replicas(a, b, service)
    finally:
        a.stop()
        b.stop()
        service.close()


@pytest.fixture
def cluster(replicas: Replicas) -> Cluster:
    """Both replicas up, and a new user with a badge and a new paired station."""
    for replica in (replicas.a, replicas.b):
        if replica.process is None:
            replica.spawn()
            replica.wait_ready()
    service = replicas.service
    issued = service.identity.create_user(f"{random_tag()[:12]}@example.org", "Ada")
    tag = random_tag()
    service.identity.add_card(issued.id, tag, "blue")
    station = pair_station(service)
    return Cluster(
        replicas.a,
        replicas.b,
        service,
        {"Authorization": f"Bearer {issued.api_token}"},
        tag,
        station,
    )


def _submit(cluster: Cluster, via: Replica, data: bytes = b"%PDF-1.7 hello") -> str:
    got = httpx.post(
        f"{via.url}/api/v1/jobs",
        params={"name": "doc.pdf"},
        content=data,
        headers={**cluster.user, "Content-Type": "application/pdf"},
        timeout=30,
        trust_env=False,
    )
    assert got.status_code == 201, got.text
    return str(got.json()["id"])


def _release(cluster: Cluster, via: Replica, job_id: str) -> dict[str, Any]:
    auth = cluster.signed()
    with httpx.Client(base_url=via.url, timeout=15, trust_env=False) as http:
        session = http.post("/api/v1/station/sessions", json={"tag": cluster.tag}, auth=auth)
        assert session.status_code == 201, session.text
        released = http.post(
            f"/api/v1/station/sessions/{session.json()['session_id']}/releases",
            json={"job_ids": [job_id]},
            auth=auth,
        )
        assert released.status_code == 201, released.text
        [release] = released.json()["releases"]
        return dict(release)


def test_a_release_through_one_replica_wakes_a_station_waiting_on_the_other(
    cluster: Cluster,
) -> None:
    answers: list[httpx.Response] = []

    def long_poll() -> None:
        answers.append(
            httpx.get(
                f"{cluster.b.url}/api/v1/station/wait",
                params={"timeout_s": 30},
                auth=cluster.signed(),
                timeout=40,
                trust_env=False,
            )
        )

    waiter = threading.Thread(target=long_poll)
    waiter.start()
    time.sleep(1.0)  # the station is waiting on B
    assert answers == []
    started = time.monotonic()
    job_id = _submit(cluster, cluster.a)
    release = _release(cluster, cluster.a, job_id)
    waiter.join(20)
    assert answers, "B never answered"
    assert time.monotonic() - started < 15  # woken by A's NOTIFY, not by the 30 s timeout
    assert answers[0].json() == {"events": ["release"], "releases": [release["id"]]}


def test_a_signed_request_replayed_to_the_other_replica_is_refused(cluster: Cluster) -> None:
    path = "/api/v1/station/wait?timeout_s=0"
    headers = signature_headers(
        cluster.station.identity,
        str(cluster.station.id),
        "GET",
        path,
        b"",
        created=int(time.time()),
    )
    first = httpx.get(cluster.a.url + path, headers=headers, timeout=10, trust_env=False)
    assert first.status_code == 200, first.text
    replayed = httpx.get(cluster.b.url + path, headers=headers, timeout=10, trust_env=False)
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "invalid-signature"


def test_a_replica_killed_mid_upload_leaves_no_partial_job(cluster: Cluster) -> None:
    # More than one S3 part, so a multipart upload is in progress when the replica dies.
    total = 40 * 1024 * 1024
    head = (
        f"POST /api/v1/jobs?name=big.pdf HTTP/1.1\r\nHost: 127.0.0.1:{cluster.a.port}\r\n"
        f"Authorization: {cluster.user['Authorization']}\r\nContent-Type: application/pdf\r\n"
        f"Content-Length: {total}\r\n\r\n"
    ).encode()
    store = cluster.service.blobs
    committed = store.list_keys()  # type: ignore[attr-defined]  # other tests' jobs
    with socket.create_connection(("127.0.0.1", cluster.a.port), timeout=30) as sock:
        sock.sendall(head)
        chunk = b"%PDF" + os.urandom(1024 * 1024 - 4)
        deadline = time.monotonic() + 30
        sent = 0
        while not store.pending_uploads():  # type: ignore[attr-defined]
            sock.sendall(chunk)
            sent += len(chunk)
            assert sent < total and time.monotonic() < deadline, "no multipart upload started"
        cluster.a.kill()
    assert cluster.held(cluster.b) == []
    with cluster.service.context.read() as db:
        assert db.scalars(select(Job).where(Job.name == "big.pdf")).all() == []
    assert store.list_keys() == committed  # type: ignore[attr-defined]  # nothing new is visible
    # The orphaned multipart upload is invisible; a restarted replica aborts it once stale.
    assert store.remove_stale_uploads(older_than_s=0) >= 1  # type: ignore[attr-defined]
    assert store.pending_uploads() == []  # type: ignore[attr-defined]


def test_a_replica_killed_mid_release_is_recovered_by_the_lease(cluster: Cluster) -> None:
    job_id = _submit(cluster, cluster.b, b"%PDF" + os.urandom(3 * 1024 * 1024))
    release = _release(cluster, cluster.a, job_id)
    with (
        httpx.Client(base_url=cluster.a.url, timeout=15, trust_env=False) as http,
        http.stream(
            "GET", f"/api/v1/station/releases/{release['id']}/content", auth=cluster.signed()
        ) as streaming,
    ):
        assert streaming.status_code == 200
        chunks = streaming.iter_bytes()
        next(chunks)  # delivery has begun ...
        cluster.a.kill()  # ... and the replica dies (what was in flight may still arrive)
        with contextlib.suppress(httpx.HTTPError):
            for _ in chunks:
                pass
    assert cluster.held(cluster.b) == []  # releasing: not in the list while the lease runs
    # B's sweeper expires the lease: the job is held again and can be released through B.
    deadline = time.monotonic() + LEASE_S + 15
    while cluster.held(cluster.b) != [job_id]:
        assert time.monotonic() < deadline, "the lease never expired"
        time.sleep(0.3)
    again = _release(cluster, cluster.b, job_id)
    content = httpx.get(
        f"{cluster.b.url}/api/v1/station/releases/{again['id']}/content",
        auth=cluster.signed(),
        timeout=15,
        trust_env=False,
    )
    assert content.status_code == 200
    assert len(content.content) == again["content_bytes"]


def test_the_database_restarting_under_load_loses_no_acknowledged_job(cluster: Cluster) -> None:
    acknowledged: list[str] = []
    refused: list[tuple[int, str]] = []
    stop = threading.Event()

    def client(via: Replica) -> None:
        with httpx.Client(base_url=via.url, timeout=20, trust_env=False) as http:
            while not stop.is_set():
                try:
                    got = http.post(
                        "/api/v1/jobs",
                        params={"name": "load.pdf"},
                        content=b"%PDF-1.7 " + os.urandom(2000),
                        headers={**cluster.user, "Content-Type": "application/pdf"},
                    )
                except httpx.TransportError:
                    refused.append((0, "transport"))
                    time.sleep(0.2)
                    continue
                if got.status_code == 201:
                    acknowledged.append(got.json()["id"])
                else:
                    refused.append((got.status_code, got.json().get("code", "")))
                    time.sleep(0.2)

    workers = [threading.Thread(target=client, args=(r,)) for r in (cluster.a, cluster.b) * 2]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.5)
        before = len(acknowledged)
        pg = profile.backends().pg
        pg.kill()
        time.sleep(1.0)
        pg.restart()
        time.sleep(3.0)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    assert before > 0 and len(acknowledged) > before, "the load did not resume after the restart"
    # Every refusal during the outage was a clear, retryable one.
    assert refused, "the restart was not noticed"
    assert {status for status, _ in refused} <= {503, 0}, refused
    assert {code for status, code in refused if status == 503} == {"database-unavailable"}
    listed = set(cluster.held(cluster.b))
    assert set(acknowledged) <= listed  # nothing acknowledged was lost
