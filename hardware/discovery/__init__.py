"""Printer discovery: mDNS (DNS-SD) browsing, SNMP range scans, and merging per device.

The package root exports only what needs neither zeroconf nor pysnmp (the TXT decoder, address
ranges, errors), so decoding can be imported anywhere. The I/O lives in:

- `hardware.discovery.mdns`: `browse(timeout_s, interfaces) -> list[DiscoveredPrinter]`;
- `hardware.discovery.scan`: `scan(client, ranges, exclude, ...) -> list[ScanResult]`;
- `hardware.discovery.merge`: `merge(printers, scanned) -> list[DiscoveredDevice]`.

Nothing leaves 127.0.0.0/8 unless asked: scans refuse other ranges without
`allow_network=True`, and `browse` has no default interface list.
"""

from __future__ import annotations

from hardware.discovery.errors import DiscoveryError, NetworkNotAllowedError, RangeError
from hardware.discovery.merge import DiscoveredDevice, merge
from hardware.discovery.ranges import AddressRange, ScanPlan, parse_range, plan_scan
from hardware.discovery.result import ScanResult
from hardware.discovery.txt import (
    PRINTER_SERVICE_TYPES,
    SERVICE_SCHEMES,
    DiscoveredPrinter,
    decode_txt,
)

__all__ = [
    "PRINTER_SERVICE_TYPES",
    "SERVICE_SCHEMES",
    "AddressRange",
    "DiscoveredDevice",
    "DiscoveredPrinter",
    "DiscoveryError",
    "NetworkNotAllowedError",
    "RangeError",
    "ScanPlan",
    "ScanResult",
    "decode_txt",
    "merge",
    "parse_range",
    "plan_scan",
]
