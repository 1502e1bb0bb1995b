"""The cloud's side of station updates: publish, policy per site, the signed poll, the bundle."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import cast

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.service import CloudService
from tests.cloud.conftest import (
    FakeClock,
    SignedAuth,
    TestClient,
    admin_headers,
    bearer,
    blob_files,
    pair_station,
)
from tests.support.updates import probe_bundle


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def publish(client: TestClient, path: Path, headers: dict[str, str] | None = None):
    return client.post(
        "/api/v1/admin/updates",
        content=path.read_bytes(),
        headers={**(headers or admin_headers()), "Content-Type": "application/x-tar"},
    )


def test_publish_list_offer_download_and_report(
    client: TestClient, clock: FakeClock, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    service = cast(CloudService, client.app.state.service)  # type: ignore[attr-defined]
    station = SignedAuth(pair_station(service), clock)
    b1 = probe_bundle(tmp_path / "1.bundle", key, "0.2.0", min_version="0.1.0")
    b2 = probe_bundle(tmp_path / "2.bundle", key, "0.10.0")
    first = publish(client, b1)
    assert first.status_code == 201, first.text
    assert first.json()["sha256"] == hashlib.sha256(b1.read_bytes()).hexdigest()
    assert publish(client, b2).status_code == 201
    again = publish(client, b1)
    assert (again.status_code, again.json()["code"]) == (409, "bundle-exists")
    listed = client.get("/api/v1/admin/updates", headers=admin_headers()).json()["bundles"]
    assert [b["version"] for b in listed] == ["0.10.0", "0.2.0"]  # PEP 440 order, not text

    # The default policy is notify: the station learns of the highest version.
    offer = client.get("/api/v1/station/update", auth=station)
    assert offer.status_code == 200, offer.text
    assert offer.json()["policy"] == "notify"
    assert offer.json()["offer"]["version"] == "0.10.0"
    assert offer.json()["offer"]["size"] == b2.stat().st_size
    bundle = client.get(offer.json()["offer"]["bundle"], auth=station)
    assert bundle.status_code == 200
    assert bundle.content == b2.read_bytes()

    # A pinned version is offered instead; an unpublished one cannot be pinned.
    pinned = client.put(
        "/api/v1/admin/updates/policy",
        json={"policy": "automatic", "target_version": "0.2.0"},
        headers=admin_headers(),
    )
    assert pinned.status_code == 200, pinned.text
    offer = client.get("/api/v1/station/update", auth=station).json()
    assert (offer["policy"], offer["offer"]["version"]) == ("automatic", "0.2.0")
    missing = client.put(
        "/api/v1/admin/updates/policy",
        json={"policy": "automatic", "target_version": "9.9.9"},
        headers=admin_headers(),
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "bundle-not-found")

    # Off: no offer, and the bundle is not served either.
    client.put("/api/v1/admin/updates/policy", json={"policy": "off"}, headers=admin_headers())
    assert client.get("/api/v1/station/update", auth=station).json() == {
        "policy": "off",
        "offer": None,
    }
    refused = client.get(f"/api/v1/station/update/bundles/{listed[0]['id']}", auth=station)
    assert (refused.status_code, refused.json()["code"]) == (403, "updates-off")

    report = client.post(
        "/api/v1/station/update/report",
        json={
            "state": "rolled-back",
            "current_version": "0.2.0",
            "available_version": "0.10.0",
            "step": "rolled-back",
            "detail": "crashed 2 times; back on slot a",
            "last_error": "rolled-back: crashed 2 times",
        },
        auth=station,
    )
    assert report.status_code == 200, report.text
    stations = client.get("/api/v1/admin/updates/stations", headers=admin_headers()).json()
    assert [(s["station_id"], s["state"], s["current_version"]) for s in stations["stations"]] == [
        (str(station.station.id), "rolled-back", "0.2.0")
    ]

    # Withdrawing removes the row and the blob.
    assert client.delete("/api/v1/admin/updates/0.10.0", headers=admin_headers()).status_code == 204
    assert len(blob_files(service)) == 1
    gone = client.delete("/api/v1/admin/updates/0.10.0", headers=admin_headers())
    assert gone.status_code == 404


def test_unsigned_or_malformed_uploads_are_refused_and_leave_nothing(
    client: TestClient, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    service = cast(CloudService, client.app.state.service)  # type: ignore[attr-defined]
    unsigned = probe_bundle(tmp_path / "u.bundle", None, "0.2.0")
    refused = publish(client, unsigned)
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid-bundle")
    assert "pullprint update sign" in refused.json()["detail"]
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a tar" * 1000)
    assert publish(client, junk).json()["code"] == "invalid-bundle"
    assert blob_files(service) == []
    assert client.get("/api/v1/admin/updates", headers=admin_headers()).json()["bundles"] == []


def test_only_admins_publish_and_only_stations_poll(
    client: TestClient, clock: FakeClock, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    service = cast(CloudService, client.app.state.service)  # type: ignore[attr-defined]
    bundle = probe_bundle(tmp_path / "b.bundle", key, "0.2.0")
    assert publish(client, bundle, bearer("ppa_wrong")).status_code == 401
    assert client.get("/api/v1/station/update", headers=admin_headers()).status_code == 401
    station = SignedAuth(pair_station(service), clock)
    service.stations.revoke(station.station.id, service.context.site)
    assert client.get("/api/v1/station/update", auth=station).status_code == 401


def test_each_site_has_its_own_bundles_and_policy(
    client: TestClient, clock: FakeClock, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    service = cast(CloudService, client.app.state.service)  # type: ignore[attr-defined]
    other = service.sites.add("other")
    theirs = bearer(other.admin_token)
    assert (
        publish(client, probe_bundle(tmp_path / "o.bundle", key, "5.0.0"), theirs).status_code
        == 201
    )
    client.put("/api/v1/admin/updates/policy", json={"policy": "automatic"}, headers=theirs)
    mine = SignedAuth(pair_station(service), clock)
    offer = client.get("/api/v1/station/update", auth=mine).json()
    assert offer == {"policy": "notify", "offer": None}
    their_station = SignedAuth(pair_station(service, site="other"), clock)
    offered = client.get("/api/v1/station/update", auth=their_station).json()
    assert (offered["policy"], offered["offer"]["version"]) == ("automatic", "5.0.0")
    # Our station cannot fetch their bundle by id.
    fetched = client.get(offered["offer"]["bundle"], auth=mine)
    assert (fetched.status_code, fetched.json()["code"]) == (404, "bundle-not-found")
