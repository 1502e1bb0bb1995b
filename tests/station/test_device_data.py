"""The device-data schedule: alerts at once (once), status only when it changed (or daily),
meters daily, failed uploads retried; readings decoded from shared printer recordings."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from hardware.snmp.errors import SnmpTimeoutError
from hardware.snmp.report import PrinterReport, build_report
from hardware.snmp.values import PrinterError
from station.device_data import (
    DAY_S,
    NOT_ANSWERING,
    DeviceMonitor,
    Reading,
    Schedule,
    alerts_of,
    reading_of_ipp,
    reading_of_report,
    status_of,
)
from station.errors import CloudUnreachableError
from tools.snmpsim import SHARED_SNMPREC, fixed_recording, parse_snmprec


def _report(name: str = "jetdirect_m130nw") -> PrinterReport:
    return build_report(parse_snmprec(fixed_recording(SHARED_SNMPREC / f"{name}.snmprec")))


class Printer:
    """What the monitor reads: a report, or silence."""

    def __init__(self, report: PrinterReport) -> None:
        self.report: PrinterReport | None = report

    def read(self) -> Reading:
        if self.report is None:
            raise SnmpTimeoutError("no answer")
        return reading_of_report(self.report)


class Cloud:
    """Takes uploads (or fails them while `down`)."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.down = False

    def upload(self, payload: dict[str, Any]) -> int:
        if self.down:
            raise CloudUnreachableError("down")
        self.payloads.append(payload)
        return len(str(payload))


@pytest.fixture
def world() -> tuple[Printer, Cloud, list[float], DeviceMonitor]:
    printer, cloud, now = Printer(_report()), Cloud(), [0.0]
    monitor = DeviceMonitor(
        printer.read, cloud.upload, Schedule(poll_s=60, status_s=900), clock=lambda: now[0]
    )
    return printer, cloud, now, monitor


def test_first_poll_sends_everything_then_nothing_until_something_changes(world: Any) -> None:
    printer, cloud, now, monitor = world
    assert monitor.tick() == ["alerts", "meters", "status"]
    first = cloud.payloads[0]
    assert first["alerts"] == [] and first["meters"]["page_count"] == printer.report.page_count
    assert [s["percent"] for s in first["status"]["supplies"]] == [
        s.percent for s in printer.report.supplies
    ]
    for step in range(1, 30):  # 29 minutes of polls: nothing changed, nothing sent
        now[0] = step * 60
        assert monitor.tick() == []
    assert len(cloud.payloads) == 1
    now[0] = 30.5 * 60
    assert monitor.tick() == []  # not due: 30 s after the last poll


def test_new_error_is_pushed_at_the_next_poll_and_only_once(world: Any) -> None:
    printer, cloud, now, monitor = world
    monitor.tick()
    printer.report = dataclasses.replace(printer.report, errors=(PrinterError.NO_PAPER,))
    now[0] = 60
    assert monitor.tick() == ["alerts", "status"]  # at once, not at the 15-minute status slot
    assert cloud.payloads[-1]["alerts"] == [{"severity": "critical", "words": "Out of paper"}]
    assert cloud.payloads[-1]["status"]["status_words"] == "Out of paper"
    now[0] = 120
    assert monitor.tick() == []
    printer.report = dataclasses.replace(printer.report, errors=())
    now[0] = 180
    assert monitor.tick() == ["alerts", "status"]  # cleared: the empty set goes up too
    assert cloud.payloads[-1]["alerts"] == []


def test_status_changes_wait_for_the_status_interval_and_a_daily_refresh(world: Any) -> None:
    printer, cloud, now, monitor = world
    monitor.tick()
    supply = dataclasses.replace(printer.report.supplies[0], percent=12)
    printer.report = dataclasses.replace(
        printer.report, supplies=(supply, *printer.report.supplies[1:])
    )
    sent = []
    for step in range(1, 16):
        now[0] = step * 60
        sent.append(monitor.tick())
    assert sent[:14] == [[]] * 14 and sent[14] == ["status"]  # at 15 min
    assert cloud.payloads[-1]["status"]["supplies"][0]["percent"] == 12
    count = len(cloud.payloads)
    now[0] = DAY_S + 900  # a day after the status went up (and after the meters)
    assert monitor.tick() == ["meters", "status"] and len(cloud.payloads) == count + 1


def test_failed_upload_is_retried_with_what_is_due(world: Any) -> None:
    _, cloud, now, monitor = world
    cloud.down = True
    with pytest.raises(CloudUnreachableError):
        monitor.tick()
    cloud.down = False
    now[0] = 60
    assert monitor.tick() == ["alerts", "meters", "status"]
    assert len(cloud.payloads) == 1


def test_a_silent_printer_is_an_alert(world: Any) -> None:
    printer, cloud, now, monitor = world
    monitor.tick()
    printer.report = None
    now[0] = 60
    assert monitor.tick() == ["alerts", "status"]
    assert cloud.payloads[-1]["alerts"] == [{"severity": "critical", "words": NOT_ANSWERING}]
    assert monitor.status_words == NOT_ANSWERING
    assert "meters" not in cloud.payloads[-1]


def test_inactive_monitor_reads_nothing() -> None:
    reads: list[int] = []

    def read() -> Reading:
        reads.append(1)
        return reading_of_report(_report())

    monitor = DeviceMonitor(read, lambda p: 0, Schedule(), active=lambda: False)
    assert monitor.tick() == [] and reads == []


@pytest.mark.parametrize("name", ["jetdirect_m130nw", "brother", "konica", "ricoh_mpc3002"])
def test_uploads_fit_the_cloud_schema(name: str) -> None:
    """What the station builds from real recordings is what the cloud's schema accepts."""
    from cloud.api.devices import AlertModel, StatusModel

    report = _report(name)
    StatusModel.model_validate(status_of(report))
    for alert in alerts_of(report):
        AlertModel.model_validate(alert)


def test_ipp_attributes_as_a_reading() -> None:
    from hardware.ipp.enums import Tag
    from hardware.ipp.model import Attribute, AttributeGroup

    group = AttributeGroup(
        Tag.PRINTER_ATTRIBUTES,
        [
            Attribute.of("printer-state", Tag.ENUM, 5),
            Attribute.of(
                "printer-state-reasons", Tag.KEYWORD, "media-empty-error", "toner-low-report"
            ),
            Attribute.of("marker-names", Tag.NAME_WITHOUT_LANGUAGE, "Black", "Cyan"),
            Attribute.of("marker-levels", Tag.INTEGER, 42, -3),
            Attribute.of("marker-types", Tag.KEYWORD, "toner", "toner"),
            Attribute.of("printer-impressions-completed", Tag.INTEGER, 9876),
        ],
    )
    reading = reading_of_ipp(group)
    assert reading.status["status_words"] == "Out of paper"
    assert [s["percent"] for s in reading.status["supplies"]] == [42, None]
    assert reading.status["supplies"][1]["level_words"] == "some remaining"
    assert reading.alerts == [{"severity": "critical", "words": "Out of paper"}]
    assert reading.meters == {"page_count": 9876, "source": "printer-impressions-completed"}
    from cloud.api.devices import StatusModel

    StatusModel.model_validate(reading.status)
