"""`SnmpClient` and `SnmpSession` against snmpsim: versions, v3 authPriv, errors, made-up rows."""

from __future__ import annotations

import asyncio
import time

import pytest

from hardware.snmp import (
    AuthProtocol,
    CommunityCredentials,
    DeviceStatus,
    PrinterError,
    PrinterStatus,
    PrivProtocol,
    SnmpAuthError,
    SnmpError,
    SnmpNoSuchObjectError,
    SnmpTimeoutError,
    SnmpVersion,
    UsmCredentials,
    oids,
)
from hardware.snmp.client import SnmpClient, SnmpTarget
from hardware.snmp.reader import read_printer
from hardware.snmp.session import SnmpSession
from tests.hardware.snmp.conftest import FAULTS
from tests.support.snmpsim import V3_AUTH_KEY, V3_PRIV_KEY, V3_USER, SnmpSimulator, free_udp_port


def _v3(context: str, *, auth_key: str = V3_AUTH_KEY, user: str = V3_USER) -> UsmCredentials:
    return UsmCredentials(
        user=user,
        auth_key=auth_key,
        priv_key=V3_PRIV_KEY,
        auth_protocol=AuthProtocol.SHA,
        priv_protocol=PrivProtocol.AES,
        context_name=context,
    )


def test_v3_auth_priv_get(snmpsim: SnmpSimulator) -> None:
    async def run() -> dict[tuple[int, ...], object]:
        async with SnmpClient(timeout_s=1.0, retries=0) as client:
            target = SnmpTarget(snmpsim.host, _v3("brother"), snmpsim.port)
            return dict(await client.get(target, [oids.SYS_DESCR]))

    values = asyncio.run(run())
    assert (
        values[oids.SYS_DESCR]
        == b"Brother NC-8300h, Firmware Ver.1.14  (14.11.06),MID 8C5-F01,FID 2"
    )


def test_v3_auth_priv_reads_a_whole_report(snmpsim: SnmpSimulator) -> None:
    with SnmpSession(timeout_s=1.0, retries=0) as session:
        report = session.read_printer(
            SnmpTarget(snmpsim.host, _v3("jetdirect_m252dw"), snmpsim.port)
        )
    assert report.model == "HP Color LaserJet Pro M252dw"
    assert [s.percent for s in report.supplies] == [63, 63, 88, 36]


@pytest.mark.parametrize(
    "credentials",
    [
        _v3("brother", auth_key="wrong-auth-key"),
        _v3("brother", user="nobody-here"),
    ],
    ids=["wrong-auth-key", "unknown-user"],
)
def test_v3_bad_credentials_raise_auth_error_fast(
    snmpsim: SnmpSimulator, credentials: UsmCredentials
) -> None:
    started = time.monotonic()
    with SnmpSession(timeout_s=1.0, retries=0) as session, pytest.raises(SnmpAuthError) as caught:
        session.get(SnmpTarget(snmpsim.host, credentials, snmpsim.port), [oids.SYS_DESCR])
    assert time.monotonic() - started < 1.0  # a report, not a timeout
    assert isinstance(caught.value, PermissionError)
    assert V3_AUTH_KEY not in str(caught.value) and "wrong-auth-key" not in str(caught.value)


def test_wrong_community_times_out(snmpsim: SnmpSimulator) -> None:
    with (
        SnmpSession(timeout_s=0.5, retries=0) as session,
        pytest.raises(SnmpTimeoutError) as caught,
    ):
        session.get(
            SnmpTarget(snmpsim.host, CommunityCredentials("no-such-recording"), snmpsim.port),
            [oids.SYS_DESCR],
        )
    assert isinstance(caught.value, TimeoutError)
    assert "community" in str(caught.value)
    assert "no-such-recording" not in str(caught.value)


def test_nothing_listening_times_out() -> None:
    target = SnmpTarget("127.0.0.1", CommunityCredentials("public"), free_udp_port())
    with SnmpSession(timeout_s=0.5, retries=0) as session, pytest.raises(SnmpTimeoutError):
        session.read_printer(target)


def test_missing_objects_are_left_out_on_every_version(snmpsim: SnmpSimulator) -> None:
    missing = (*oids.PRT_GENERAL_SERIAL_NUMBER, 1)
    with SnmpSession(timeout_s=1.0, retries=0) as session:
        for version in (SnmpVersion.V1, SnmpVersion.V2C):
            target = SnmpTarget(
                snmpsim.host, CommunityCredentials("brother", version), snmpsim.port
            )
            values = session.get(target, [oids.SYS_DESCR, missing, oids.SYS_OBJECT_ID])
            assert set(values) == {oids.SYS_DESCR, oids.SYS_OBJECT_ID}
            assert values[oids.SYS_OBJECT_ID] == (1, 3, 6, 1, 4, 1, 2435, 2, 3, 9, 1)

            async def one(client: SnmpClient, target: SnmpTarget = target) -> object:
                return await client.get_one(target, missing)

            with pytest.raises(SnmpNoSuchObjectError) as caught:
                session.run(one)
            assert isinstance(caught.value, LookupError)


def test_walk_stays_in_its_subtree_on_v1_and_v2c(snmpsim: SnmpSimulator) -> None:
    with SnmpSession(timeout_s=1.0, retries=0) as session:
        walks = [
            session.walk(
                SnmpTarget(snmpsim.host, CommunityCredentials("zebra", version), snmpsim.port),
                oids.IF_PHYS_ADDRESS,
            )
            for version in (SnmpVersion.V1, SnmpVersion.V2C)
        ]
    assert walks[0] == walks[1]
    assert sorted(walks[0]) == [(*oids.IF_PHYS_ADDRESS, i) for i in (1, 2, 3, 4)]
    assert walks[0][(*oids.IF_PHYS_ADDRESS, 3)] == bytes.fromhex("00074d6bc2a8")


def test_client_is_bound_to_its_first_loop(snmpsim: SnmpSimulator) -> None:
    client = SnmpClient(timeout_s=1.0, retries=0)
    target = SnmpTarget(snmpsim.host, CommunityCredentials("brother"), snmpsim.port)
    try:
        assert asyncio.run(client.get(target, [oids.SYS_DESCR]))
        with pytest.raises(RuntimeError, match="event loop"):
            asyncio.run(client.get(target, [oids.SYS_DESCR]))
    finally:
        client.close()


def test_many_printers_concurrently_with_bounded_requests(snmpsim: SnmpSimulator) -> None:
    names = ["brother", "jetdirect", "konica", "sharp_mxm266nv", "utax", "xerox", "epson"]

    async def run() -> list[str | None]:
        async with SnmpClient(timeout_s=1.0, retries=1, max_in_flight=4) as client:
            reports = await asyncio.gather(
                *(
                    read_printer(
                        client, SnmpTarget(snmpsim.host, CommunityCredentials(n), snmpsim.port)
                    )
                    for n in names
                )
            )
        return [r.model for r in reports]

    models = asyncio.run(run())
    assert models[0] == "Brother MFC-L2710DW"
    assert all(models)


def test_made_up_rows_error_bits_console_alerts(snmpsim: SnmpSimulator) -> None:
    with SnmpSession(timeout_s=1.0, retries=0) as session:
        report = session.read_printer(
            SnmpTarget(snmpsim.host, CommunityCredentials(FAULTS), snmpsim.port)
        )
    assert report.device_status is DeviceStatus.WARNING
    assert report.printer_status is PrinterStatus.OTHER
    assert report.errors == (
        PrinterError.NO_PAPER,
        PrinterError.DOOR_OPEN,
        PrinterError.JAMMED,
        PrinterError.INPUT_TRAY_EMPTY,
    )
    assert report.error_words == ("Out of paper", "Door open", "Paper jam", "Paper tray empty")
    assert report.problem == "Out of paper"
    assert report.status_words == "Out of paper"
    assert report.console_lines == ("Load Tray 2", "Bac vidé")
    assert report.location == "Büro 2. Stock"
    assert [(a.severity, a.code, a.words) for a in report.alerts] == [
        ("critical", 8, "13.1.1 Jam in Tray 2"),
        ("warning", 1104, "Toner low"),
    ]
    assert [s.colour for s in report.supplies] == ["black", "cyan", "magenta", "yellow"]


def test_session_close_is_idempotent_and_final() -> None:
    session = SnmpSession()
    session.close()
    session.close()
    with pytest.raises(RuntimeError, match="closed"):
        session.get(SnmpTarget("127.0.0.1", CommunityCredentials("x")), [oids.SYS_DESCR])


def test_errors_share_one_root() -> None:
    for error in (SnmpAuthError, SnmpTimeoutError, SnmpNoSuchObjectError):
        assert issubclass(error, SnmpError)
