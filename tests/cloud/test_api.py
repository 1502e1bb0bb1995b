"""REST API v1 through FastAPI's TestClient: every endpoint, and its problem responses."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from cloud.api.schemas import OpenedSession, SessionJob, SessionUser, iso, opened_session_json
from cloud.jobs import JobView
from cloud.sessions import SessionView
from cloud.states import JobState
from tests.cloud.conftest import (
    ADMIN_TOKEN,
    FakeClock,
    SignedAuth,
    World,
    admin_headers,
    bearer,
    pair_station,
    random_tag,
)

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:pullprint:problem:{code}"
    assert body["code"] == code
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    return body


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


# -- authentication -------------------------------------------------------------------------


ADMIN_CALLS = [
    ("post", "/api/v1/admin/users", {"email": "x@y.z", "display_name": "X"}),
    ("post", f"/api/v1/admin/users/{uuid.uuid4()}/cards", {"tag": "0" * 64}),
    ("get", "/api/v1/admin/stations", None),
    ("post", f"/api/v1/admin/stations/{uuid.uuid4()}/revoke", None),
    ("get", f"/api/v1/admin/jobs/{uuid.uuid4()}", None),
    ("post", "/api/v1/admin/sweep", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-of-sufficient-length-000000"},
        {"Authorization": ADMIN_TOKEN},
    ],
)
def test_admin_endpoints_need_the_admin_token(
    client: TestClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> None:
    response = client.request(method, path, json=body, headers=headers)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_user_tokens_and_station_signatures_are_not_interchangeable(world: World) -> None:
    c = world.client
    assert_problem(c.get("/api/v1/jobs"), 401, "unauthorized")
    assert_problem(c.get("/api/v1/jobs", auth=world.station), 401, "unauthorized")
    assert_problem(c.get("/api/v1/jobs", headers=admin_headers()), 401, "unauthorized")
    assert_problem(
        c.post("/api/v1/station/sessions", json={"tag": world.tag}, headers=world.user),
        401,
        "invalid-signature",
    )
    assert_problem(
        c.post(
            "/api/v1/admin/users", json={"email": "a@b.c", "display_name": "A"}, headers=world.user
        ),
        401,
        "unauthorized",
    )


def test_revoked_station_gets_401_at_once(world: World, client: TestClient) -> None:
    session_id = world.session()
    revoked = client.post(
        f"/api/v1/admin/stations/{world.station_id}/revoke", headers=admin_headers()
    )
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    for response in (
        client.post("/api/v1/station/sessions", json={"tag": world.tag}, auth=world.station),
        client.delete(f"/api/v1/station/sessions/{session_id}", auth=world.station),
    ):
        assert_problem(response, 401, "station-revoked")
        assert response.headers["www-authenticate"] == "Signature"


# -- admin ----------------------------------------------------------------------------------


def test_admin_create_user_conflict_and_validation(world: World) -> None:
    c = world.client
    again = c.post(
        "/api/v1/admin/users",
        json={"email": "ada@example.org", "display_name": "Ada 2"},
        headers=admin_headers(),
    )
    assert_problem(again, 409, "user-exists")
    bad = c.post("/api/v1/admin/users", json={"email": "nope"}, headers=admin_headers())
    assert_problem(bad, 422, "invalid-request")


def test_admin_add_card_errors(world: World) -> None:
    c = world.client
    path = f"/api/v1/admin/users/{world.user_id}/cards"
    assert_problem(
        c.post(path, json={"tag": world.tag}, headers=admin_headers()), 409, "credential-exists"
    )
    bad_tag = "XYZ" + world.tag[3:]
    body = assert_problem(
        c.post(path, json={"tag": bad_tag}, headers=admin_headers()), 422, "invalid-tag"
    )
    assert bad_tag not in body["detail"]
    missing = c.post(
        f"/api/v1/admin/users/{uuid.uuid4()}/cards",
        json={"tag": random_tag()},
        headers=admin_headers(),
    )
    assert_problem(missing, 404, "user-not-found")


def test_admin_station_list_shape(world: World) -> None:
    response = world.client.get("/api/v1/admin/stations", headers=admin_headers())
    assert response.status_code == 200
    [station] = response.json()["stations"]
    assert set(station) == {
        "id",
        "site",
        "name",
        "printer_uri",
        "fingerprint",
        "created_at",
        "revoked_at",
    }
    assert station["id"] == world.station_id
    assert station["fingerprint"] == world.paired.identity.fingerprint
    one = world.client.get(f"/api/v1/admin/stations/{world.station_id}", headers=admin_headers())
    assert one.json() == station
    missing = world.client.get(f"/api/v1/admin/stations/{uuid.uuid4()}", headers=admin_headers())
    assert_problem(missing, 404, "station-not-found")


def test_admin_get_job(world: World) -> None:
    job = world.submit()
    response = world.client.get(f"/api/v1/admin/jobs/{job['id']}", headers=admin_headers())
    assert response.status_code == 200
    body = response.json()
    assert body["owner_id"] == world.user_id
    assert body["state"] == "held"
    assert body["content_held"] is True
    assert body["size_bytes"] == len(b"hello printer")
    missing = world.client.get(f"/api/v1/admin/jobs/{uuid.uuid4()}", headers=admin_headers())
    assert_problem(missing, 404, "job-not-found")


def test_admin_sweep(world: World, clock: FakeClock) -> None:
    world.submit()
    clock.advance(hours=25)
    response = world.client.post("/api/v1/admin/sweep", headers=admin_headers())
    assert response.json() == {"expired_jobs": 1, "expired_leases": 0}


# -- jobs -----------------------------------------------------------------------------------


def test_submit_shape(world: World) -> None:
    job = world.submit(b"abc", name="notes.txt", copies=2)
    assert set(job) >= {
        "id",
        "name",
        "format",
        "size_bytes",
        "sha256",
        "copies",
        "state",
        "submitted_at",
        "expires_at",
    }
    assert (job["name"], job["format"], job["size_bytes"], job["copies"], job["state"]) == (
        "notes.txt",
        "text/plain",
        3,
        2,
        "held",
    )
    assert job["submitted_at"] == "2030-01-02T03:04:05.000Z"
    assert job["expires_at"] == "2030-01-03T03:04:05.000Z"


def test_submit_chunked_body(world: World) -> None:
    def body() -> Any:
        yield b"part one, "
        yield b"part two"

    response = world.client.post(
        "/api/v1/jobs", params={"name": "c"}, content=body(), headers=world.user
    )
    assert response.status_code == 201
    assert response.json()["size_bytes"] == len(b"part one, part two")
    assert response.json()["format"] == "application/octet-stream"


def test_submit_errors(world: World) -> None:
    c = world.client
    assert_problem(
        c.post("/api/v1/jobs", params={"name": "e"}, content=b"", headers=world.user),
        400,
        "empty-document",
    )
    assert_problem(c.post("/api/v1/jobs", content=b"x", headers=world.user), 422, "invalid-request")
    assert_problem(
        c.post("/api/v1/jobs", params={"name": "n", "copies": 0}, content=b"x", headers=world.user),
        422,
        "invalid-request",
    )
    assert_problem(c.post("/api/v1/jobs", params={"name": "n"}, content=b"x"), 401, "unauthorized")
    assert c.get("/api/v1/jobs", headers=world.user).json() == {"jobs": []}


def test_list_and_delete_jobs(world: World, client: TestClient, clock: FakeClock) -> None:
    first = world.submit(name="1")
    clock.advance(seconds=1)
    second = world.submit(name="2")
    listed = client.get("/api/v1/jobs", headers=world.user).json()["jobs"]
    assert [j["id"] for j in listed] == [first["id"], second["id"]]
    assert client.delete(f"/api/v1/jobs/{first['id']}", headers=world.user).status_code == 204
    assert client.delete(f"/api/v1/jobs/{first['id']}", headers=world.user).status_code == 204
    listed = client.get("/api/v1/jobs", headers=world.user).json()["jobs"]
    assert [j["id"] for j in listed] == [second["id"]]
    admin_view = client.get(f"/api/v1/admin/jobs/{first['id']}", headers=admin_headers()).json()
    assert (admin_view["state"], admin_view["content_held"]) == ("deleted", False)


def test_cannot_delete_or_see_another_users_job(world: World, client: TestClient) -> None:
    job = world.submit()
    other = client.post(
        "/api/v1/admin/users",
        json={"email": "eve@example.org", "display_name": "Eve"},
        headers=admin_headers(),
    ).json()
    eve = bearer(other["api_token"])
    assert client.get("/api/v1/jobs", headers=eve).json() == {"jobs": []}
    assert_problem(client.delete(f"/api/v1/jobs/{job['id']}", headers=eve), 404, "job-not-found")
    assert_problem(client.delete(f"/api/v1/jobs/{uuid.uuid4()}", headers=eve), 404, "job-not-found")


# -- station --------------------------------------------------------------------------------


def test_open_session_shape(world: World) -> None:
    job = world.submit()
    response = world.client.post(
        "/api/v1/station/sessions", json={"tag": world.tag}, auth=world.station
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"session_id", "user", "expires_at", "jobs", "release_all"}
    assert body["user"] == {"display_name": "Ada"}
    assert body["expires_at"] == "2030-01-02T03:06:05.000Z"
    [listed] = body["jobs"]
    assert set(listed) == {
        "id",
        "name",
        "format",
        "size_bytes",
        "pages",
        "copies",
        "submitted_at",
        "expires_at",
        "sides",
        "color_mode",
        "state",
        "owner_name",
    }
    assert listed["id"] == job["id"]
    assert (listed["state"], listed["owner_name"]) == ("held", None)
    assert (listed["sides"], listed["color_mode"]) == (None, None)  # REST says neither


def test_the_tap_answer_is_the_documented_model_field_for_field() -> None:
    # The tap's answer is built without the models (speed); it must still be `OpenedSession`.
    now = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)

    def job(name: str, pages: int | None, sides: str | None) -> JobView:
        return JobView(
            uuid.uuid4(),
            uuid.uuid4(),
            "default",
            name,
            "application/pdf",
            1234,
            1300,
            None,
            2,
            pages,
            JobState.HELD,
            now,
            now + timedelta(hours=1),
            None,
            True,
            sides,
            "color",
        )

    own, theirs = job("Rapport été.pdf", 3, "two-sided-long-edge"), job("q.pdf", None, None)
    view = SessionView(
        uuid.uuid4(), uuid.uuid4(), "Zoë", now, [own, theirs], {theirs.id: "Grace"}, True
    )
    fast = json.loads(opened_session_json(view))
    documented = OpenedSession(
        session_id=str(view.id),
        user=SessionUser(display_name=view.display_name),
        expires_at=iso(view.expires_at) or "",
        jobs=[SessionJob.of(each, view.delegated.get(each.id)) for each in view.jobs],
        release_all=view.release_all,
    ).model_dump(mode="json")
    assert fast == documented
    assert [each["owner_name"] for each in fast["jobs"]] == [None, "Grace"]
    assert fast["jobs"][0]["name"] == "Rapport été.pdf"


def test_the_tap_refuses_an_unsigned_request_before_reading_its_body(world: World) -> None:
    unsigned = world.client.post("/api/v1/station/sessions", content=b"{not json")
    assert_problem(unsigned, 401, "invalid-signature")
    signed = world.client.post(
        "/api/v1/station/sessions",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
        auth=world.station,
    )
    assert "body" in assert_problem(signed, 422, "invalid-request")["detail"]
    neither = world.client.post("/api/v1/station/sessions", json={}, auth=world.station)
    assert "send a tag" in assert_problem(neither, 422, "invalid-request")["detail"]


def test_unknown_credential_does_not_echo_the_tag(world: World) -> None:
    tag = random_tag()
    response = world.client.post("/api/v1/station/sessions", json={"tag": tag}, auth=world.station)
    body = assert_problem(response, 404, "unknown-credential")
    assert tag not in response.text
    assert tag not in body["detail"]
    bad = "Q" * 64
    response = world.client.post("/api/v1/station/sessions", json={"tag": bad}, auth=world.station)
    assert_problem(response, 422, "invalid-tag")
    assert bad not in response.text


def test_end_session_and_410(world: World, client: TestClient) -> None:
    world.submit()
    session_id = world.session()
    assert (
        client.delete(f"/api/v1/station/sessions/{session_id}", auth=world.station).status_code
        == 204
    )
    assert (
        client.delete(f"/api/v1/station/sessions/{session_id}", auth=world.station).status_code
        == 204
    )
    assert_problem(world.release(session_id, {"all": True}), 410, "session-expired")
    assert_problem(
        client.delete(f"/api/v1/station/sessions/{uuid.uuid4()}", auth=world.station),
        404,
        "session-not-found",
    )


def test_session_times_out(world: World, clock: FakeClock) -> None:
    world.submit()
    session_id = world.session()
    clock.advance(seconds=121)
    assert_problem(world.release(session_id, {"all": True}), 410, "session-expired")


def test_delete_job_at_station(world: World, client: TestClient) -> None:
    job = world.submit()
    session_id = world.session()
    path = f"/api/v1/station/sessions/{session_id}/jobs/{job['id']}"
    assert client.delete(path, auth=world.station).status_code == 204
    assert client.get("/api/v1/jobs", headers=world.user).json() == {"jobs": []}
    missing = f"/api/v1/station/sessions/{session_id}/jobs/{uuid.uuid4()}"
    assert_problem(client.delete(missing, auth=world.station), 404, "job-not-found")


def test_release_shape_and_conflicts(world: World) -> None:
    job = world.submit(b"0123456789", name="r.txt", copies=3)
    session_id = world.session()
    response = world.release(session_id, {"job_ids": [job["id"]]})
    assert response.status_code == 201
    [release] = response.json()["releases"]
    assert set(release) == {
        "id", "job_id", "name", "format", "copies", "size_bytes", "content_bytes",
        "user_name", "data_key", "site", "state", "key_wrap", "wrapped_key", "owner_name",
        "reprint",
    }  # fmt: skip
    assert (release["key_wrap"], release["wrapped_key"], release["reprint"]) == (
        "master",
        None,
        False,
    )
    assert (release["job_id"], release["copies"], release["state"], release["site"]) == (
        job["id"],
        3,
        "requested",
        "default",
    )
    assert_problem(world.release(session_id, {"job_ids": [job["id"]]}), 409, "job-not-held")
    assert_problem(
        world.release(session_id, {"job_ids": [str(uuid.uuid4())]}), 404, "job-not-found"
    )
    assert_problem(world.release(session_id, {}), 422, "invalid-request")
    assert_problem(world.release(session_id, {"all": True, "job_ids": []}), 422, "invalid-request")
    assert world.release(session_id, {"all": True}).json() == {"releases": []}


def test_content_and_outcome_errors(world: World, client: TestClient) -> None:
    world.submit()
    session_id = world.session()
    [release] = world.release(session_id, {"all": True}).json()["releases"]
    service = client.app.state.service  # type: ignore[attr-defined]
    other_station = SignedAuth(pair_station(service, "o", "ipp://o"), world.station.clock)
    content = f"/api/v1/station/releases/{release['id']}/content"
    outcome = f"/api/v1/station/releases/{release['id']}/outcome"
    assert_problem(client.get(content, auth=other_station), 404, "release-not-found")
    assert_problem(
        client.post(outcome, json={"outcome": "printed"}, auth=other_station),
        404,
        "release-not-found",
    )
    assert_problem(
        client.get(f"/api/v1/station/releases/{uuid.uuid4()}/content", auth=world.station),
        404,
        "release-not-found",
    )
    assert_problem(
        client.post(outcome, json={"outcome": "maybe"}, auth=world.station),
        422,
        "invalid-request",
    )
    assert client.post(outcome, json={"outcome": "printed"}, auth=world.station).json() == {
        "id": release["id"],
        "state": "printed",
    }
    assert_problem(
        client.post(outcome, json={"outcome": "failed"}, auth=world.station),
        409,
        "release-conflict",
    )
    assert_problem(client.get(content, auth=world.station), 409, "release-not-active")


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/nowhere"), 404, "not-found")
    assert_problem(client.put("/healthz"), 405, "method-not-allowed")


def test_malformed_ids_are_problems(world: World) -> None:
    response = world.client.delete("/api/v1/jobs/not-a-uuid", headers=world.user)
    assert_problem(response, 422, "invalid-request")
