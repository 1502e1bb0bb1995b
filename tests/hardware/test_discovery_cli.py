"""`pullprint discover` end to end on loopback: an mDNS advertiser and snmpsim on 127.0.0.1.

Both are one printer at 127.0.0.1, so the table shows one device found by mDNS and SNMP.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator

import pytest
from zeroconf import IPVersion, ServiceInfo, Zeroconf

from tests.support.snmpsim import SHARED_SNMPREC, SnmpSimulator, fixed_recording
from tools.cli import main
from tools.discover_cmd import format_table

HP = "jetdirect_m252dw"
# Unique per run: another test run on this machine may advertise on 127.0.0.1 at the same time.
UUID = str(uuid.uuid4())


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpSimulator]:
    sim = SnmpSimulator(tmp_path_factory.mktemp("discover-cli-snmpsim"))
    sim.add_recording(HP, fixed_recording(SHARED_SNMPREC / f"{HP}.snmprec"))
    with sim:
        yield sim


@pytest.fixture
def advertised() -> Iterator[None]:
    zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    info = ServiceInfo(
        "_ipps._tcp.local.",
        f"PullPrint CLI {UUID[:8]}._ipps._tcp.local.",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=8631,
        properties={
            b"ty": b"HP Color LaserJet Pro M252dw",
            b"UUID": UUID.encode(),
            b"rp": b"ipp/print",
        },
        server="pullprint-cli-test.local.",
    )
    zc.register_service(info)
    try:
        yield
    finally:
        zc.unregister_all_services()
        zc.close()


def _snmp_args(sim: SnmpSimulator) -> list[str]:
    return ["--snmp", "127.0.0.1-3", "--port", str(sim.port), "--community", HP, "--timeout", "0.3"]


def test_mdns_and_snmp_merge_into_one_device(
    simulator: SnmpSimulator, advertised: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["discover", "--mdns", "--mdns-timeout", "2", *_snmp_args(simulator), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    devices = json.loads(out)["devices"]
    ours = [d for d in devices if "127.0.0.1" in d["addresses"]]
    assert len(ours) == 1
    device = ours[0]
    assert device["sources"] == ["mdns", "snmp"]
    assert device["uuid"] == UUID
    assert device["serial_number"] == "VNB3J99999"
    assert device["uris"][0] == "ipps://127.0.0.1:8631/ipp/print"


def test_table(simulator: SnmpSimulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["discover", *_snmp_args(simulator), "--exclude", "127.0.0.2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["ADDRESS", "NAME"]
    assert len(lines) == 2
    assert lines[1].startswith("127.0.0.1 ")
    assert "VNB3J99999" in lines[1] and "snmp" in lines[1]


def test_non_loopback_range_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["discover", "--snmp", "10.0.0.0/24"]) == 2
    assert "--allow-network" in capsys.readouterr().err


def test_bad_range_and_nothing_asked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["discover", "--snmp", "127.0.0.1-banana"]) == 2
    assert main(["discover"]) == 2
    err = capsys.readouterr().err
    assert "bad range" in err and "--mdns" in err


def test_empty_table() -> None:
    assert format_table([]) == "No printers found."
