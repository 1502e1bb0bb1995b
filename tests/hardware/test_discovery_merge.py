"""Merging mDNS and SNMP findings per device: by UUID, MAC, serial or address."""

from __future__ import annotations

import subprocess
import sys

from hardware.discovery import DiscoveredPrinter, ScanResult, decode_txt, merge
from hardware.snmp.report import PrinterReport

UUID_A = "564e4233-4a39-3939-3939-c48e8fa24548"


def _mdns(stype: str, address: str, uuid: str | None, port: int = 631) -> DiscoveredPrinter:
    txt = {"ty": "HP Color LaserJet Pro M252dw", "rp": "ipp/print", "pdl": "application/pdf"}
    if uuid:
        txt["UUID"] = uuid
    return decode_txt(
        txt, name="Lab HP", service_type=stype, host="hp.local.", port=port, addresses=(address,)
    )


def _snmp(address: str, mac: str | None = None, serial: str | None = None) -> ScanResult:
    report = PrinterReport(
        make="HP", model="Color LaserJet Pro M252dw", mac_address=mac, serial_number=serial
    )
    return ScanResult(address, 161, report)


def test_ipp_ipps_and_snmp_of_one_printer_are_one_device() -> None:
    devices = merge(
        [_mdns("_ipp._tcp", "127.0.0.10", UUID_A), _mdns("_ipps._tcp", "127.0.0.10", UUID_A)],
        [_snmp("127.0.0.10", mac="c4:8e:8f:a2:45:48", serial="VNB3J99999")],
    )
    assert len(devices) == 1
    device = devices[0]
    assert device.uuid == UUID_A
    assert device.serial_number == "VNB3J99999"
    assert device.mac_address == "c4:8e:8f:a2:45:48"
    assert device.sources == ("mdns", "snmp")
    assert device.uris[0].startswith("ipps://")
    assert device.uris == (
        "ipps://127.0.0.10:631/ipp/print",
        "ipp://127.0.0.10:631/ipp/print",
        "snmp://127.0.0.10:161",
    )
    assert device.to_json()["pdl"] == ["application/pdf"]


def test_same_uuid_on_two_addresses_is_one_device() -> None:
    devices = merge(
        [_mdns("_ipp._tcp", "127.0.0.10", UUID_A), _mdns("_ipp._tcp", "127.0.0.11", UUID_A)], []
    )
    assert [d.addresses for d in devices] == [("127.0.0.10", "127.0.0.11")]


def test_same_mac_or_serial_on_two_addresses_is_one_device() -> None:
    by_mac = merge(
        [], [_snmp("127.0.0.20", mac="aa:bb:cc:dd:ee:ff"), _snmp("127.0.0.21", "AA:BB:CC:DD:EE:FF")]
    )
    assert len(by_mac) == 1
    by_serial = merge([], [_snmp("127.0.0.20", serial="x1"), _snmp("127.0.0.21", serial="X1 ")])
    assert len(by_serial) == 1


def test_transitive_identity() -> None:
    # mDNS at .30 (uuid), SNMP at .30 (serial S), SNMP at .31 (serial S): all one device.
    devices = merge(
        [_mdns("_ipp._tcp", "127.0.0.30", UUID_A)],
        [_snmp("127.0.0.30", serial="S"), _snmp("127.0.0.31", serial="S")],
    )
    assert len(devices) == 1
    assert devices[0].addresses == ("127.0.0.30", "127.0.0.31")


def test_different_devices_stay_apart_and_sorted() -> None:
    devices = merge(
        [_mdns("_ipp._tcp", "127.0.0.100", None)],
        [_snmp("127.0.0.9", serial="A"), _snmp("127.0.0.20", serial="B")],
    )
    assert [d.addresses[0] for d in devices] == ["127.0.0.9", "127.0.0.20", "127.0.0.100"]
    assert devices[2].sources == ("mdns",)
    assert devices[0].sources == ("snmp",)


def test_nothing_found() -> None:
    assert merge([], []) == []


def test_package_root_imports_no_io_library() -> None:
    # The decoder, ranges and merging must stay importable without zeroconf or pysnmp.
    code = (
        "import sys, hardware.discovery; "
        "print([m for m in ('zeroconf', 'pysnmp', 'asyncio', 'socket') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"
