"""A real uvicorn server on 127.0.0.1: truncated uploads over a raw socket leave nothing behind."""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from cloud.app import create_app
from cloud.config import CloudConfig
from cloud.db import AuditEvent, Job
from cloud.server import RunningServer, start_in_thread
from cloud.service import CloudService
from tests.cloud.conftest import (
    SignedAuth,
    admin_headers,
    bearer,
    blob_files,
    pair_station,
    random_tag,
    staged_blobs,
)
from tests.support import profile


def service_of(running: RunningServer) -> CloudService:
    service = running.app.state.service
    assert isinstance(service, CloudService)
    return service


def make_user(base: str) -> str:
    response = httpx.post(
        f"{base}/api/v1/admin/users",
        json={"email": "sock@example.org", "display_name": "Sock"},
        headers=admin_headers(),
    )
    assert response.status_code == 201
    return str(response.json()["api_token"])


def wait_for(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_start_in_thread_binds_a_real_port(server: RunningServer) -> None:
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}


def test_real_truncated_upload_leaves_no_job_and_no_file(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = make_user(server.url)
    service = service_of(server)
    partial = b"%PDF-1.7 " + b"x" * 300_000  # big enough that a temp blob was being written
    head = (
        f"POST /api/v1/jobs?name=cut.pdf HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: application/pdf\r\n"
        f"Content-Length: 1000000\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + partial)
        # Wait until the server has staged some of it, so the abort path really runs.
        # (S3 stages nothing before a whole part: there the cut comes before any staging.)
        wait_for(lambda: bool(staged_blobs(service)) or profile.is_postgres())
    # The socket is closed: the server sees the body end 700 kB early.

    def aborted() -> bool:
        with service.context.read() as db:
            return (
                db.scalar(select(AuditEvent.id).where(AuditEvent.kind == "upload-aborted"))
                is not None
            )

    wait_for(aborted)
    listed = httpx.get(f"{server.url}/api/v1/jobs", headers=bearer(token))
    assert listed.json() == {"jobs": []}
    with service.context.read() as db:
        assert db.scalars(select(Job)).all() == []
        [detail] = db.scalars(select(AuditEvent.detail).where(AuditEvent.kind == "upload-aborted"))
    assert detail == "truncated-upload"
    assert blob_files(service) == []
    for record in caplog.records:
        assert token not in record.getMessage()


def test_a_small_upload_cut_short_leaves_no_job_and_is_audited(server: RunningServer) -> None:
    """A body announced small enough to be read whole (`WHOLE_BODY_BYTES`) and cut short is
    never begun, yet is recorded like a streamed one (`upload-aborted`, truncated-upload)."""
    from cloud.uploads import WHOLE_BODY_BYTES

    token = make_user(server.url)
    service = service_of(server)
    announced = WHOLE_BODY_BYTES // 2
    head = (
        f"POST /api/v1/jobs?name=cut.pdf HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: application/pdf\r\n"
        f"Content-Length: {announced}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + b"%PDF-1.7 " + b"x" * (announced // 2))

    def aborted() -> list[str | None]:
        with service.context.read() as db:
            return list(
                db.scalars(select(AuditEvent.detail).where(AuditEvent.kind == "upload-aborted"))
            )

    wait_for(lambda: bool(aborted()))
    assert aborted() == ["truncated-upload"]
    with service.context.read() as db:
        assert db.scalars(select(Job)).all() == []
    assert blob_files(service) == []


def test_complete_upload_over_a_real_socket(server: RunningServer) -> None:
    token = make_user(server.url)
    body = b"y" * 500_000
    response = httpx.post(
        f"{server.url}/api/v1/jobs",
        params={"name": "whole.txt"},
        content=body,
        headers={**bearer(token), "Content-Type": "text/plain"},
    )
    assert response.status_code == 201
    assert response.json()["size_bytes"] == len(body)
    assert [
        j["name"]
        for j in httpx.get(f"{server.url}/api/v1/jobs", headers=bearer(token)).json()["jobs"]
    ] == ["whole.txt"]


def test_no_tag_or_token_in_logs(server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    base = server.url
    token = make_user(base)
    user_id = token[4:].split(".")[0]
    tag = random_tag()
    httpx.post(
        f"{base}/api/v1/admin/users/{user_id}/cards", json={"tag": tag}, headers=admin_headers()
    )
    station = SignedAuth(pair_station(service_of(server)), lambda: datetime.now(UTC))
    unknown = random_tag()
    assert (
        httpx.post(
            f"{base}/api/v1/station/sessions", json={"tag": unknown}, auth=station
        ).status_code
        == 404
    )
    signed = httpx.post(f"{base}/api/v1/station/sessions", json={"tag": tag}, auth=station)
    assert signed.status_code == 201
    signature = signed.request.headers["signature"].split(":")[1]
    assert httpx.get(f"{base}/api/v1/jobs", headers=bearer(token + "x")).status_code == 401
    secrets = [tag, unknown, token, signature, admin_headers()["Authorization"][7:]]
    assert caplog.records  # the cloud did log; just never a secret
    for record in caplog.records:
        text = record.getMessage() + str(record.args)
        for secret in secrets:
            assert secret not in text


def test_sweeper_runs_with_the_lifespan(config: CloudConfig) -> None:
    app = create_app(dataclasses.replace(config, sweep_interval_s=1))
    sweeper = app.state.sweeper
    running = start_in_thread(app)
    try:
        assert sweeper.running
        wait_for(lambda: sweeper.runs >= 1, timeout_s=5)
    finally:
        running.stop()
    assert not sweeper.running
