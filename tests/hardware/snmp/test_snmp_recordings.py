"""Every shared recording, served by snmpsim, read over SNMP into a `PrinterReport`.

Parametrized over the *.snmprec files found at run time, so new recordings are picked up. Where
LibreNMS's expected-values JSON sits beside a recording (README.md §1), model, serial, page count
and supply levels must match it, except for the differences listed in KNOWN_DIFFERENCES, each
with the reason we read the printer differently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hardware.snmp import CommunityCredentials, LevelKind, PrinterReport, SnmpVersion
from hardware.snmp.client import SnmpTarget
from hardware.snmp.report import build_report
from hardware.snmp.session import SnmpSession
from tests.support.snmpsim import (
    SHARED_SNMPREC,
    SnmpSimulator,
    fixed_recording,
    parse_snmprec,
    shared_recordings,
)

RECORDINGS = shared_recordings()

# recording stem -> field -> (what LibreNMS says, why we differ). Checked to still differ.
KNOWN_DIFFERENCES = {
    "jetdirect_m130nw": {
        "model": (
            "LaserJet MFP M129-M134",
            "LibreNMS maps HP models to a product family; the printer says 'HP LaserJet MFP "
            "M130nw' in hrDeviceDescr and sysDescr, which is what we report",
        )
    },
    "zebra": {
        "model": (
            "79071",
            "LibreNMS reads the ZebraNet print server's product code (683.1.4.0); we read the "
            "printer's own model, 'ZTC TLP 2824 Plus' (10642.1.1.0)",
        )
    },
}


@pytest.fixture(scope="module")
def session() -> Iterator[SnmpSession]:
    with SnmpSession(timeout_s=1.0, retries=1) as session:
        yield session


def _read(session: SnmpSession, simulator: SnmpSimulator, community: str) -> PrinterReport:
    target = SnmpTarget(simulator.host, CommunityCredentials(community), simulator.port)
    return session.read_printer(target)


def _expected(stem: str) -> dict[str, Any] | None:
    path = SHARED_SNMPREC / f"{stem}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


@pytest.mark.parametrize("recording", RECORDINGS, ids=[p.stem for p in RECORDINGS])
def test_every_recording_yields_a_report(
    session: SnmpSession, snmpsim: SnmpSimulator, recording: Path
) -> None:
    report = _read(session, snmpsim, recording.stem)
    assert report.unreadable == ()
    assert report.model, "every recording has at least sysDescr"
    assert report.make
    # The same values decoded without the network give the same report: the client loses nothing.
    offline = build_report(parse_snmprec(fixed_recording(recording)))
    assert offline.model == report.model
    assert offline.serial_number == report.serial_number
    assert offline.supplies == report.supplies
    assert offline.page_count == report.page_count
    report.to_json()  # serializable
    json.dumps(report.to_json())


def _supply_expectations(expected: dict[str, Any]) -> Iterator[tuple[tuple[int, int], int]]:
    supplies = expected.get("printer-supplies", {}).get("discovery", {})
    for row in supplies.get("printer_supplies", []):
        oid = row["supply_oid"].lstrip(".")
        if oid.startswith("1.3.6.1.2.1.43.11.1.1.9."):  # marker supplies, not input trays
            device, index = (int(p) for p in oid.split(".")[-2:])
            yield (device, index), int(row["supply_current"])


def _page_count_expectation(expected: dict[str, Any]) -> int | None:
    sensors = expected.get("sensors", {}).get("discovery", {}).get("sensors", [])
    by_oid = {s["sensor_oid"].lstrip("."): s for s in sensors if s["sensor_class"] == "count"}
    for oid in (
        "1.3.6.1.2.1.43.10.2.1.4.1.1",  # prtMarkerLifeCount
        "1.3.6.1.4.1.11.2.3.9.4.2.1.4.1.2.5.0",  # HP total engine pages
        "1.3.6.1.4.1.2385.1.1.19.2.1.3.5.4.61",  # Sharp B/W total (+ colour total below)
    ):
        if oid in by_oid:
            value = int(by_oid[oid]["sensor_current"])
            colour = by_oid.get("1.3.6.1.4.1.2385.1.1.19.2.1.3.5.4.63")
            if oid.endswith(".61") and colour:
                value += int(colour["sensor_current"])
            return value
    return None


WITH_JSON = [p for p in RECORDINGS if (SHARED_SNMPREC / f"{p.stem}.json").is_file()]


@pytest.mark.parametrize("recording", WITH_JSON, ids=[p.stem for p in WITH_JSON])
def test_recording_matches_librenms_expectations(
    session: SnmpSession, snmpsim: SnmpSimulator, recording: Path
) -> None:
    expected = _expected(recording.stem)
    assert expected is not None
    report = _read(session, snmpsim, recording.stem)
    device = expected["os"]["discovery"]["devices"][0]
    known = KNOWN_DIFFERENCES.get(recording.stem, {})

    hardware = device.get("hardware")
    if "model" in known:
        said, _why = known["model"]
        assert hardware == said, "LibreNMS changed its mind: update KNOWN_DIFFERENCES"
        assert report.model and said.lower() not in report.model.lower()
    elif hardware:
        # LibreNMS drops the brand ("Color LaserJet M452nw" for "HP Color LaserJet M452nw").
        seen = f"{report.make} {report.model}".lower()
        assert hardware.lower() in seen or hardware.lower() in (report.model or "").lower()

    if device.get("serial"):
        assert report.serial_number == device["serial"]

    pages = _page_count_expectation(expected)
    if pages is not None:
        assert report.page_count == pages

    supplies = {s.index: s for s in report.supplies}
    for index, percent in _supply_expectations(expected):
        supply = supplies[index]
        if supply.level_kind is LevelKind.SOME_REMAINING:
            # LibreNMS shows -3 ("at least one unit remains") as 50 %; we say "some remaining".
            assert percent == 50
            assert supply.percent is None
        else:
            assert supply.percent == percent, supply


def test_known_differences_name_existing_recordings() -> None:
    stems = {p.stem for p in RECORDINGS}
    assert set(KNOWN_DIFFERENCES) <= stems


def test_v1_reads_the_same_report_as_v2c(session: SnmpSession, snmpsim: SnmpSimulator) -> None:
    # SNMPv1 fails a whole GET for one missing object and ends walks with noSuchName.
    v1 = CommunityCredentials("jetdirect_m130nw", SnmpVersion.V1)
    report_v1 = session.read_printer(SnmpTarget(snmpsim.host, v1, snmpsim.port))
    report_v2 = _read(session, snmpsim, "jetdirect_m130nw")
    assert report_v1 == report_v2
    assert report_v1.page_count == 15232
