"""The REST side of jobs: Idempotency-Key, sealed submissions, quota problems, site policy,
delegations, and the station's view of them."""

from __future__ import annotations

import base64
import uuid
from typing import cast

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud.container import Encryptor, hpke_wrap_key, new_data_key
from cloud.service import CloudService
from tests.cloud.conftest import TestClient, World, admin_headers, bearer
from tests.cloud.test_api import assert_problem


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def post_job(world: World, data: bytes, key: str | None, **params: object) -> httpx.Response:
    headers = {**world.user, "Content-Type": "text/plain"}
    if key is not None:
        headers["Idempotency-Key"] = key
    response = world.client.post(
        "/api/v1/jobs", params={"name": "a.txt", **params}, content=data, headers=headers
    )
    assert isinstance(response, httpx.Response)
    return response


def test_idempotency_key_over_http(world: World) -> None:
    first = post_job(world, b"body", "retry-1")
    assert first.status_code == 201
    again = post_job(world, b"body", "retry-1")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = post_job(world, b"other body", "retry-1")
    assert_problem(other, 422, "idempotency-key-reused")
    listed = world.client.get("/api/v1/jobs", headers=world.user).json()["jobs"]
    assert [job["id"] for job in listed] == [first.json()["id"]]


def test_quota_problem_names_usage_and_limit(world: World) -> None:
    put = world.client.put(
        "/api/v1/admin/site-policy", json={"quota_bytes": 500}, headers=admin_headers()
    )
    assert put.status_code == 200 and put.json()["quota_bytes"] == 500
    response = post_job(world, b"x" * 600, None)
    body = assert_problem(response, 413, "quota-exceeded")
    assert (body["used_bytes"], body["quota_bytes"]) == (0, 500)
    site = world.client.get("/api/v1/site", headers=world.user).json()
    assert (site["held_bytes"], site["policy"]["quota_bytes"]) == (0, 500)


def test_site_policy_admin_and_user_views(world: World) -> None:
    policy = world.client.get("/api/v1/admin/site-policy", headers=admin_headers()).json()
    assert policy["zero_knowledge"] is False and policy["public_key"] is None
    bad = world.client.put(
        "/api/v1/admin/site-policy", json={"zero_knowledge": True}, headers=admin_headers()
    )
    assert_problem(bad, 400, "invalid-request")
    refused = world.client.put(
        "/api/v1/admin/site-policy", json={"keep_printed": True}, headers=world.user
    )
    assert refused.status_code == 401
    changed = world.client.put(
        "/api/v1/admin/site-policy",
        json={"job_names": "hide", "release_all_on_tap": True, "job_expiry_h": 8},
        headers=admin_headers(),
    ).json()
    assert (changed["job_names"], changed["release_all_on_tap"], changed["job_expiry_h"]) == (
        "hide",
        True,
        8,
    )
    job = world.submit(name="private.txt")
    admin_view = world.client.get(f"/api/v1/admin/jobs/{job['id']}", headers=admin_headers())
    assert admin_view.json()["name"] == "Document" and "private.txt" not in admin_view.text
    opened = world.client.post(
        "/api/v1/station/sessions", json={"tag": world.tag}, auth=world.station
    ).json()
    assert opened["release_all"] is True and opened["jobs"][0]["name"] == "Document"


def test_sealed_submission_over_http(world: World) -> None:
    key = X25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    plain = post_job(world, b"x", None)
    assert plain.status_code == 201
    on = world.client.put(
        "/api/v1/admin/site-policy",
        json={"zero_knowledge": True, "public_key": b64url(public)},
        headers=admin_headers(),
    )
    assert on.status_code == 200, on.text
    site = world.client.get("/api/v1/site", headers=world.user).json()["policy"]
    assert site["zero_knowledge"] and site["public_key"] == b64url(public)
    assert_problem(post_job(world, b"plain", None), 409, "sealed-job-required")

    job_id, data_key = uuid.uuid4(), new_data_key()
    enc = Encryptor(data_key, job_id, site["site"])
    container = enc.header + enc.update(b"sealed document") + enc.finalize()
    wrapped = hpke_wrap_key(public, data_key, job_id, site["site"])
    headers = {
        **world.user,
        "Content-Type": "application/vnd.pullprint.sealed-job",
        "PullPrint-Wrapped-Key": b64url(wrapped),
        "Idempotency-Key": "zk-1",
    }
    params = {"name": "s.pdf", "job_id": str(job_id), "format": "application/pdf", "pages": 4}
    sent = world.client.post("/api/v1/jobs", params=params, content=container, headers=headers)
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert (body["id"], body["format"], body["pages"], body["sha256"]) == (
        str(job_id),
        "application/pdf",
        4,
        None,
    )
    assert body["zero_knowledge"] is True and body["size_bytes"] == len(b"sealed document")
    retried = world.client.post("/api/v1/jobs", params=params, content=container, headers=headers)
    assert retried.status_code == 200 and retried.json()["id"] == str(job_id)
    missing_key = {k: v for k, v in headers.items() if k != "PullPrint-Wrapped-Key"}
    missing_key["Idempotency-Key"] = "zk-2"
    assert_problem(
        world.client.post("/api/v1/jobs", params=params, content=container, headers=missing_key),
        400,
        "invalid-sealed-job",
    )
    # The station receives the wrapped key, never a data key.
    session_id = world.session()
    released = world.release(session_id, {"job_ids": [str(job_id)]}).json()["releases"][0]
    assert released["key_wrap"] == "hpke" and released["data_key"] is None
    assert base64.b64decode(released["wrapped_key"]) == wrapped


def test_delegations_over_http(world: World, client: TestClient) -> None:
    made = client.post(
        "/api/v1/admin/users",
        json={"email": "bo@example.org", "display_name": "Bo"},
        headers=admin_headers(),
    ).json()
    granted = client.post(
        "/api/v1/delegations", json={"email": "bo@example.org"}, headers=world.user
    )
    assert granted.status_code == 201 and granted.json()["delegate_id"] == made["id"]
    assert_problem(
        client.post("/api/v1/delegations", json={"email": "nobody@x.org"}, headers=world.user),
        404,
        "user-not-found",
    )
    listed = client.get("/api/v1/delegations", headers=world.user).json()["delegations"]
    assert [d["email"] for d in listed] == ["bo@example.org"]
    service = cast(CloudService, client.app.state.service)
    job = world.submit(name="ada's.txt")
    bo_tag = "b" * 64
    service.identity.add_card(uuid.UUID(made["id"]), bo_tag, "bo")
    opened = client.post("/api/v1/station/sessions", json={"tag": bo_tag}, auth=world.station)
    [listed_job] = opened.json()["jobs"]
    assert (listed_job["id"], listed_job["owner_name"]) == (job["id"], "Ada")
    gone = client.delete(f"/api/v1/delegations/{made['id']}", headers=world.user)
    assert gone.status_code == 204
    assert client.get("/api/v1/delegations", headers=bearer(made["api_token"])).json() == {
        "delegations": []
    }


def test_station_cancels_a_release(world: World) -> None:
    job = world.submit()
    session_id = world.session()
    [release] = world.release(session_id, {"job_ids": [job["id"]]}).json()["releases"]
    outcome = f"/api/v1/station/releases/{release['id']}/outcome"
    cancelled = world.client.post(outcome, json={"outcome": "cancelled"}, auth=world.station)
    assert cancelled.json() == {"id": release["id"], "state": "cancelled"}
    listed = world.client.get("/api/v1/jobs", headers=world.user).json()["jobs"]
    assert [j["state"] for j in listed] == ["held"]
    late = world.client.post(outcome, json={"outcome": "printed"}, auth=world.station)
    assert_problem(late, 409, "release-conflict")


def test_print_options_are_recorded(world: World) -> None:
    job = world.submit(copies=2, sides="two-sided-long-edge", **{"color-mode": "monochrome"})
    assert (job["copies"], job["sides"], job["color_mode"]) == (
        2,
        "two-sided-long-edge",
        "monochrome",
    )
    bad = post_job(world, b"x", None, sides="three-sided")
    assert_problem(bad, 422, "invalid-request")
