"""IPv4 address ranges for SNMP scans: parse, subtract exclusions, enumerate. Pure: no I/O.

A range is written as a CIDR block (`192.168.1.0/24`), a span (`10.0.0.5-10.0.0.20`, or
`10.0.0.5-20` with only the last octet), or one address. Invariants:

- a CIDR block of /30 or wider leaves out its network and broadcast addresses (they are not
  hosts); /31 and /32 keep every address (RFC 3021);
- `plan_scan` refuses any address outside 127.0.0.0/8 unless `allow_network=True`, so a test or a
  developer never sends SNMP to a real network by mistake, and refuses more than `max_hosts`
  addresses, so a typo (`/8` for `/24`) does not start a sweep of millions;
- the hosts come out in ascending order, each once, whatever the ranges overlap.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from hardware.discovery.errors import NetworkNotAllowedError, RangeError

DEFAULT_MAX_HOSTS = 65_536
_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


@dataclass(frozen=True, order=True)
class AddressRange:
    """Inclusive span of IPv4 addresses, as integers."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if not 0 <= self.first <= self.last <= 0xFFFFFFFF:
            raise RangeError(f"bad address span {self.first}..{self.last}")

    @property
    def size(self) -> int:
        """How many addresses."""
        return self.last - self.first + 1

    @property
    def is_loopback(self) -> bool:
        """Whether every address lies in 127.0.0.0/8."""
        low = int(_LOOPBACK.network_address)
        return low <= self.first and self.last <= int(_LOOPBACK.broadcast_address)

    def __str__(self) -> str:
        first = ipaddress.IPv4Address(self.first)
        if self.first == self.last:
            return str(first)
        return f"{first}-{ipaddress.IPv4Address(self.last)}"


def parse_range(text: str, *, whole_block: bool = False) -> AddressRange:
    """`a.b.c.d/n`, `a.b.c.d-e.f.g.h`, `a.b.c.d-h` or `a.b.c.d` -> `AddressRange`.

    A CIDR block keeps its network and broadcast addresses only with `whole_block` (exclusions
    use it: excluding `10.0.0.0/24` must exclude all of it).

    Raises:
        RangeError: the text is none of those, or not IPv4.
    """
    spec = text.strip()
    try:
        if "/" in spec:
            network = ipaddress.IPv4Network(spec, strict=False)
            first, last = int(network.network_address), int(network.broadcast_address)
            if network.prefixlen <= 30 and not whole_block:
                first, last = first + 1, last - 1
            return AddressRange(first, last)
        if "-" in spec:
            start_text, _, end_text = spec.partition("-")
            start = ipaddress.IPv4Address(start_text.strip())
            end_text = end_text.strip()
            if end_text.isdigit() and int(end_text) <= 255:
                end = ipaddress.IPv4Address((int(start) & 0xFFFFFF00) | int(end_text))
            else:
                end = ipaddress.IPv4Address(end_text)
            if int(end) < int(start):
                raise RangeError(f"range {text!r} ends before it starts")
            return AddressRange(int(start), int(end))
        address = int(ipaddress.IPv4Address(spec))
        return AddressRange(address, address)
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError) as exc:
        if isinstance(exc, RangeError):
            raise
        raise RangeError(
            f"bad range {text!r}: expected IPv4 CIDR (10.0.0.0/24), span (10.0.0.5-10.0.0.20) "
            "or address"
        ) from exc


def normalize(ranges: Iterable[AddressRange]) -> list[AddressRange]:
    """Sorted, merged, non-overlapping spans covering the same addresses."""
    merged: list[AddressRange] = []
    for span in sorted(ranges):
        if merged and span.first <= merged[-1].last + 1:
            last = merged[-1]
            merged[-1] = AddressRange(last.first, max(last.last, span.last))
        else:
            merged.append(span)
    return merged


def subtract(ranges: Iterable[AddressRange], exclude: Iterable[AddressRange]) -> list[AddressRange]:
    """`ranges` without any address in `exclude`, normalized."""
    result = normalize(ranges)
    for cut in normalize(exclude):
        kept: list[AddressRange] = []
        for span in result:
            if cut.last < span.first or span.last < cut.first:
                kept.append(span)
                continue
            if span.first < cut.first:
                kept.append(AddressRange(span.first, cut.first - 1))
            if cut.last < span.last:
                kept.append(AddressRange(cut.last + 1, span.last))
        result = kept
    return result


@dataclass(frozen=True)
class ScanPlan:
    """The addresses a scan will ask, after exclusions and checks."""

    spans: tuple[AddressRange, ...]

    @property
    def host_count(self) -> int:
        """How many addresses."""
        return sum(span.size for span in self.spans)

    def hosts(self) -> Iterator[str]:
        """Each address as text, ascending, lazily (a /16 is not built as a list)."""
        for span in self.spans:
            for value in range(span.first, span.last + 1):
                yield str(ipaddress.IPv4Address(value))


def plan_scan(
    ranges: Sequence[str | AddressRange],
    exclude: Sequence[str | AddressRange] = (),
    *,
    allow_network: bool = False,
    max_hosts: int = DEFAULT_MAX_HOSTS,
) -> ScanPlan:
    """Parse, subtract and check the ranges of a scan.

    Raises:
        RangeError: a range cannot be parsed, or more than `max_hosts` addresses remain.
        NetworkNotAllowedError: an address outside 127.0.0.0/8 without `allow_network`.
    """
    wanted = [r if isinstance(r, AddressRange) else parse_range(r) for r in ranges]
    cuts = [r if isinstance(r, AddressRange) else parse_range(r, whole_block=True) for r in exclude]
    spans = subtract(wanted, cuts)
    if not allow_network:
        outside = [span for span in spans if not span.is_loopback]
        if outside:
            raise NetworkNotAllowedError(
                f"refusing to scan {outside[0]}: not loopback (127.0.0.0/8); "
                "pass allow_network=True to scan a real network"
            )
    plan = ScanPlan(tuple(spans))
    if plan.host_count > max_hosts:
        raise RangeError(
            f"{plan.host_count} addresses to scan, more than the limit of {max_hosts}: "
            "narrow the ranges or raise the limit"
        )
    return plan
