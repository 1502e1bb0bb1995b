"""SNMP: an asyncio client (pysnmp 7) and the decoding of what printers report.

The package itself exports only what needs no pysnmp (values, errors, credentials, the pure
decoder), so decoding can be imported where pysnmp is not installed. The I/O lives in:

- `hardware.snmp.client`: `SnmpClient` (async, one engine per loop) and `SnmpTarget`;
- `hardware.snmp.reader`: `read_printer(client, target) -> PrinterReport`;
- `hardware.snmp.session`: `SnmpSession`, the blocking facade for CLIs.

    async with SnmpClient() as client:
        report = await read_printer(client, SnmpTarget("127.0.0.1", CommunityCredentials("x")))
"""

from __future__ import annotations

from hardware.snmp.credentials import (
    AuthProtocol,
    CommunityCredentials,
    Credentials,
    PrivProtocol,
    SnmpVersion,
    UsmCredentials,
)
from hardware.snmp.errors import (
    SnmpAuthError,
    SnmpError,
    SnmpNoSuchObjectError,
    SnmpProtocolError,
    SnmpTimeoutError,
)
from hardware.snmp.report import PageCounter, PrinterReport, SnmpValue, build_report
from hardware.snmp.tables import Alert, Supply
from hardware.snmp.values import DeviceStatus, LevelKind, PrinterError, PrinterStatus

__all__ = [
    "Alert",
    "AuthProtocol",
    "CommunityCredentials",
    "Credentials",
    "DeviceStatus",
    "LevelKind",
    "PageCounter",
    "PrinterError",
    "PrinterReport",
    "PrinterStatus",
    "PrivProtocol",
    "SnmpAuthError",
    "SnmpError",
    "SnmpNoSuchObjectError",
    "SnmpProtocolError",
    "SnmpTimeoutError",
    "SnmpValue",
    "Supply",
    "SnmpVersion",
    "UsmCredentials",
    "build_report",
]
