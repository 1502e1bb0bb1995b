"""Device data from the station's printer to the cloud, on a schedule and within the budget.

The station reads its printer over SNMP (`hardware.snmp`) every `poll_s` seconds: that traffic
stays on the printer's LAN. What goes to the cloud is much less:

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


def status_of(report: PrinterReport | None) -> dict[str, Any]:
    """The status upload: words, errors, supplies in percent, console text (no page count)."""
    if report is None:
        return {"status_words": NOT_ANSWERING, "problem": NOT_ANSWERING, "errors": []}
    status: dict[str, Any] = {
        "status_words": report.status_words,
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
        read: Callable[[], PrinterReport],
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
        self.last_report: PrinterReport | None = None
        self.status_words: str | None = None
        self.uploads = 0
        self.bytes_sent = 0

    def poll_now(self) -> None:
        """Make the next `tick` read the printer whatever the schedule (an admin asked)."""
        self._next_poll = float("-inf")

    def tick(self) -> list[str]:
        """Poll the printer if due and upload what is due; returns the kinds uploaded.

        Raises:
            CloudError: the upload failed (it is retried at the next poll).
        """
        now = self._clock()
        if now < self._next_poll or not self._active():
            return []
        self._next_poll = now + self.schedule.poll_s
        try:
            report: PrinterReport | None = self._read()
        except HardwareError as exc:
            logger.info("printer not answering SNMP: %s", type(exc).__name__)
            report = None
        self.last_report = report
        status, alerts = status_of(report), alerts_of(report)
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
        meters_due = now >= self._next_meters and report is not None
        if meters_due and report is not None and report.page_count is not None:
            payload["meters"] = {
                "page_count": report.page_count,
                "source": report.page_count_source,
            }
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
