"""Browsing mDNS on 127.0.0.1 only: services registered here with zeroconf are found and decoded.

Both the advertiser and the browser bind `interfaces=["127.0.0.1"]`; nothing is sent out of the
machine's real interfaces.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from zeroconf import IPVersion, ServiceInfo, Zeroconf

from hardware.discovery.mdns import browse, instance_name, open_zeroconf

LOOPBACK = ["127.0.0.1"]
# Unique per run: another test run on this machine may advertise on 127.0.0.1 at the same time.
UUID = str(uuid.uuid4())
TAG = UUID[:8]


def _info(service_type: str, name: str, port: int, txt: dict[bytes, bytes]) -> ServiceInfo:
    return ServiceInfo(
        service_type,
        f"{name}.{service_type}",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=port,
        properties=txt,
        server="pullprint-test-printer.local.",
    )


def _register(zc: Zeroconf, infos: list[ServiceInfo]) -> None:
    # Each registration probes for about 1.5 s (RFC 6762 §8.1): probe them side by side.
    with ThreadPoolExecutor(len(infos)) as pool:
        list(pool.map(zc.register_service, infos))


@pytest.fixture
def advertiser() -> Iterator[Zeroconf]:
    zc = Zeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only)
    try:
        yield zc
    finally:
        zc.unregister_all_services()
        zc.close()


def test_browse_finds_every_printer_service_type(advertiser: Zeroconf) -> None:
    common = {b"ty": b"HP Color LaserJet Pro M252dw", b"UUID": UUID.encode(), b"txtvers": b"1"}
    infos = [
        _info(
            "_ipp._tcp.local.",
            f"PullPrint Test {TAG}",
            631,
            {
                **common,
                b"rp": b"ipp/print",
                b"pdl": b"application/pdf,image/urf",
                b"Color": b"T",
                b"Duplex": b"F",
                b"adminurl": b"http://127.0.0.1/",
                b"note": b"Lab",
            },
        ),
        _info("_ipps._tcp.local.", f"PullPrint Test {TAG}", 631, {**common, b"rp": b"ipp/print"}),
        _info("_pdl-datastream._tcp.local.", f"PullPrint Test {TAG}", 9100, common),
        _info("_printer._tcp.local.", f"PullPrint Test {TAG}", 515, {**common, b"rp": b"lp"}),
    ]
    _register(advertiser, infos)

    wanted = {
        "_ipp._tcp.local.",
        "_ipps._tcp.local.",
        "_pdl-datastream._tcp.local.",
        "_printer._tcp.local.",
    }
    browser = open_zeroconf(LOOPBACK)
    ours: dict[str, Any] = {}
    try:
        # Browse in 2 s windows until every type answered: on a loaded machine (CI, or a full
        # suite beside other jobs) the announcements can miss one window.
        deadline = time.monotonic() + 20
        while set(ours) != wanted and time.monotonic() < deadline:
            found = browse(2.0, LOOPBACK, zeroconf=browser)
            ours.update({p.service_type: p for p in found if p.uuid == UUID})
        assert not browser.done  # a Zeroconf passed in is left open
    finally:
        browser.close()

    assert set(ours) == wanted
    ipp = ours["_ipp._tcp.local."]
    assert ipp.name == f"PullPrint Test {TAG}"
    assert ipp.addresses == ("127.0.0.1",)
    assert ipp.port == 631
    assert ipp.uri == "ipp://127.0.0.1:631/ipp/print"
    assert (ipp.make, ipp.model) == ("HP", "Color LaserJet Pro M252dw")
    assert ipp.pdl == ("application/pdf", "image/urf")
    assert (ipp.color, ipp.duplex) == (True, False)
    assert ipp.admin_url == "http://127.0.0.1/"
    assert ipp.location == "Lab"
    assert ours["_ipps._tcp.local."].uri == "ipps://127.0.0.1:631/ipp/print"
    assert ours["_pdl-datastream._tcp.local."].uri == "socket://127.0.0.1:9100"
    assert ours["_printer._tcp.local."].uri == "lpd://127.0.0.1:515/lp"


def test_browse_needs_named_interfaces() -> None:
    with pytest.raises(ValueError, match="interfaces"):
        browse(0.1, [])


def test_instance_name() -> None:
    assert instance_name("Office._ipp._tcp.local.", "_ipp._tcp.local.") == "Office"
    assert instance_name("odd", "_ipp._tcp.local.") == "odd"
