"""Merge what mDNS and SNMP found into one record per device. Pure: no I/O.

Two findings are the same device when they share a UUID, a MAC address, a serial number or an
IP address (a printer advertises `_ipp._tcp` and `_ipps._tcp` from one address, and answers
SNMP there). Identity is transitive: findings are grouped with a union-find over those keys.
Where sources disagree, SNMP wins for make/model/serial/MAC (it is the device's own data) and
mDNS fills what SNMP lacks; services and addresses are the union, sorted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hardware.discovery.result import ScanResult
from hardware.discovery.txt import DiscoveredPrinter


@dataclass(frozen=True)
class DiscoveredDevice:
    """One physical printer as far as discovery can tell, with every way to reach it."""

    addresses: tuple[str, ...]
    name: str | None = None
    uuid: str | None = None
    mac_address: str | None = None
    serial_number: str | None = None
    make: str | None = None
    model: str | None = None
    location: str | None = None
    uris: tuple[str, ...] = ()
    pdl: tuple[str, ...] = ()
    color: bool | None = None
    duplex: bool | None = None
    admin_url: str | None = None
    status: str | None = None
    page_count: int | None = None
    sources: tuple[str, ...] = ()  # "mdns", "snmp"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "addresses": list(self.addresses),
            "name": self.name,
            "uuid": self.uuid,
            "mac_address": self.mac_address,
            "serial_number": self.serial_number,
            "make": self.make,
            "model": self.model,
            "location": self.location,
            "uris": list(self.uris),
            "pdl": list(self.pdl),
            "color": self.color,
            "duplex": self.duplex,
            "admin_url": self.admin_url,
            "status": self.status,
            "page_count": self.page_count,
            "sources": list(self.sources),
        }


Finding = DiscoveredPrinter | ScanResult


def _keys(finding: Finding) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    if isinstance(finding, DiscoveredPrinter):
        if finding.uuid:
            keys.append(("uuid", finding.uuid.lower()))
        keys += [("address", a) for a in finding.addresses]
        if not finding.addresses and finding.host:
            keys.append(("host", finding.host.lower().rstrip(".")))
    else:
        report = finding.report
        if report.mac_address:
            keys.append(("mac", report.mac_address.lower()))
        if report.serial_number:
            keys.append(("serial", report.serial_number.strip().upper()))
        keys.append(("address", finding.address))
    return keys


def merge(
    printers: Sequence[DiscoveredPrinter], scanned: Sequence[ScanResult]
) -> list[DiscoveredDevice]:
    """Group the findings per device (by UUID, MAC, serial or address) and combine each group.

    Returns:
        One `DiscoveredDevice` per group, sorted by first address then name.
    """
    findings: list[Finding] = [*printers, *scanned]
    parent = list(range(len(findings)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[str, str], int] = {}
    for index, finding in enumerate(findings):
        for key in _keys(finding):
            if key in owner:
                parent[root(index)] = root(owner[key])
            else:
                owner[key] = index
    groups: dict[int, list[Finding]] = {}
    for index, finding in enumerate(findings):
        groups.setdefault(root(index), []).append(finding)
    devices = [_combine(group) for group in groups.values()]
    return sorted(devices, key=lambda d: (_address_key(d.addresses), d.name or ""))


def _address_key(addresses: tuple[str, ...]) -> tuple[int, ...]:
    if not addresses:
        return (1 << 32,)
    try:
        return tuple(int(p) for p in addresses[0].split("."))
    except ValueError:
        return (1 << 32,)


def _first(values: Iterable[Any]) -> Any:
    return next((v for v in values if v is not None and v != ""), None)


def _combine(group: list[Finding]) -> DiscoveredDevice:
    mdns = [f for f in group if isinstance(f, DiscoveredPrinter)]
    snmp = [f for f in group if isinstance(f, ScanResult)]
    reports = [s.report for s in snmp]
    addresses = {a for p in mdns for a in p.addresses} | {s.address for s in snmp}
    uris = {p.uri for p in mdns} | {f"snmp://{s.address}:{s.port}" for s in snmp}
    # IPPS before IPP before the rest: the table shows the safest way in first.
    rank = {"ipps": 0, "ipp": 1, "socket": 2, "lpd": 3}
    mdns.sort(key=lambda p: (rank.get(p.scheme, 9), p.name))
    pdl: dict[str, None] = {}
    for printer in mdns:
        for item in printer.pdl:
            pdl.setdefault(item, None)
    return DiscoveredDevice(
        addresses=tuple(sorted(addresses, key=lambda a: _address_key((a,)))),
        name=_first([*(p.name for p in mdns), *(r.name for r in reports)]),
        uuid=_first(p.uuid for p in mdns),
        mac_address=_first(r.mac_address for r in reports),
        serial_number=_first(r.serial_number for r in reports),
        make=_first([*(r.make for r in reports), *(p.make for p in mdns)]),
        model=_first([*(r.model for r in reports), *(p.model for p in mdns)]),
        location=_first([*(r.location for r in reports), *(p.location for p in mdns)]),
        uris=tuple(sorted(uris, key=lambda u: (rank.get(u.split(":", 1)[0], 9), u))),
        pdl=tuple(pdl),
        color=_first(p.color for p in mdns),
        duplex=_first(p.duplex for p in mdns),
        admin_url=_first(p.admin_url for p in mdns),
        status=_first(r.status_words for r in reports),
        page_count=_first(r.page_count for r in reports),
        sources=tuple(s for s, items in (("mdns", mdns), ("snmp", snmp)) if items),
    )
