"""Browse DNS-SD (mDNS, RFC 6762/6763) for printer services with python-zeroconf.

Invariants:

- the caller names the interfaces: there is no default that joins every network interface
  (tests pass `["127.0.0.1"]`); `None` must be asked for explicitly and means all;
- IPv4 only, as the SNMP side is IPv4 only;
- a `Zeroconf` passed in is used and left open; one made here is closed before returning;
- each service found is resolved (SRV, TXT, A) once after browsing; one that does not resolve
  in `resolve_timeout_s` is left out and logged at DEBUG.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from zeroconf import InterfaceChoice, IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

from hardware.discovery.txt import PRINTER_SERVICE_TYPES, DiscoveredPrinter, decode_txt

logger = logging.getLogger(__name__)


def open_zeroconf(interfaces: Sequence[str] | None) -> Zeroconf:
    """A `Zeroconf` bound to `interfaces` (IPv4), or to every interface when None."""
    if interfaces is not None and not interfaces:
        raise ValueError("no interfaces given: name them (e.g. ['127.0.0.1']) or pass None")
    chosen: list[str] | InterfaceChoice = (
        InterfaceChoice.All if interfaces is None else list(interfaces)
    )
    return Zeroconf(interfaces=chosen, ip_version=IPVersion.V4Only)


def instance_name(name: str, service_type: str) -> str:
    """`Office._ipp._tcp.local.` -> `Office` (the part a person chose)."""
    suffix = "." + service_type
    return name[: -len(suffix)] if name.endswith(suffix) else name


def browse(
    timeout_s: float,
    interfaces: Sequence[str] | None,
    *,
    service_types: Sequence[str] = PRINTER_SERVICE_TYPES,
    zeroconf: Zeroconf | None = None,
    resolve_timeout_s: float = 1.0,
) -> list[DiscoveredPrinter]:
    """Listen `timeout_s` seconds for printer services and return them decoded.

    Args:
        timeout_s: how long to browse.
        interfaces: IPv4 addresses of the interfaces to use (`["127.0.0.1"]` in tests), or
            None for every interface.
        service_types: DNS-SD types to browse, with the `.local.` suffix.
        zeroconf: an open `Zeroconf` to use instead of making one (it is left open).
        resolve_timeout_s: how long to wait for one service's SRV/TXT/A records.

    Returns:
        One `DiscoveredPrinter` per service instance, sorted by name and type.
    """
    zc = zeroconf if zeroconf is not None else open_zeroconf(interfaces)
    found: dict[tuple[str, str], None] = {}
    lock = threading.Lock()

    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
            with lock:
                found.setdefault((service_type, name), None)

    try:
        browser = ServiceBrowser(zc, list(service_types), handlers=[on_change])
        try:
            time.sleep(max(0.0, timeout_s))
        finally:
            browser.cancel()
        with lock:
            services = list(found)
        printers = []
        for service_type, name in services:
            printer = _resolve(zc, service_type, name, resolve_timeout_s)
            if printer is not None:
                printers.append(printer)
    finally:
        if zeroconf is None:
            zc.close()
    return sorted(printers, key=lambda p: (p.name, p.service_type))


def _resolve(
    zc: Zeroconf, service_type: str, name: str, timeout_s: float
) -> DiscoveredPrinter | None:
    info = zc.get_service_info(service_type, name, timeout=int(timeout_s * 1000))
    if info is None:
        logger.debug("%s did not resolve within %.1f s", name, timeout_s)
        return None
    return decode_txt(
        info.properties,
        name=instance_name(name, service_type),
        service_type=service_type,
        host=info.server or "",
        port=info.port or 0,
        addresses=tuple(info.parsed_addresses(IPVersion.V4Only)),
    )
