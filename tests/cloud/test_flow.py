"""The whole loop through the API: submit, tap, release, fetch, decrypt, confirm, destroy."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import uuid

import pytest
from fastapi.testclient import TestClient

from cloud.container import Decryptor
from cloud.db import Job
from cloud.service import CloudService
from tests.cloud.conftest import FakeClock, World, admin_headers, blob_files


def service_of(client: TestClient) -> CloudService:
    service = client.app.state.service  # type: ignore[attr-defined]
    assert isinstance(service, CloudService)
    return service


def test_full_flow_printed_destroys_content(
    world: World, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    document = os.urandom(300_000)  # several container chunks, not a multiple of 64 KiB
    job = world.submit(document, name="secret-plan.pdf")
    assert job["sha256"] == hashlib.sha256(document).hexdigest()
    [blob] = blob_files(service_of(client))

    session_id = world.session()
    [release] = world.release(session_id, {"all": True}).json()["releases"]
    data_key = base64.b64decode(release["data_key"])
    assert len(data_key) == 32

    response = client.get(f"/api/v1/station/releases/{release['id']}/content", auth=world.station)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert (
        int(response.headers["content-length"]) == release["content_bytes"] == len(response.content)
    )
    assert document[:100] not in response.content

    decryptor = Decryptor(data_key, uuid.UUID(job["id"]), release["site"])
    plain = bytearray()
    for i in range(0, len(response.content), 10_000):  # chunk by chunk, as the station does
        plain += decryptor.update(response.content[i : i + 10_000])
    plain += decryptor.finalize()
    assert bytes(plain) == document

    # Fetching again while delivering is allowed (a station that restarted mid-stream).
    again = client.get(f"/api/v1/station/releases/{release['id']}/content", auth=world.station)
    assert again.content == response.content

    outcome = f"/api/v1/station/releases/{release['id']}/outcome"
    body = {"outcome": "printed", "reason": None, "printer_job_id": 17}
    first = client.post(outcome, json=body, auth=world.station)
    assert first.json() == {"id": release["id"], "state": "printed"}
    repeat = client.post(outcome, json=body, auth=world.station)  # idempotent
    assert (repeat.status_code, repeat.json()) == (200, first.json())

    assert not blob.exists()
    assert blob_files(service_of(client)) == []
    admin_view = client.get(f"/api/v1/admin/jobs/{job['id']}", headers=admin_headers()).json()
    assert (admin_view["state"], admin_view["content_held"]) == ("printed", False)
    assert admin_view["printed_at"] is not None
    with service_of(client).context.read() as db:
        row = db.get(Job, uuid.UUID(job["id"]))
        assert row is not None
        assert row.wrapped_key is None
    assert client.get("/api/v1/jobs", headers=world.user).json() == {"jobs": []}

    secrets = [
        world.tag,
        world.user["Authorization"][7:],
        release["data_key"],
    ]
    for record in caplog.records:
        text = record.getMessage()
        for secret in secrets:
            assert secret not in text
        assert document[:32].hex() not in text


def test_failed_release_returns_job_to_the_list(world: World, client: TestClient) -> None:
    job = world.submit()
    session_id = world.session()
    [release] = world.release(session_id, {"job_ids": [job["id"]]}).json()["releases"]
    client.get(f"/api/v1/station/releases/{release['id']}/content", auth=world.station)
    outcome = f"/api/v1/station/releases/{release['id']}/outcome"
    body = {"outcome": "failed", "reason": "printer out of paper", "printer_job_id": None}
    assert client.post(outcome, json=body, auth=world.station).json()["state"] == "failed"
    assert client.post(outcome, json=body, auth=world.station).status_code == 200
    listed = client.get("/api/v1/jobs", headers=world.user).json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]
    admin_view = client.get(f"/api/v1/admin/jobs/{job['id']}", headers=admin_headers()).json()
    assert (admin_view["state"], admin_view["content_held"]) == ("held", True)
    conflict = client.post(outcome, json={"outcome": "printed"}, auth=world.station)
    assert conflict.status_code == 409
    # Released again, it prints.
    [second] = world.release(world.session(), {"all": True}).json()["releases"]
    assert second["id"] != release["id"]


def test_sweep_expires_jobs_and_leases(world: World, client: TestClient, clock: FakeClock) -> None:
    expiring = world.submit(name="old")
    clock.advance(hours=20)
    leased = world.submit(name="leased")
    [release] = world.release(world.session(), {"job_ids": [leased["id"]]}).json()["releases"]
    clock.advance(hours=4, seconds=1)  # the first job has expired, the lease too
    sweep = client.post("/api/v1/admin/sweep", headers=admin_headers())
    assert sweep.json() == {"expired_jobs": 1, "expired_leases": 1}
    old = client.get(f"/api/v1/admin/jobs/{expiring['id']}", headers=admin_headers()).json()
    assert (old["state"], old["content_held"]) == ("expired", False)
    back = client.get(f"/api/v1/admin/jobs/{leased['id']}", headers=admin_headers()).json()
    assert (back["state"], back["content_held"]) == ("held", True)
    content = client.get(f"/api/v1/station/releases/{release['id']}/content", auth=world.station)
    assert content.status_code == 409
    assert [j["id"] for j in client.get("/api/v1/jobs", headers=world.user).json()["jobs"]] == [
        leased["id"]
    ]
    [blob] = blob_files(service_of(client))
    assert blob.name == uuid.UUID(leased["id"]).hex
