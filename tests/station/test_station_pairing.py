"""The station's side of pairing: its keys on disk, the device flow against the real cloud app,
and the first signed request afterwards."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.app import create_app
from cloud.server import RunningServer, start_in_thread
from cloud.service import CloudService
from station.cloud_client import CloudClient
from station.errors import CloudRejectedError, ConfigError
from station.pairing import (
    PairingCode,
    PairingDeniedError,
    pair_station,
    write_site_key,
)
from station.signing import SignatureAuth, load_identity, load_or_create_identity
from tests.cloud.conftest import make_config

SITE_KEY = bytes(range(32))


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_in_thread(create_app(make_config(tmp_path / "cloud"), run_sweeper=False))
    yield running
    running.stop()


def service_of(running: RunningServer) -> CloudService:
    service = running.app.state.service
    assert isinstance(service, CloudService)
    return service


def test_identity_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "state" / "station.key"
    first = load_or_create_identity(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_identity(path).signing_public == first.signing_public
    assert first.fingerprint == load_identity(path).fingerprint
    assert len(first.fingerprint.split("-")) == 8
    assert "signing_key" not in repr(first) or "Ed25519PrivateKey" not in repr(first)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_identity(path)
    with pytest.raises(ConfigError, match="pair"):
        load_identity(tmp_path / "missing.key")


def test_pairing_end_to_end_then_signed_requests(cloud: RunningServer, tmp_path: Path) -> None:
    service = service_of(cloud)
    identity = load_or_create_identity(tmp_path / "station.key")
    shown: list[PairingCode] = []
    polls: list[float] = []

    def on_code(code: PairingCode) -> None:
        shown.append(code)  # what the station puts on its PairingScreen
        pending = service.pairing.find(code.user_code)
        assert pending.fingerprint == code.fingerprint == identity.fingerprint

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 2:  # the admin approves while the station waits
            service.pairing.approve(
                shown[-1].user_code,
                site_key=SITE_KEY,
                printer_name="Floor 2",
                printer_uri="ipps://p2.local/ipp/print",
            )

    # The cloud's clock is real and the waits are not, so the early polls get slow_down.
    grant = pair_station(cloud.url, identity, on_code=on_code, sleep=sleep)
    assert len(shown) == 1
    assert (grant.printer_name, grant.printer_uri, grant.site_key) == (
        "Floor 2",
        "ipps://p2.local/ipp/print",
        SITE_KEY,
    )
    assert SITE_KEY.hex() not in repr(grant)
    write_site_key(grant.site_key, tmp_path / "site.key")
    assert stat.S_IMODE((tmp_path / "site.key").stat().st_mode) == 0o600

    client = CloudClient(cloud.url, SignatureAuth(identity, grant.station_id), timeout_s=5)
    try:
        with pytest.raises(CloudRejectedError) as unknown:
            client.open_session("0" * 64)
        assert unknown.value.code == "unknown-credential"  # authenticated, just no such badge
        service.stations.revoke(service.stations.list()[0].id)
        with pytest.raises(CloudRejectedError) as revoked:
            client.open_session("0" * 64)
        assert (revoked.value.status, revoked.value.code) == (401, "station-revoked")
    finally:
        client.close()


def test_denied_pairing_stops(cloud: RunningServer, tmp_path: Path) -> None:
    service = service_of(cloud)
    identity = load_or_create_identity(tmp_path / "station.key")

    def on_code(code: PairingCode) -> None:
        service.pairing.deny(code.user_code)

    with pytest.raises(PairingDeniedError):
        pair_station(cloud.url, identity, on_code=on_code, sleep=lambda _s: None)
