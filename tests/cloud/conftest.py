"""Shared fixtures for the cloud tests: config, an injectable clock, service, app and client."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from cloud.app import create_app
from cloud.config import CloudConfig
from cloud.identity import StationPrincipal, UserPrincipal
from cloud.service import CloudService

with warnings.catch_warnings():
    # Starlette asks for httpx2 for its TestClient; httpx is what the project pins (for now).
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

ADMIN_TOKEN = "ppa_" + "a" * 40


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.moment = start or datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


def station_tag(canonical: str, site_key: bytes = b"k" * 32) -> str:
    """A tag computed the way a station does (API.md, "Credential tags")."""
    return hmac.new(site_key, b"card/v1|" + canonical.encode(), hashlib.sha256).hexdigest()


def random_tag() -> str:
    return secrets.token_hex(32)


def make_config(data_dir: Path, **overrides: object) -> CloudConfig:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": f"sqlite:///{data_dir / 'pullprint.db'}",
        "master_key": os.urandom(32),
        "pepper": os.urandom(32),
        "admin_token": ADMIN_TOKEN,
    }
    values.update(overrides)
    return CloudConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config(tmp_path: Path) -> CloudConfig:
    return make_config(tmp_path / "data")


@pytest.fixture
def service(config: CloudConfig, clock: FakeClock) -> Iterator[CloudService]:
    svc = CloudService.open(config, now=clock)
    yield svc
    svc.close()


@dataclass
class Enrolled:
    """A user with a card, and a station, ready to release."""

    user: UserPrincipal
    user_token: str
    tag: str
    station: StationPrincipal
    station_token: str


@pytest.fixture
def enrolled(service: CloudService) -> Enrolled:
    issued = service.identity.create_user("ada@example.org", "Ada Lovelace")
    tag = station_tag("wiegand26:123456")
    service.identity.add_card(issued.id, tag, "blue badge")
    station = service.identity.create_station("Floor 2", "ipp://127.0.0.1:6310/ipp/print")
    return Enrolled(
        user=service.identity.authenticate_user(issued.api_token),
        user_token=issued.api_token,
        tag=tag,
        station=service.identity.authenticate_station(station.secret),
        station_token=station.secret,
    )


@pytest.fixture
def client(config: CloudConfig, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(config, now=clock, run_sweeper=False)
    with TestClient(app) as test_client:
        yield test_client


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def blob_files(service: CloudService) -> list[Path]:
    """Every file in the filesystem blob store, committed or temp."""
    root = service.config.blobs_dir
    return sorted(p for p in root.rglob("*") if p.is_file())


class World:
    """A user with a card and a station, created through the admin API."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        user = client.post(
            "/api/v1/admin/users",
            json={"email": "ada@example.org", "display_name": "Ada"},
            headers=admin_headers(),
        )
        assert user.status_code == 201
        self.user_id = user.json()["id"]
        self.user = bearer(user.json()["api_token"])
        self.tag = random_tag()
        card = client.post(
            f"/api/v1/admin/users/{self.user_id}/cards",
            json={"tag": self.tag, "label": "blue"},
            headers=admin_headers(),
        )
        assert card.status_code == 201
        station = client.post(
            "/api/v1/admin/stations",
            json={"name": "Floor 2", "printer_uri": "ipp://127.0.0.1:6310/ipp/print"},
            headers=admin_headers(),
        )
        assert station.status_code == 201
        self.station_id = station.json()["id"]
        self.station = bearer(station.json()["secret"])

    def submit(
        self, data: bytes = b"hello printer", name: str = "doc.txt", **params: Any
    ) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/jobs",
            params={"name": name, **params},
            content=data,
            headers={**self.user, "Content-Type": "text/plain"},
        )
        assert response.status_code == 201, response.text
        return cast(dict[str, Any], response.json())

    def session(self) -> str:
        response = self.client.post(
            "/api/v1/station/sessions", json={"tag": self.tag}, headers=self.station
        )
        assert response.status_code == 201, response.text
        return str(response.json()["session_id"])

    def release(self, session_id: str, body: dict[str, Any]) -> httpx.Response:
        response = self.client.post(
            f"/api/v1/station/sessions/{session_id}/releases", json=body, headers=self.station
        )
        assert isinstance(response, httpx.Response)
        return response


@pytest.fixture
def world(client: TestClient) -> World:
    return World(client)
