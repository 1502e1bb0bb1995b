"""Device data from the station's printer to the cloud, on a schedule and within the budget.

The station reads its printer every `poll_s` seconds over SNMP (`hardware.snmp`, when the printer
has a community configured) or else with IPP Get-Printer-Attributes (state, reasons, marker
levels, impressions): that traffic stays on the printer's LAN. What goes to the cloud is much
less:

* **alerts at once**: the set of active alerts (printer errors decoded from
  hrPrinterDetectedErrorState, rows of prtAlertTable, or "Printer not answering") is uploaded as
  soon as it differs from the last set the cloud took: a new alert or error is pushed at the
  next poll, an alert that stays is never sent again (the cloud de-duplicates too);
* **status and supplies** at `status_s`: uploaded only if they changed since the last upload (the
  page count is left out of the comparison: it changes with every page), and once a day anyway so
  the cloud can tell "unchanged" from "silent";
* **meters** (the page counter and where it came from) every `meters_s` (daily by default).

`DeviceMonitor.tick()` decides; it is driven by `DeviceDataLoop`'s thread in the station and
directly by tests (with an injected clock). An upload that fails is retried at the next poll with
whatever is due then, so nothing is lost while the cloud is unreachable and nothing is sent twice
once it took it. Figures: `pullprint bench-heartbeat` measures the bytes of each kind of upload.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hardware.errors import HardwareError
from hardware.ipp.model import AttributeGroup
from hardware.printers.words import READINESS_ATTRIBUTES, printer_problem, reason_in_words
from hardware.snmp.report import PrinterReport
from hardware.snmp.values import BLOCKING_ERRORS, ERROR_WORDS
from station.errors import CloudError

logger = logging.getLogger(__name__)

DAY_S = 24 * 3600.0
NOT_ANSWERING = "Printer not answering"


@dataclass(frozen=True, slots=True)
class Schedule:
    """How often to read the printer and upload each kind of data, in seconds."""

    poll_s: float = 60.0
    status_s: float = 900.0
    meters_s: float = DAY_S
    refresh_s: float = DAY_S  # an unchanged status is sent again after this long


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading of the printer, in the shapes the cloud takes."""

    status: dict[str, Any]
    alerts: list[dict[str, str]]
    meters: dict[str, Any] | None = None


SILENT = None  # what a printer that does not answer reads as (see `reading_of_report`)


def reading_of_report(report: PrinterReport | None) -> Reading:
    """An SNMP report (None: the printer did not answer) as a reading."""
    meters = None
    if report is not None and report.page_count is not None:
        meters = {"page_count": report.page_count, "source": report.page_count_source}
    return Reading(status_of(report), alerts_of(report), meters)


# Get-Printer-Attributes for a reading (PWG 5100.13 marker-*, RFC 8011 printer-state*).
IPP_ATTRIBUTES = (
    *READINESS_ATTRIBUTES,
    "marker-names",
    "marker-levels",
    "marker-types",
    "marker-colors",
    "printer-impressions-completed",
)
# Idle and printing are both "Ready" for the cloud: the difference flips with every job and would
# make every status slot an upload (the budget); the station's own screen shows the live state.
_IPP_STATE_WORDS = {3: "Ready", 4: "Ready", 5: "Printer stopped"}
_TRANSIENT_WORDS = frozenset({"Idle", "Printing", "Warming up", "Busy"})
_IPP_LEVEL_WORDS = {-1: "unavailable", -2: "unknown", -3: "some remaining"}


def reading_of_ipp(attributes: AttributeGroup) -> Reading:
    """Printer attributes (IPP) as a reading: state and fault reasons in words, marker levels."""
    problem = printer_problem(attributes)
    state = attributes.get_int("printer-state")
    words = problem or _IPP_STATE_WORDS.get(state or 0, "Status unknown")
    errors: dict[str, None] = {}
    for reason in attributes.get_strs("printer-state-reasons"):
        if (text := reason_in_words([], [reason])) is not None:
            errors.setdefault(text, None)
    if problem is not None:
        errors.setdefault(problem, None)
    names = attributes.get_strs("marker-names")
    levels = attributes.get_ints("marker-levels")
    kinds = attributes.get_strs("marker-types")
    colours = attributes.get_strs("marker-colors")
    supplies = []
    for i, name in enumerate(names[:32]):
        level = levels[i] if i < len(levels) else -2
        percent = level if 0 <= level <= 100 else None
        supplies.append(
            {
                "description": name[:200],
                "kind": (kinds[i] if i < len(kinds) else "other")[:64],
                "percent": percent,
                "level_words": f"{percent}%"
                if percent is not None
                else _IPP_LEVEL_WORDS.get(level, "unknown"),
                "colour": colours[i][:64] if i < len(colours) else None,
            }
        )
    status: dict[str, Any] = {
        "status_words": words[:200],
        "problem": problem,
        "errors": list(errors),
    }
    if supplies:
        status["supplies"] = supplies
    alerts = [{"severity": "critical", "words": text[:255]} for text in errors]
    impressions = attributes.get_int("printer-impressions-completed")
    meters = None
    if impressions is not None and impressions >= 0:
        meters = {"page_count": impressions, "source": "printer-impressions-completed"}
    return Reading(status, sorted(alerts, key=lambda a: a["words"]), meters)


def status_of(report: PrinterReport | None) -> dict[str, Any]:
    """The status upload: words, errors, supplies in percent, console text (no page count)."""
    if report is None:
        return {"status_words": NOT_ANSWERING, "problem": NOT_ANSWERING, "errors": []}
    words = report.status_words
    status: dict[str, Any] = {
        "status_words": "Ready" if words in _TRANSIENT_WORDS else words,
        "problem": report.problem,
        "errors": list(report.error_words),
        "supplies": [
            {
                "description": s.description[:200],
                "kind": s.type[:64],
                "percent": s.percent,
                "level_words": s.level_words[:64],
                "colour": s.colour,
            }
            for s in report.supplies[:32]
        ],
    }
    if report.console_lines:
        status["console"] = [line[:200] for line in report.console_lines[:8]]
    return status


def alerts_of(report: PrinterReport | None) -> list[dict[str, str]]:
    """The active alerts: printer errors (blocking ones as "critical") and prtAlertTable rows."""
    if report is None:
        return [{"severity": "critical", "words": NOT_ANSWERING}]
    found: dict[tuple[str, str], None] = {}
    for error in report.errors:
        severity = "critical" if error in BLOCKING_ERRORS else "warning"
        found.setdefault((severity, ERROR_WORDS[error]), None)
    for alert in report.alerts:
        found.setdefault((alert.severity[:32] or "other", alert.words[:255]), None)
    return [{"severity": s, "words": w} for s, w in sorted(found)][:64]


class DeviceMonitor:
    """Decides what to upload at each poll (see the module docstring).

    Args:
        read: reads the printer (raises HardwareError when it does not answer).
        upload: sends one payload (raises CloudError on failure); returns the body bytes.
        schedule: the intervals.
        clock: monotonic seconds.
        active: whether there is a printer to read (one with SNMP configured) right now.
    """

    def __init__(
        self,
        read: Callable[[], Reading],
        upload: Callable[[dict[str, Any]], int],
        schedule: Schedule,
        *,
        clock: Callable[[], float] = time.monotonic,
        active: Callable[[], bool] = lambda: True,
    ) -> None:
        self._read = read
        self._active = active
        self._upload = upload
        self.schedule = schedule
        self._clock = clock
        self._next_poll = float("-inf")
        self._next_status = float("-inf")
        self._next_meters = float("-inf")
        self._status_sent_at = float("-inf")
        self._last_status: dict[str, Any] | None = None
        self._last_alerts: list[dict[str, str]] | None = None
        self.last_reading: Reading | None = None
        self.status_words: str | None = None
        self.uploads = 0
        self.bytes_sent = 0
        self._lock = threading.Lock()  # the poll thread, and an admin's "poll now"

    def poll_now(self) -> None:
        """Make the next `tick` read the printer whatever the schedule (an admin asked)."""
        self._next_poll = float("-inf")

    def reset(self) -> None:
        """Forget what the cloud has (another printer now): the next poll sends everything."""
        with self._lock:
            self._forget()

    def _forget(self) -> None:
        self._next_poll = self._next_status = self._next_meters = float("-inf")
        self._status_sent_at = float("-inf")
        self._last_status = None
        self._last_alerts = None

    def tick(self) -> list[str]:
        """Poll the printer if due and upload what is due; returns the kinds uploaded.

        Raises:
            CloudError: the upload failed (it is retried at the next poll).
        """
        with self._lock:
            return self._tick()

    def _tick(self) -> list[str]:
        now = self._clock()
        if now < self._next_poll or not self._active():
            return []
        self._next_poll = now + self.schedule.poll_s
        try:
            reading = self._read()
        except HardwareError as exc:
            logger.info("printer not answering: %s", type(exc).__name__)
            reading = reading_of_report(SILENT)
        self.last_reading = reading
        status, alerts = reading.status, reading.alerts
        self.status_words = str(status["status_words"])
        payload: dict[str, Any] = {}
        if alerts != self._last_alerts:
            # At once, with the status that goes with it (the admin sees both change together).
            payload["alerts"] = alerts
            payload["status"] = status
        elif now >= self._next_status and (
            status != self._last_status or now - self._status_sent_at >= self.schedule.refresh_s
        ):
            payload["status"] = status
        if now >= self._next_meters and reading.meters is not None:
            payload["meters"] = reading.meters
        if payload:
            # A failed upload raises here: nothing below is recorded, so all of it is retried.
            self.bytes_sent += self._upload(payload)
            self.uploads += 1
        if now >= self._next_status:
            self._next_status = now + self.schedule.status_s
        if not payload:
            return []
        if "alerts" in payload:
            self._last_alerts = alerts
        if "status" in payload:
            self._last_status, self._status_sent_at = status, now
        if "meters" in payload:
            self._next_meters = now + self.schedule.meters_s
        return sorted(payload)


class DeviceDataLoop:
    """Runs `DeviceMonitor.tick` on its own thread every `poll_s`; `close` is called at stop."""

    def __init__(self, monitor: DeviceMonitor, close: Callable[[], None] | None = None) -> None:
        self.monitor = monitor
        self._close = close
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling."""
        self._thread = threading.Thread(target=self._run, name="station-device-data", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop polling and release the SNMP session."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._close is not None:
            self._close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.monitor.tick()
            except CloudError as exc:
                logger.warning("device data upload failed (retried at the next poll): %s", exc)
            except Exception:
                logger.exception("device data poll failed")
            self._stop.wait(self.monitor.schedule.poll_s)
