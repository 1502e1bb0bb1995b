"""Shared fixtures for the cloud tests: config, an injectable clock, service, app and client."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud.app import create_app
from cloud.blobstore import S3BlobStore
from cloud.config import CloudConfig
from cloud.identity import StationPrincipal, UserPrincipal
from cloud.server import RunningServer, start_in_thread
from cloud.service import CloudService
from station.signing import StationIdentity, signature_headers
from tests.support import profile

with warnings.catch_warnings():
    # Starlette asks for httpx2 for its TestClient; httpx is what the project pins (for now).
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

ADMIN_TOKEN = "ppa_" + "a" * 40
SITE_KEY = b"k" * 32


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
        "master_key": os.urandom(32),
        "pepper": os.urandom(32),
        "admin_token": ADMIN_TOKEN,
        # SQLite + files, or PostgreSQL + S3 (PULLPRINT_TEST_PROFILE=postgres).
        **profile.cloud_settings(data_dir),
    }
    values.update(overrides)
    return CloudConfig(**values)  # type: ignore[arg-type]


def new_identity() -> StationIdentity:
    """A station's keys, in memory."""
    return StationIdentity(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())


@dataclass
class PairedStation:
    """A station paired through the device grant, with the keys it signs with."""

    principal: StationPrincipal
    identity: StationIdentity

    @property
    def id(self) -> uuid.UUID:
        return self.principal.id


def pair_station(
    service: CloudService,
    name: str = "Floor 2",
    printer_uri: str = "ipp://127.0.0.1:6310/ipp/print",
    *,
    source: str = "127.0.0.1",
    site: str | None = None,
) -> PairedStation:
    """Pair a station the way `pullprint pair --yes` does, straight through the service."""
    identity = new_identity()
    issued = service.pairing.request(identity.signing_public, identity.exchange_public, source)
    approved = service.pairing.approve(
        issued.user_code,
        site_key=SITE_KEY,
        printer_name=name,
        printer_uri=printer_uri,
        site=site,
    )
    principal = StationPrincipal(approved.station_id, approved.site, name, printer_uri)
    return PairedStation(principal, identity)


class SignedAuth(httpx.Auth):
    """Signs each request as a paired station does (RFC 9421), at the cloud's (fake) time."""

    def __init__(self, station: PairedStation, clock: Callable[[], datetime]) -> None:
        self.station = station
        self.clock = clock

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers.update(
            signature_headers(
                self.station.identity,
                str(self.station.id),
                request.method,
                request.url.raw_path.decode("ascii"),
                request.content,
                created=int(self.clock().timestamp()),
            )
        )
        yield request


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
    paired: PairedStation


@pytest.fixture
def enrolled(service: CloudService) -> Enrolled:
    issued = service.identity.create_user("ada@example.org", "Ada Lovelace")
    tag = station_tag("wiegand26:123456")
    service.identity.add_card(issued.id, tag, "blue badge")
    paired = pair_station(service)
    return Enrolled(
        user=service.identity.authenticate_user(issued.api_token),
        user_token=issued.api_token,
        tag=tag,
        station=paired.principal,
        paired=paired,
    )


@pytest.fixture
def client(config: CloudConfig, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(config, now=clock, run_sweeper=False)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def server(config: CloudConfig) -> Iterator[RunningServer]:
    """The cloud app under uvicorn on 127.0.0.1 (an ephemeral port), as `cloud serve` runs it."""
    running = start_in_thread(create_app(config, run_sweeper=False))
    yield running
    running.stop()


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class StoredObject:
    """An S3 object, seen through the little of `Path` the tests use."""

    def __init__(self, store: S3BlobStore, key: str) -> None:
        self._store = store
        self.name = key

    def __eq__(self, other: object) -> bool:
        # As paths compare: the same object key in the same store.
        return (
            isinstance(other, StoredObject)
            and other._store is self._store
            and other.name == self.name
        )

    def __hash__(self) -> int:
        return hash(self.name)

    def exists(self) -> bool:
        return self._store.exists(self.name)

    def read_bytes(self) -> bytes:
        with self._store.open(self.name) as fh:
            return fh.read()

    def write_bytes(self, data: bytes) -> None:
        """Overwrite the object behind the cloud's back (damage at rest)."""
        self._store.client.put_object(
            Bucket=self._store.bucket, Key=self._store.object_key(self.name), Body=data
        )

    def stat(self) -> os.stat_result:
        size = self._store.client.head_object(
            Bucket=self._store.bucket, Key=self._store.object_key(self.name)
        )["ContentLength"]
        return os.stat_result((0, 0, 0, 0, 0, 0, size, 0, 0, 0))


def blob_files(service: CloudService) -> list[Any]:
    """Every blob, committed or being written: files (and temp files), or S3 objects (and
    multipart uploads in progress)."""
    if isinstance(service.blobs, S3BlobStore):
        store = service.blobs
        pending: list[Any] = [key for key, _, _ in store.pending_uploads()]
        return [StoredObject(store, key) for key in store.list_keys()] + pending
    root = service.config.blobs_dir
    return sorted(p for p in root.rglob("*") if p.is_file())


def staged_blobs(service: CloudService) -> list[str]:
    """Blobs being written and not committed: temp files, or S3 multipart uploads."""
    if isinstance(service.blobs, S3BlobStore):
        return [key for key, _, _ in service.blobs.pending_uploads()]
    return [p.name for p in service.config.blobs_dir.rglob("*.tmp")]


class World:
    """A user with a card (through the admin API) and a paired station that signs its requests."""

    def __init__(self, client: TestClient, clock: FakeClock) -> None:
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
        service = cast(CloudService, client.app.state.service)  # type: ignore[attr-defined]
        self.paired = pair_station(service)
        self.station_id = str(self.paired.id)
        self.station = SignedAuth(self.paired, clock)

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
            "/api/v1/station/sessions", json={"tag": self.tag}, auth=self.station
        )
        assert response.status_code == 201, response.text
        return str(response.json()["session_id"])

    def release(self, session_id: str, body: dict[str, Any]) -> httpx.Response:
        response = self.client.post(
            f"/api/v1/station/sessions/{session_id}/releases", json=body, auth=self.station
        )
        assert isinstance(response, httpx.Response)
        return response


@pytest.fixture
def world(client: TestClient, clock: FakeClock) -> World:
    return World(client, clock)
