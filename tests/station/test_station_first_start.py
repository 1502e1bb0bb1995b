"""Pairing on first start: the code and fingerprint stay on the station's screen until an admin
approves, then the config is completed and the station runs to idle and opens sessions."""

from __future__ import annotations

import os
import stat
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.app import create_app
from cloud.config import generate_secrets
from cloud.config import load_config as load_cloud_config
from cloud.server import RunningServer, start_in_thread
from hardware.display.simulated import SimulatedDisplay
from hardware.readers.formats import h10301
from hardware.readers.simulated import SimulatedCardReader
from station.app import build_station
from station.config import load_config
from station.credentials import credential_tag
from station.errors import CloudError
from station.first_start import pair_on_first_start, paired_drop_in
from station.pairing import PairingDeniedError
from station.screens import NoJobsScreen, OfflineScreen, PairingScreen, Screen
from station.workflow import State

BADGE = h10301(7, 4242)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[RunningServer]:
    data = tmp_path / "cloud"
    data.mkdir()
    generate_secrets(data / "secrets.toml")
    server = start_in_thread(create_app(load_cloud_config(None, {"PULLPRINT_DATA_DIR": str(data)})))
    yield server
    server.stop()


def unpaired_config(path: Path, cloud_url: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '[station]\nname = "Lobby"\n'
        f'[cloud]\nurl = "{cloud_url}"\n'
        '[hardware]\nreader = "simulated"\ndisplay = "simulated"\n'
        'display_width = 128\ndisplay_height = 64\ndisplay_mode = "1"\n'
        "[session]\nerror_s = 2\n"
    )
    return path


class Screens:
    def __init__(self) -> None:
        self.shown: list[Screen] = []
        self.changed = threading.Condition()

    def add(self, screen: Screen) -> None:
        with self.changed:
            self.shown.append(screen)
            self.changed.notify_all()

    def wait_for(self, kind: type, timeout_s: float = 15) -> Screen:
        with self.changed:
            assert self.changed.wait_for(
                lambda: any(isinstance(s, kind) for s in self.shown), timeout_s
            ), [s.label for s in self.shown]
            return next(s for s in self.shown if isinstance(s, kind))


def start_pairing(config: Path, state: Path, display: SimulatedDisplay, screens: Screens, **kw):
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["grant"] = pair_on_first_start(
                config,
                {},
                state_dir=state,
                display=display,
                on_screen=screens.add,
                sleep=lambda s: threading.Event().wait(min(s, 0.05)),
                **kw,
            )
        except Exception as exc:
            result["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker, result


def test_the_code_and_fingerprint_stay_on_screen_until_approved_then_the_station_runs(
    tmp_path: Path, cloud: RunningServer
) -> None:
    config = unpaired_config(tmp_path / "etc" / "station.toml", cloud.url)
    provisioned = config.read_text()
    state = tmp_path / "state"
    display = SimulatedDisplay(128, 64, "1")
    screens = Screens()
    worker, result = start_pairing(config, state, display, screens)
    shown = screens.wait_for(PairingScreen)
    assert isinstance(shown, PairingScreen)
    service = cloud.app.state.service  # type: ignore[attr-defined]
    pending = service.pairing.find(shown.code)
    assert pending.fingerprint == shown.fingerprint  # what the admin compares
    threading.Event().wait(0.3)
    assert worker.is_alive()  # still waiting for the admin, code still on screen
    assert isinstance(screens.shown[-1], PairingScreen) and display.frames
    site_key = os.urandom(32)
    approved = service.pairing.approve(
        shown.code, site_key=site_key, printer_name="Lobby", printer_uri="ipp://127.0.0.1:9/ipp"
    )
    worker.join(15)
    assert "error" not in result, result.get("error")
    assert config.read_text() == provisioned  # /etc is never written
    drop_in = paired_drop_in(state)
    assert stat.S_IMODE(drop_in.stat().st_mode) == 0o600
    written = tomllib.loads(drop_in.read_text())
    assert written["cloud"]["station_id"] == str(approved.station_id)
    assert written["printer"]["uri"] == "ipp://127.0.0.1:9/ipp"
    assert site_key.hex() not in drop_in.read_text()
    assert stat.S_IMODE((state / "site.key").stat().st_mode) == 0o600

    # A second start finds the station paired and goes straight on.
    assert pair_on_first_start(config, {}, state_dir=state) is None
    paired = load_config(config, {}, drop_ins=[drop_in])
    assert paired.hardware.display_width == 128  # the provisioned parts still count
    assert paired.site_key == site_key and paired.name == "Lobby"
    user = service.identity.create_user("ada@example.org", "Ada")
    service.identity.add_card(user.id, credential_tag(site_key, BADGE), "badge")
    reader = SimulatedCardReader()
    station = build_station(paired, reader=reader, on_screen=screens.add)
    with station:
        assert station.wait_for_state(State.IDLE, 10)
        reader.present(BADGE)
        assert isinstance(screens.wait_for(NoJobsScreen), NoJobsScreen)


def test_an_unreachable_cloud_shows_offline_and_stopping_ends_pairing(tmp_path: Path) -> None:
    config = unpaired_config(tmp_path / "station.toml", "http://127.0.0.1:9")
    stop = threading.Event()
    screens = Screens()
    worker, result = start_pairing(
        config, tmp_path / "state", SimulatedDisplay(128, 64, "1"), screens, should_stop=stop.is_set
    )
    assert isinstance(screens.wait_for(OfflineScreen), OfflineScreen)
    stop.set()
    worker.join(15)
    assert isinstance(result.get("error"), CloudError)
    assert not paired_drop_in(tmp_path / "state").exists()  # nothing half-written


def test_a_denied_request_is_shown_and_ends_the_start(tmp_path: Path, cloud: RunningServer) -> None:
    config = unpaired_config(tmp_path / "station.toml", cloud.url)
    screens = Screens()
    worker, result = start_pairing(
        config, tmp_path / "state", SimulatedDisplay(128, 64, "1"), screens
    )
    shown = screens.wait_for(PairingScreen)
    assert isinstance(shown, PairingScreen)
    cloud.app.state.service.pairing.deny(shown.code)  # type: ignore[attr-defined]
    worker.join(15)
    assert isinstance(result.get("error"), PairingDeniedError)
    assert screens.shown[-1].lines()[0] == "Pairing denied"
