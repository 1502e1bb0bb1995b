"""One snmpsim for the whole test session, serving every shared recording and a few of our own.

Our own recordings (all in the temporary data dir, never in shared/):

- `pullprint-faults`: a copy of jetdirect_m252dw with made-up rows a recording cannot give:
  error-state bits, a warning status, console display text (NUL-padded, Latin-1), alerts,
  colorants linked to the supplies, and a UTF-8 location;
- `bieniu-<stem>`: each Brother fixture of bieniu/brother converted from its OID -> value JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardware.snmp.values import CHARSET_CODECS
from tests.support.snmpsim import SHARED_SNMPREC, SnmpSimulator, fixed_recording

FAULTS = "pullprint-faults"
BROTHER_FIXTURES = SHARED_SNMPREC / "bieniu-brother"

# Rows replaced or added in the copy of jetdirect_m252dw (RFC 2790, RFC 3805 objects).
FAULT_ROWS = {
    "1.3.6.1.2.1.1.6.0": "4x|" + "Büro 2. Stock".encode().hex(),  # UTF-8 sysLocation
    "1.3.6.1.2.1.25.3.2.1.5.1": "2|3",  # hrDeviceStatus warning
    "1.3.6.1.2.1.25.3.5.1.1.1": "2|1",  # hrPrinterStatus other
    # noPaper (bit 1), doorOpen (4), jammed (5) in octet 0; inputTrayEmpty (13) in octet 1
    "1.3.6.1.2.1.25.3.5.1.2.1": "4x|4c04",
    "1.3.6.1.2.1.43.12.1.1.4.1.1": "4|black",
    "1.3.6.1.2.1.43.12.1.1.4.1.2": "4|cyan",
    "1.3.6.1.2.1.43.12.1.1.4.1.3": "4|magenta",
    "1.3.6.1.2.1.43.12.1.1.4.1.4": "4|yellow",
    # prtConsoleDisplayBufferText: NUL padded, and a Latin-1 "é" (0xe9, not UTF-8)
    "1.3.6.1.2.1.43.16.5.1.2.1.1": "4x|" + (b"Load Tray 2\r\n" + b"\x00" * 8).hex(),
    "1.3.6.1.2.1.43.16.5.1.2.1.2": "4x|" + "Bac vidé".encode("latin-1").hex(),
    # prtAlertTable rows 1 (jam, critical) and 2 (toner low, warning, no description)
    "1.3.6.1.2.1.43.18.1.1.2.1.1": "2|3",
    "1.3.6.1.2.1.43.18.1.1.4.1.1": "2|13",
    "1.3.6.1.2.1.43.18.1.1.7.1.1": "2|8",
    "1.3.6.1.2.1.43.18.1.1.8.1.1": "4|13.1.1 Jam in Tray 2",
    "1.3.6.1.2.1.43.18.1.1.2.1.2": "2|4",
    "1.3.6.1.2.1.43.18.1.1.4.1.2": "2|11",
    "1.3.6.1.2.1.43.18.1.1.7.1.2": "2|1104",
}


def _oid_key(oid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in oid.split("."))


def faults_recording() -> str:
    """jetdirect_m252dw with FAULT_ROWS replacing or adding rows, sorted as snmpsim needs."""
    rows: dict[str, str] = {}
    for line in fixed_recording(SHARED_SNMPREC / "jetdirect_m252dw.snmprec").splitlines():
        oid, _, rest = line.partition("|")
        if oid:
            rows[oid] = rest
    rows.update(FAULT_ROWS)
    return "".join(f"{oid}|{rows[oid]}\n" for oid in sorted(rows, key=_oid_key))


def brother_fixture_recording(path: Path) -> str:
    """A bieniu/brother fixture (OID -> value as the library saw it) as snmprec text.

    Hex-record lists become the blob they were split from, plus the 0xFF checksum byte the
    library strips; the front-panel text is encoded back with the charset the printer declares
    in prtLocalizationCharacterSet (Brother's default, HP Roman-8, when it declares none), which
    gives the bytes the printer sent. Nulls (objects the printer lacked) are left out.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    charset_value = data.get("1.3.6.1.2.1.43.7.1.1.4.1.1")
    codec = CHARSET_CODECS.get(int(charset_value), "hp-roman8") if charset_value else "hp-roman8"
    rows: dict[str, str] = {}
    for oid, value in data.items():
        if value is None:
            continue
        if isinstance(value, list):
            rows[oid] = "4x|" + "".join(value) + "ff"
        elif oid == "1.3.6.1.2.1.2.2.1.6.1":
            rows[oid] = "4x|" + value.replace(":", "")
        elif oid == "1.3.6.1.2.1.43.7.1.1.4.1.1":
            rows[oid] = f"2|{int(value)}"
        elif oid == "1.3.6.1.2.1.43.10.2.1.4.1.1":
            rows[oid] = f"65|{int(value)}"
        elif oid == "1.3.6.1.2.1.1.3.0":
            rows[oid] = f"67|{int(value)}"
        else:
            try:
                raw = value.encode(codec)
            except UnicodeEncodeError:
                raw = value.encode("utf-8")
            rows[oid] = "4x|" + raw.hex()
    return "".join(f"{oid}|{rows[oid]}\n" for oid in sorted(rows, key=_oid_key))


def brother_fixtures() -> list[Path]:
    """The bieniu/brother fixture files."""
    return sorted(BROTHER_FIXTURES.glob("*.json"))


@pytest.fixture(scope="session")
def snmpsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpSimulator]:
    """snmpsim on 127.0.0.1 serving every shared recording, the faults copy and Brother fixtures."""
    simulator = SnmpSimulator(tmp_path_factory.mktemp("snmpsim"))
    simulator.copy_shared()
    simulator.add_recording(FAULTS, faults_recording())
    for path in brother_fixtures():
        simulator.add_recording(f"bieniu-{path.stem}", brother_fixture_recording(path))
    with simulator:
        yield simulator
