"""The whole loop on one machine: embedded cloud, a printer, and a simulated station.

Used by `pullprint demo`, `pullprint bench` and the end-to-end tests, so all three exercise the same
wiring. Everything binds to 127.0.0.1; everything started here is stopped in `close()`.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud.app import create_app
from cloud.config import generate_secrets
from cloud.config import load_config as load_cloud_config
from cloud.policies import PolicyChange
from cloud.registry import PrinterSpec
from cloud.server import RunningServer, start_in_thread
from cloud.service import CloudService
from hardware.display.base import Display
from hardware.display.simulated import SimulatedDisplay
from hardware.panel.simulated import SimulatedKeypad
from hardware.printers.virtual import VirtualPrinter
from hardware.readers.base import Credential
from hardware.readers.simulated import SimulatedCardReader
from station.app import Backoff, Station, build_station
from station.config import load_config as load_station_config
from station.credentials import credential_tag
from station.pairing import PairingClient, PairingGrant, write_site_key
from station.screens import Screen
from station.signing import load_or_create_identity
from station.workflow import Button, State

ScreenHook = Callable[[Screen, float], None]


@dataclass
class EnrolledUser:
    """A user made through the admin API, with the token they submit with."""

    id: str
    email: str
    display_name: str
    token: str


@dataclass
class ScreenLog:
    """Every screen the station showed, with the monotonic time it was shown."""

    entries: list[tuple[float, Screen]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, screen: Screen) -> None:
        with self.changed:
            self.entries.append((time.monotonic(), screen))
            self.changed.notify_all()

    def wait_for(
        self, kind: type[Screen] | tuple[type[Screen], ...], *, after: float, timeout_s: float
    ) -> tuple[float, Screen] | None:
        """The first screen of `kind` shown at or after `after`, waiting up to `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while True:
                for at, screen in self.entries:
                    if at >= after and isinstance(screen, kind):
                        return at, screen
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.changed.wait(left)


STORAGE_ENV = (
    "PULLPRINT_DATABASE_URL",
    "PULLPRINT_BLOB_STORE",
    "PULLPRINT_S3_BUCKET",
    "PULLPRINT_S3_PREFIX",
    "PULLPRINT_S3_ENDPOINT_URL",
    "PULLPRINT_S3_REGION",
)


class LoopRig:
    """Cloud + printer + station, started together on loopback."""

    def __init__(
        self,
        work_dir: Path,
        *,
        printer_uri: str | None = None,
        frames_dir: Path | None = None,
        display_size: tuple[int, int] = (320, 240),
        on_screen: ScreenHook | None = None,
        printer_processing_s: float = 0.02,
        keep_documents: bool = True,
        session_timeout_s: float = 30.0,
        done_s: float = 4.0,
        error_s: float = 6.0,
        extra_toml: str = "",
        cloud_backoff: Backoff | None = None,
        heartbeat_s: float | None = 30.0,
        reader_kind: str = "simulated",
        display: Display | None = None,
        zero_knowledge: bool = False,
        keyboard: bool = False,
        long_poll: bool = False,
    ) -> None:
        self.work_dir = work_dir
        # A reader other than "simulated" is built from the config ([reader] in extra_toml), as
        # on a station; `display` replaces the simulated display (the HIL lab's panel).
        self._reader_kind = reader_kind
        self._display = display
        self._cloud_backoff = cloud_backoff  # how the station probes a cloud that went away
        self._heartbeat_s = heartbeat_s
        self._app: Any = None
        self._cloud_port = 0
        self.frames_dir = frames_dir
        self.screens = ScreenLog()
        self._on_screen = on_screen
        self._printer_uri = printer_uri
        self._display_size = display_size
        self._printer_processing_s = printer_processing_s
        self._keep_documents = keep_documents
        self._session_timeout_s = session_timeout_s
        self._done_s = done_s
        self._error_s = error_s
        self._extra_toml = extra_toml  # more station.toml tables, e.g. a [panel]
        self.site_key = secrets.token_bytes(32)
        # A zero-knowledge site: the admin's X25519 key pair (the cloud gets the public half).
        self.site_private_key: X25519PrivateKey | None = (
            X25519PrivateKey.generate() if zero_knowledge else None
        )
        self.http = requests.Session()
        self.printer: VirtualPrinter | None = None
        self.server: RunningServer | None = None
        self.station: Station | None = None
        self.reader = SimulatedCardReader()
        # PINs and release passcodes, typed by tests; a full keyboard also types email addresses.
        self.keypad = SimulatedKeypad(keyboard=keyboard)
        self._long_poll = long_poll  # the station long-polls for releases made from a phone
        self.display: Display | None = None
        self.admin_token = ""
        self.service: CloudService | None = None
        self.station_id = ""
        self.printer_id = ""  # the registered printer the station serves

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> LoopRig:
        """Start the printer, the cloud and the station; enrol the station with the cloud."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        data_dir = self.work_dir / "cloud"
        data_dir.mkdir(parents=True, exist_ok=True)
        generate_secrets(data_dir / "secrets.toml")
        # The storage comes from the environment when set (PostgreSQL + S3 in the test profile,
        # or an operator trying the demo on their own database); SQLite + files otherwise.
        storage = {k: v for k, v in os.environ.items() if k in STORAGE_ENV}
        cloud_config = load_cloud_config(None, {**storage, "PULLPRINT_DATA_DIR": str(data_dir)})
        self.admin_token = cloud_config.admin_token
        app = create_app(cloud_config)
        self._app = app
        self.service = app.state.service
        if self.site_private_key is not None:
            public = self.site_private_key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            self.service.policies.update(
                cloud_config.site, PolicyChange(zero_knowledge=True, public_key=public)
            )
        self.server = start_in_thread(app, host="127.0.0.1", port=0)
        self._cloud_port = self.server.port

        if self._printer_uri is None:
            self.printer = VirtualPrinter(
                processing_s=self._printer_processing_s, keep_documents=self._keep_documents
            ).start()
            printer_uri = self.printer.uri
        else:
            printer_uri = self._printer_uri
        spool = self.work_dir / "spool"
        spool.mkdir(mode=0o700, exist_ok=True)

        grant = self._pair_station(spool, printer_uri)
        station_toml = self.work_dir / "station.toml"
        width, height = self._display_size
        station_toml.write_text(
            f'[station]\nname = "{grant.printer_name}"\n'
            f'[cloud]\nurl = "{self.cloud_url}"\nstation_id = "{grant.station_id}"\n'
            "timeout_s = 10\n"
            + ("long_poll = true\n" if self._long_poll else "")
            + f'[identity]\nkey_file = "{spool / "station.key"}"\n'
            f'[site]\nkey_file = "{spool / "site.key"}"\n'
            + (
                f'private_key_file = "{spool / "site-private.key"}"\n'
                if grant.site_private_key is not None
                else ""
            )
            + f'[printer]\nuri = "{grant.printer_uri}"\ntimeout_s = 60\n'
            f'[hardware]\nreader = "{self._reader_kind}"\ndisplay = "simulated"\n'
            f'display_width = {width}\ndisplay_height = {height}\ndisplay_mode = "RGB"\n'
            f"[session]\ntimeout_s = {self._session_timeout_s}\ndone_s = {self._done_s}\n"
            f"error_s = {self._error_s}\n"
            f'[spool]\ndir = "{spool}"\n' + self._extra_toml
        )
        os.chmod(station_toml, 0o600)
        station_config = load_station_config(station_toml, {})
        self.display = self._display or SimulatedDisplay(
            width, height, "RGB", out_dir=self.frames_dir
        )
        self.station = build_station(
            station_config,
            reader=self.reader if self._reader_kind == "simulated" else None,
            display=self.display,
            on_screen=self._screen_shown,
            backoff=self._cloud_backoff,
            heartbeat_s=self._heartbeat_s,
            keypad=self.keypad,
        )
        self.station.start()

    def _pair_station(self, state_dir: Path, printer_uri: str) -> PairingGrant:
        """Pair the station as in the field: its key, its request, the admin's approval, its
        poll; then keep the site key it received where its config points."""
        assert self.service is not None
        identity = load_or_create_identity(state_dir / "station.key")
        client = PairingClient(self.cloud_url, identity)
        try:
            code = client.start()
            pending = self.service.pairing.find(code.user_code)
            if pending.fingerprint != code.fingerprint:
                raise RuntimeError("the pairing request is not this station's")
            private = (
                self.site_private_key.private_bytes(
                    serialization.Encoding.Raw,
                    serialization.PrivateFormat.Raw,
                    serialization.NoEncryption(),
                )
                if self.site_private_key is not None
                else None
            )
            # The registry is the source of a station's printer config (pullprint pair does it).
            printer = self.service.registry.add(PrinterSpec(name="demo-station", uri=printer_uri))
            approved = self.service.pairing.approve(
                code.user_code,
                site_key=self.site_key,
                printer_name=printer.name,
                printer_uri=printer.uri,
                site_private_key=private,
            )
            self.service.registry.assign(printer.id, approved.station_id)
            self.printer_id = str(printer.id)
            grant = client.poll(code)
        finally:
            client.close()
        write_site_key(grant.site_key, state_dir / "site.key")
        if grant.site_private_key is not None:
            write_site_key(grant.site_private_key, state_dir / "site-private.key")
        self.station_id = grant.station_id
        return grant

    def close(self) -> None:
        """Stop everything this rig started (station, cloud, printer), in that order."""
        if self.station is not None:
            self.station.stop()
            self.station = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.printer is not None:
            self.printer.stop()
            self.printer = None
        self.http.close()

    def __enter__(self) -> LoopRig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- driving it -------------------------------------------------------------------------------

    @property
    def cloud_url(self) -> str:
        """Base URL of the embedded cloud (the same while it is stopped for an outage test)."""
        assert self._cloud_port, "rig not started"
        return f"http://127.0.0.1:{self._cloud_port}"

    def stop_cloud(self) -> None:
        """An outage: stop the cloud's server (its data stays; `start_cloud` brings it back)."""
        if self.server is not None:
            self.server.stop()
            self.server = None

    def start_cloud(self) -> None:
        """End an outage: serve the same cloud on the same port again."""
        if self.server is None:
            self.server = start_in_thread(self._app, host="127.0.0.1", port=self._cloud_port)

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call the admin API; raise with the problem's detail on failure."""
        response = self.http.request(
            method,
            self.cloud_url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        result: dict[str, Any] = response.json() if response.content else {}
        return result

    def enrol(self, email: str, display_name: str, badge: Credential) -> EnrolledUser:
        """Create a user and register their badge (by tag: the cloud never sees the number)."""
        user = self.admin(
            "POST", "/api/v1/admin/users", {"email": email, "display_name": display_name}
        )
        self.admin(
            "POST",
            f"/api/v1/admin/users/{user['id']}/cards",
            {"tag": credential_tag(self.site_key, badge), "label": "demo badge"},
        )
        return EnrolledUser(user["id"], email, display_name, user["api_token"])

    def policy(self, **change: object) -> dict[str, Any]:
        """Change the site's identity policy (card + PIN, self-enrolment, passcodes)."""
        return self.admin("PATCH", "/api/v1/admin/identity-policy", dict(change))

    def type_on_keypad(self, digits: str, *, enter: bool = True) -> float:
        """Type digits on the station's keypad (and Enter); returns the monotonic time."""
        at = time.monotonic()
        self.keypad.type_digits(digits)
        if enter:
            self.keypad.enter()
        return at

    def type_on_keyboard(self, text: str, *, enter: bool = True) -> float:
        """Type text on the station's keyboard (and Enter); returns the monotonic time."""
        at = time.monotonic()
        self.keypad.type_text(text)
        if enter:
            self.keypad.enter()
        return at

    def job_status(self, job_id: str) -> dict[str, Any]:
        """The admin view of a job (state, content_held)."""
        return self.admin("GET", f"/api/v1/admin/jobs/{job_id}")

    def tap(self, badge: Credential) -> float:
        """Tap a badge on the station's reader; returns the monotonic time of the tap."""
        at = time.monotonic()
        self.reader.present(badge)
        return at

    def press(self, button: Button) -> float:
        """Press a station button; returns the monotonic time of the press."""
        assert self.station is not None, "rig not started"
        at = time.monotonic()
        self.station.press(button)
        return at

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Wait until the station is back on its idle screen."""
        assert self.station is not None, "rig not started"
        return self.station.wait_for_state(State.IDLE, timeout_s)

    def _screen_shown(self, screen: Screen) -> None:
        self.screens.add(screen)
        if self._on_screen is not None:
            self._on_screen(screen, time.monotonic())
