"""The bieniu/brother fixtures, served by snmpsim, must read as that library's snapshot says.

Compared: model, serial, firmware, MAC, page counter, front-panel status text, and every
remaining-life percentage the snapshot gives for toner, ink and drum. The snapshot lower-cases
the status and joins the two LCD lines with a space.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from hardware.snmp import CommunityCredentials, PrinterReport
from hardware.snmp.client import SnmpTarget
from hardware.snmp.session import SnmpSession
from tests.hardware.snmp.conftest import BROTHER_FIXTURES, brother_fixtures
from tests.support.snmpsim import SnmpSimulator

SNAPSHOT = BROTHER_FIXTURES / "test_init.ambr"
_FIELD = re.compile(r"(\w+)=(None|-?\d+|'[^']*')")


def _value(text: str) -> str | int | None:
    if text == "None":
        return None
    if text.startswith("'"):
        return text[1:-1]
    return int(text)


def parse_snapshot() -> dict[str, dict[str, str | int | None]]:
    """Snapshot entries by model (lower case), both the device and the sensors block merged."""
    entries: dict[str, dict[str, str | int | None]] = {}
    for block in SNAPSHOT.read_text(encoding="utf-8").split("# name: ")[1:]:
        name, _, body = block.partition("\n")
        fields = {key: _value(raw) for key, raw in _FIELD.findall(body)}
        test = name.removesuffix(".1")
        entries.setdefault(test, {}).update(fields)
    return {str(e["model"]).lower(): e for e in entries.values() if e.get("model")}


SNAPSHOT_ENTRIES = parse_snapshot()
COLOURS = ("black", "cyan", "magenta", "yellow")


@pytest.fixture(scope="module")
def session() -> Iterator[SnmpSession]:
    with SnmpSession(timeout_s=1.0, retries=1) as session:
        yield session


def _read(session: SnmpSession, snmpsim: SnmpSimulator, stem: str) -> PrinterReport:
    target = SnmpTarget(snmpsim.host, CommunityCredentials(f"bieniu-{stem}"), snmpsim.port)
    return session.read_printer(target)


def test_every_snapshot_entry_has_a_fixture() -> None:
    stems = {p.stem for p in brother_fixtures()}
    assert len(SNAPSHOT_ENTRIES) == 12
    assert set(SNAPSHOT_ENTRIES) <= stems


@pytest.mark.parametrize("model", sorted(SNAPSHOT_ENTRIES))
def test_brother_fixture_matches_snapshot(
    session: SnmpSession, snmpsim: SnmpSimulator, model: str
) -> None:
    expected = SNAPSHOT_ENTRIES[model]
    report = _read(session, snmpsim, model)
    assert report.make == "Brother"
    assert report.model == expected["model"]
    assert report.serial_number == expected["serial"]
    assert report.firmware == expected["firmware"]
    assert report.mac_address == expected["mac"]
    assert report.page_count == expected["page_counter"]
    if expected["status"] is not None:
        assert " ".join(report.console_lines).lower() == expected["status"]
    by_colour = {s.colour: s.percent for s in report.supplies if s.colour}
    for colour in COLOURS:
        remaining = expected.get(f"{colour}_toner_remaining")
        if remaining is None:
            remaining = expected.get(f"{colour}_ink_remaining")
        if remaining is not None:
            assert by_colour.get(colour) == remaining, colour
    drum = expected.get("drum_remaining_life")
    if drum is not None:
        drums = [s.percent for s in report.supplies if s.type == "drum"]
        assert drums == [drum]


@pytest.mark.parametrize("stem", ["invalid", "incomplete"])
def test_brother_negative_fixtures_give_partial_reports(
    session: SnmpSession, snmpsim: SnmpSimulator, stem: str
) -> None:
    report = _read(session, snmpsim, stem)
    assert report.page_count is None
    assert report.firmware is None
    if stem == "incomplete":
        assert report.model == "DCP-L3550CDW"
        assert report.serial_number == "serial_number"
    else:
        assert report.model is None
