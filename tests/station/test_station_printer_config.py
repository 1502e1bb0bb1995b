"""The printer as paired: one URI, or a fallback policy with the printer's pin."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardware.printers.fallback import FallbackTransport
from hardware.printers.ipp import IppPrinterTransport
from station.config import load_config
from station.errors import ConfigError
from station.parts import build_transport

PIN = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # base64 of 32 bytes
BASE = """
[station]
name = "s"
[cloud]
url = "http://127.0.0.1:1"
station_id = "6f1c2a54-9d3e-4c1b-8a7f-2b5d0e9c4a11"
[site]
key_hex = "{key}"
[printer]
""".format(key="ab" * 32)


def _transport(tmp_path: Path, printer: str):
    path = tmp_path / "station.toml"
    path.write_text(BASE + printer)
    return build_transport(load_config(path, {}))


def test_a_single_ipp_uri_needs_no_policy(tmp_path: Path) -> None:
    transport = _transport(tmp_path, 'uri = "ipp://127.0.0.1:631/ipp/print"\n')
    assert isinstance(transport, IppPrinterTransport)


def test_ipps_without_a_pin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="printer"):
        _transport(tmp_path, 'uri = "ipps://127.0.0.1:631/ipp/print"\n')


def test_a_fallback_policy_tries_ipps_then_ipp(tmp_path: Path) -> None:
    transport = _transport(
        tmp_path,
        f'uri = "ipps://127.0.0.1:631/ipp/print"\npin = "{PIN}"\nmode = "ipps-then-ipp"\n'
        'ipp_uri = "ipp://127.0.0.1:631/ipp/print"\n',
    )
    assert isinstance(transport, FallbackTransport)
    assert transport.policy.uris() == [
        "ipps://127.0.0.1:631/ipp/print",
        "ipp://127.0.0.1:631/ipp/print",
    ]


def test_an_ipps_only_printer_cannot_be_given_a_way_around_its_pin(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ipps-only"):
        _transport(
            tmp_path,
            f'uri = "ipps://127.0.0.1:631/ipp/print"\npin = "{PIN}"\nmode = "ipps-only"\n'
            'raw_uri = "socket://127.0.0.1:9100"\n',
        )


def test_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mode"):
        _transport(tmp_path, 'uri = "ipp://127.0.0.1:631/ipp/print"\nmode = "whatever"\n')
