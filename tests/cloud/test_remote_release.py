"""Releases from a phone: POST /api/v1/me/printers/{printer_id}/releases makes the same releases as
a tap for the station serving the printer (lease, compare-and-set, audit, delegation), wakes that
station's long-poll, and GET /api/v1/station/releases/{id} hands the station the grant."""

from __future__ import annotations

import base64
import uuid
from typing import Any, cast

import pytest
from sqlalchemy import select

from cloud.container import Decryptor
from cloud.db import AuditEvent, StationSession
from cloud.service import CloudService
from tests.cloud.conftest import FakeClock, TestClient, World, admin_headers, bearer, pair_station


def add_printer(world: World, *, assign: bool = True) -> str:
    printer = world.client.post(
        "/api/v1/admin/printers",
        json={"name": f"hall-{uuid.uuid4().hex[:6]}", "uri": "ipp://127.0.0.1:6310/ipp/print"},
        headers=admin_headers(),
    )
    assert printer.status_code == 201, printer.text
    printer_id = str(printer.json()["id"])
    if assign:
        put = world.client.put(
            f"/api/v1/admin/printers/{printer_id}/stations/{world.station_id}",
            headers=admin_headers(),
        )
        assert put.status_code in (200, 204), put.text
    return printer_id


def phone(world: World, printer_id: str, body: dict[str, Any], user: dict[str, str] | None = None):
    return world.client.post(
        f"/api/v1/me/printers/{printer_id}/releases", json=body, headers=user or world.user
    )


def service_of(world: World) -> CloudService:
    return cast(CloudService, world.client.app.state.service)  # type: ignore[attr-defined]


def test_a_phone_release_wakes_the_station_which_fetches_the_grant_and_prints(
    world: World,
) -> None:
    job = world.submit(b"from my phone", name="boarding.pdf")
    other = world.submit(b"second", name="menu.txt")
    printer_id = add_printer(world)
    made = phone(world, printer_id, {"all": True})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["station_id"] == world.station_id and body["printer_id"] == printer_id
    released = {item["job_id"]: item for item in body["releases"]}
    assert set(released) == {job["id"], other["id"]}
    assert all(item["state"] == "requested" for item in released.values())
    assert "data_key" not in made.text and "wrapped_key" not in made.text

    # The station's long-poll answers at once with them.
    woke = world.client.get("/api/v1/station/wait", params={"timeout_s": 0}, auth=world.station)
    assert woke.status_code == 200, woke.text
    assert set(woke.json()["releases"]) == {item["id"] for item in released.values()}

    release_id = released[job["id"]]["id"]
    grant = world.client.get(f"/api/v1/station/releases/{release_id}", auth=world.station)
    assert grant.status_code == 200, grant.text
    item = grant.json()
    assert item["name"] == "boarding.pdf" and item["user_name"] == "Ada"
    content = world.client.get(f"/api/v1/station/releases/{release_id}/content", auth=world.station)
    key = base64.b64decode(item["data_key"])
    decrypted = Decryptor(key, uuid.UUID(job["id"]), item["site"])
    plain = decrypted.update(content.content) + decrypted.finalize()
    assert plain == b"from my phone"
    # Once fetched, the grant is not handed out again.
    again = world.client.get(f"/api/v1/station/releases/{release_id}", auth=world.station)
    assert again.status_code == 409 and again.json()["code"] == "release-not-active"
    outcome = world.client.post(
        f"/api/v1/station/releases/{release_id}/outcome",
        json={"outcome": "printed"},
        auth=world.station,
    )
    assert outcome.status_code == 200, outcome.text

    # The same audit trail as a tap, in a session marked remote that is already ended.
    with service_of(world).context.read() as db:
        kinds = [
            (e.kind, e.detail)
            for e in db.scalars(select(AuditEvent).order_by(AuditEvent.id))
            if e.kind.startswith(("session", "release"))
        ]
        sessions = list(db.scalars(select(StationSession)))
    assert ("session-opened", "remote") in kinds and ("release-printed", None) in kinds
    assert kinds.count(("release-requested", None)) == 2
    assert all(s.ended_at is not None and s.credential_id is None for s in sessions)


def test_a_job_already_released_is_refused_and_nothing_is_released(world: World) -> None:
    job = world.submit(name="one.txt")
    held = world.submit(name="two.txt")
    printer_id = add_printer(world)
    first = phone(world, printer_id, {"job_ids": [job["id"]]})
    assert first.status_code == 201, first.text
    both = phone(world, printer_id, {"job_ids": [held["id"], job["id"]]})
    assert both.status_code == 409 and both.json()["code"] == "job-not-held"
    woke = world.client.get("/api/v1/station/wait", params={"timeout_s": 0}, auth=world.station)
    assert woke.json()["releases"] == [first.json()["releases"][0]["id"]]


def test_a_printer_without_an_active_station_is_a_conflict(
    world: World, client: TestClient
) -> None:
    world.submit()
    lonely = add_printer(world, assign=False)
    refused = phone(world, lonely, {"all": True})
    assert refused.status_code == 409 and refused.json()["code"] == "printer-no-station"
    printer_id = add_printer(world)
    revoked = client.post(
        f"/api/v1/admin/stations/{world.station_id}/revoke", headers=admin_headers()
    )
    assert revoked.status_code == 200, revoked.text
    refused = phone(world, printer_id, {"all": True})
    assert refused.status_code == 409 and refused.json()["code"] == "printer-no-station"
    unknown = phone(world, str(uuid.uuid4()), {"all": True})
    assert unknown.status_code == 404 and unknown.json()["code"] == "printer-not-found"
    anonymous = client.post(f"/api/v1/me/printers/{printer_id}/releases", json={"all": True})
    assert anonymous.status_code == 401


def test_a_delegate_releases_the_owners_job_from_a_phone(world: World, client: TestClient) -> None:
    job = world.submit(name="owner-report.pdf")
    deputy = client.post(
        "/api/v1/admin/users",
        json={"email": "deputy@example.org", "display_name": "Deputy"},
        headers=admin_headers(),
    )
    assert deputy.status_code == 201
    deputy_user = bearer(deputy.json()["api_token"])
    printer_id = add_printer(world)
    refused = phone(world, printer_id, {"job_ids": [job["id"]]}, deputy_user)
    assert refused.status_code == 404  # not delegated yet
    granted = client.post(
        "/api/v1/delegations", json={"email": "deputy@example.org"}, headers=world.user
    )
    assert granted.status_code == 201, granted.text
    made = phone(world, printer_id, {"job_ids": [job["id"]]}, deputy_user)
    assert made.status_code == 201, made.text
    release_id = made.json()["releases"][0]["id"]
    grant = client.get(f"/api/v1/station/releases/{release_id}", auth=world.station)
    assert grant.json()["owner_name"] == "Ada" and grant.json()["user_name"] == "Ada"


def test_another_stations_release_is_not_its_grant(
    world: World, client: TestClient, clock: FakeClock
) -> None:
    from tests.cloud.conftest import SignedAuth

    world.submit()
    made = phone(world, add_printer(world), {"all": True})
    release_id = made.json()["releases"][0]["id"]
    stranger = SignedAuth(pair_station(service_of(world), "Floor 9"), clock)
    refused = client.get(f"/api/v1/station/releases/{release_id}", auth=stranger)
    assert refused.status_code == 404 and refused.json()["code"] == "release-not-found"


@pytest.fixture
def world(client: TestClient, clock: FakeClock) -> World:
    return World(client, clock)
