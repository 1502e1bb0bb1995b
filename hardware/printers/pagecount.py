"""The printer's page counter over SNMP: proof of printing where the printer speaks no PJL.

`prtMarkerLifeCount` (RFC 3805 §5, prtMarkerTable) counts every impression the marker made in
the printer's life. Its increase across a RAW job is the job's pages, or more if someone else
printed at the same time: the delta proves that something printed, not exactly what. Printers
without the Printer MIB counter get the vendor counter that `hardware.snmp` chooses.

This module imports pysnmp (through `hardware.snmp.session`), which takes a noticeable time:
import it only where a page counter is configured.
"""

from __future__ import annotations

import logging

from hardware.printers.raw import PageCounterError
from hardware.snmp.client import SnmpTarget
from hardware.snmp.errors import SnmpError
from hardware.snmp.oids import PRT_MARKER_LIFE_COUNT
from hardware.snmp.session import SnmpSession

logger = logging.getLogger(__name__)


class SnmpPageCounter:
    """`raw.PageCounter` over SNMP; one `SnmpSession` (one engine, one loop) for its whole life."""

    def __init__(self, target: SnmpTarget, *, timeout_s: float = 2.0, retries: int = 1) -> None:
        """Remember the target; the SNMP session starts at the first read."""
        self.target = target
        self._timeout_s = timeout_s
        self._retries = retries
        self._session: SnmpSession | None = None

    def read(self) -> int:
        """The first prtMarkerLifeCount row, else the vendor counter of a full report."""
        session = self._open()
        try:
            rows = session.walk(self.target, PRT_MARKER_LIFE_COUNT)
            counts = [value for _, value in sorted(rows.items()) if isinstance(value, int)]
            if counts:
                return counts[0]
            count = session.read_printer(self.target).page_count
        except SnmpError as exc:
            raise PageCounterError(f"{self.target}: {type(exc).__name__}") from exc
        if count is None:
            raise PageCounterError(f"{self.target}: no page counter")
        return count

    def problem(self) -> str | None:
        """What stops the printer printing (hrPrinterDetectedErrorState in words), or None.

        Raises:
            PageCounterError: the printer did not answer.
        """
        try:
            return self._open().read_printer(self.target).problem
        except SnmpError as exc:
            raise PageCounterError(f"{self.target}: {type(exc).__name__}") from exc

    def _open(self) -> SnmpSession:
        if self._session is None:
            self._session = SnmpSession(
                timeout_s=self._timeout_s,
                retries=self._retries,
                call_timeout_s=max(10.0, self._timeout_s * (self._retries + 1) * 4),
            )
        return self._session

    def close(self) -> None:
        """Stop the SNMP session."""
        if self._session is not None:
            self._session.close()
            self._session = None
