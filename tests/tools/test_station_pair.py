"""`pullprint station pair`: a new station pairs with a real cloud and can then sign requests."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from cloud.app import create_app
from cloud.config import generate_secrets
from cloud.config import load_config as load_cloud_config
from cloud.server import start_in_thread
from hardware.readers.formats import h10301
from station.app import build_station
from station.config import load_config
from station.credentials import credential_tag
from station.errors import UnknownCredentialError
from station.pairing import PairingCode
from tools.station_pair import StationPairError, pair_and_configure


@pytest.fixture
def cloud(tmp_path: Path):
    data = tmp_path / "cloud"
    data.mkdir()
    generate_secrets(data / "secrets.toml")
    app = create_app(load_cloud_config(None, {"PULLPRINT_DATA_DIR": str(data)}))
    server = start_in_thread(app)
    yield server
    server.stop()


def test_a_new_station_pairs_writes_its_config_and_signs_requests(tmp_path: Path, cloud) -> None:
    state, config_path = tmp_path / "state", tmp_path / "etc" / "station.toml"
    site_key = os.urandom(32)
    shown: list[PairingCode] = []
    code_shown = threading.Event()

    def show(code: PairingCode) -> None:
        shown.append(code)
        code_shown.set()

    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["grant"] = pair_and_configure(
                cloud.url, state, config_path, name="lobby", show=show, sleep=lambda s: None
            )
        except Exception as exc:  # surfaced below
            result["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    assert code_shown.wait(15), "no pairing code was shown"
    code = shown[0]
    service = cloud.app.state.service
    pending = service.pairing.find(code.user_code)
    assert pending.fingerprint == code.fingerprint  # what the admin compares
    service.pairing.approve(
        code.user_code,
        site_key=site_key,
        printer_name="Lobby",
        printer_uri="ipp://127.0.0.1:631/ipp/print",
    )
    worker.join(15)
    assert "error" not in result, result.get("error")

    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "site.key").stat().st_mode) == 0o600
    assert site_key.hex() not in config_path.read_text()  # the key is in its own file
    config = load_config(config_path, {})
    assert config.site_key == site_key
    assert config.printer.uri == "ipp://127.0.0.1:631/ipp/print"

    station = build_station(config)
    try:
        # A signed request reaches the cloud and is answered on its merits: unknown badge.
        with pytest.raises(UnknownCredentialError):
            station.client.open_session(credential_tag(site_key, h10301(1, 2)))
    finally:
        station.stop()

    with pytest.raises(StationPairError, match="configured already"):
        pair_and_configure(cloud.url, state, config_path, name="x", show=show)
