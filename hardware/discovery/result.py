"""`ScanResult`: one host that answered an SNMP scan. Pure data, no pysnmp import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hardware.snmp.report import PrinterReport


@dataclass(frozen=True)
class ScanResult:
    """One host that answered SNMP, and what it reported."""

    address: str
    port: int
    report: PrinterReport

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"address": self.address, "port": self.port, **self.report.to_json()}
