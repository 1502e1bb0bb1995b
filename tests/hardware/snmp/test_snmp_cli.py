"""`pullprint printer inspect` through `tools.cli.main`, against snmpsim."""

from __future__ import annotations

import json

import pytest

from tests.hardware.snmp.conftest import FAULTS
from tests.support.snmpsim import V3_AUTH_KEY, V3_PRIV_KEY, V3_USER, SnmpSimulator, free_udp_port
from tools.cli import CliError, main
from tools.printer_cmd import parse_host


def _host(sim: SnmpSimulator) -> str:
    return f"{sim.host}:{sim.port}"


def test_inspect_json(snmpsim: SnmpSimulator, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["printer", "inspect", _host(snmpsim), "--community", "jetdirect_m130nw", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "HP LaserJet MFP M130nw"
    assert data["make"] == "HP"
    assert data["serial_number"] == "VNCRC48198"
    assert data["mac_address"] == "14:cb:19:95:2e:a0"
    assert data["page_count"] == 15232
    assert data["status_words"] == "Ready"
    assert [(s["description"], s["percent"]) for s in data["supplies"]] == [
        ("Black Cartridge HP CF217A", 28),
        ("Imaging Drum HP CF219A", 71),
    ]


def test_inspect_plain_shows_status_errors_and_supplies(
    snmpsim: SnmpSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["printer", "inspect", _host(snmpsim), "--community", FAULTS]) == 0
    out = capsys.readouterr().out
    assert "HP Color LaserJet Pro M252dw" in out
    assert "Status       Out of paper (device warning, printer other)" in out
    assert "Errors       Out of paper, Door open, Paper jam, Paper tray empty" in out
    assert "Black Cartridge HP CF400X    63%" in out
    assert "Display      Load Tray 2 | Bac vidé" in out
    assert "critical  13.1.1 Jam in Tray 2" in out
    assert "Location     Büro 2. Stock" in out


def test_inspect_v3_auth_priv(snmpsim: SnmpSimulator, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["printer", "inspect", _host(snmpsim), "--user", V3_USER, "--auth-key", V3_AUTH_KEY]
    args += ["--priv-key", V3_PRIV_KEY, "--context", "utax", "--json"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["model"], data["serial_number"], data["page_count"]) == (
        "P-4532DN",
        "R9L0309954",
        427,
    )


def test_inspect_v3_wrong_key_is_one_line_and_exit_1(
    snmpsim: SnmpSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["printer", "inspect", _host(snmpsim), "--user", V3_USER]
    args += ["--auth-key", "not-the-auth-key", "--priv-key", V3_PRIV_KEY, "--context", "utax"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("pullprint: ") and "refused the SNMPv3 credentials" in err
    assert "\n" not in err and "not-the-auth-key" not in err


def test_inspect_timeout_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_udp_port()
    args = ["printer", "inspect", f"127.0.0.1:{port}", "--community", "public"]
    assert main([*args, "--timeout", "0.5", "--retries", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"pullprint: 127.0.0.1:{port} did not answer SNMP within 0.5 s x 1 tries "
        "(is it on, is the port right, and is the community right?)"
    )


@pytest.mark.parametrize("host", ["192.0.2.10", "printer.example", "[2001:db8::1]:161"])
def test_inspect_refuses_non_loopback_hosts(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["printer", "inspect", host, "--community", "public"]) == 1
    err = capsys.readouterr().err
    assert "refusing" in err and "--allow-network" in err


def test_inspect_needs_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["printer", "inspect", "127.0.0.1", "--version", "2c"]) == 1
    assert "--community" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "allow", "expected"),
    [
        ("127.0.0.1", False, ("127.0.0.1", 161)),
        ("127.0.0.5:1161", False, ("127.0.0.5", 1161)),
        ("localhost:16100", False, ("127.0.0.1", 16100)),
        ("[::1]:162", False, ("::1", 162)),
        ("::1", False, ("::1", 161)),
        ("192.0.2.10:161", True, ("192.0.2.10", 161)),
        ("printer.example", True, ("printer.example", 161)),
    ],
)
def test_parse_host(text: str, allow: bool, expected: tuple[str, int]) -> None:
    assert parse_host(text, allow_network=allow) == expected


@pytest.mark.parametrize("text", ["127.0.0.1:0", "127.0.0.1:x", "[::1", "", "10.1.2.3"])
def test_parse_host_rejects(text: str) -> None:
    with pytest.raises(CliError):
        parse_host(text, allow_network=False)
