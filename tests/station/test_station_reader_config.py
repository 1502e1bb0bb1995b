"""The station picks its badge reader from config: a real serial reader on a pty, end to end."""

from __future__ import annotations

import os
import time
import tty
from pathlib import Path

import pytest

from hardware.display.simulated import SimulatedDisplay
from hardware.readers.formats import h10301
from hardware.readers.serial_reader import SerialCardReader
from station.app import build_station
from station.config import load_config
from station.credentials import credential_tag
from station.errors import ConfigError, SelfEnrolmentDisabledError, UnknownCredentialError
from station.workflow import State

SITE_KEY = bytes(range(32))

BASE = f"""
[station]
name = "Floor 2"
[cloud]
url = "http://127.0.0.1:1"
station_id = "6f1c2a54-9d3e-4c1b-8a7f-2b5d0e9c4a11"
[site]
key_hex = "{SITE_KEY.hex()}"
[printer]
uri = "ipp://127.0.0.1:1/ipp/print"
[session]
identify_s = 2
error_s = 5
"""


class RecordingCloud:
    """Knows nobody; remembers the tags it was asked about."""

    def __init__(self) -> None:
        self.tags: list[str] = []

    def open_session(self, tag: str):
        self.tags.append(tag)
        raise UnknownCredentialError("HTTP 404", status=404, code="unknown-credential", detail=None)

    def offer_enrolment(self, tag: str):
        raise SelfEnrolmentDisabledError(
            "HTTP 403", status=403, code="self-enrolment-disabled", detail=None
        )

    def end_session(self, session_id: str) -> None: ...

    def close(self) -> None: ...


class NoPrinter:
    uri = "ipp://127.0.0.1:1/ipp/print"

    def deliver(self, *args, **kwargs):  # pragma: no cover - never reached: nobody is known
        raise AssertionError("nothing should print")

    def close(self) -> None: ...


def _config(tmp_path: Path, extra: str, env: dict[str, str] | None = None):
    path = tmp_path / "station.toml"
    path.write_text(BASE + extra)
    return load_config(path, env or {})


def test_reader_table_and_environment_overrides_are_read(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        '[hardware]\nreader = "serial"\n[reader]\nport = "/dev/ttyACM0"\nbaudrate = 9600\n',
        {"PULLPRINT_STATION_READER_PORT": "/dev/serial/by-id/usb-reader-if00"},
    )
    assert config.hardware.reader == "serial"
    assert dict(config.hardware.reader_options) == {
        "port": "/dev/serial/by-id/usb-reader-if00",
        "baudrate": 9600,
    }


def test_unknown_reader_or_option_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="reader"):
        _config(tmp_path, '[hardware]\nreader = "telepathy"\n')
    with pytest.raises(ConfigError, match="baud"):  # not an option of any reader
        _config(tmp_path, '[hardware]\nreader = "serial"\n[reader]\nport = "x"\nbaud = 1\n')
    # An option of another kind of reader: refused before the device is opened.
    config = _config(
        tmp_path, '[hardware]\nreader = "serial"\n[reader]\nport = "x"\ndevice = "y"\n'
    )
    with pytest.raises(ConfigError, match="device"):
        build_station(
            config, display=SimulatedDisplay(), transport=NoPrinter(), client=RecordingCloud()
        )


def test_a_badge_line_on_a_serial_port_reaches_the_cloud_as_its_tag(tmp_path: Path) -> None:
    """The real SerialCardReader, chosen by config, on a pty; the test types the badge."""
    controller, device = os.openpty()
    tty.setraw(device)
    port = os.ttyname(device)
    config = _config(
        tmp_path,
        '[hardware]\nreader = "serial"\n'
        f'[reader]\nport = "{port}"\ntechnology = "h10301"\nencoding = "facility:number"\n',
    )
    cloud = RecordingCloud()
    station = build_station(config, display=SimulatedDisplay(), transport=NoPrinter(), client=cloud)
    assert isinstance(station.reader, SerialCardReader)
    station.start()
    try:
        # Bytes written before the station opens the port are lost: repeat until one lands.
        deadline = time.monotonic() + 10
        while not cloud.tags and time.monotonic() < deadline:
            os.write(controller, b"90:324\r\n")
            time.sleep(0.2)
        assert cloud.tags, "the badge never reached the cloud"
        assert cloud.tags[0] == credential_tag(SITE_KEY, h10301(90, 324))
        assert station.wait_for_state(State.ERROR, 5)  # unknown badge: the screen says so
        assert "not recognised" in " ".join(station.screens[-1].lines()).lower()
    finally:
        station.stop()
        os.close(controller)
        os.close(device)
