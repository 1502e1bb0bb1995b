"""Building readers by name, and the contract: one badge, one credential, whatever the reader."""

from collections.abc import Callable, Iterator

import pytest
from evdev import ecodes

from hardware.readers import (
    READER_KINDS,
    CardReader,
    Credential,
    ReaderDisconnectedError,
    ReaderFormat,
    SimulatedCardReader,
    h10301,
    mifare_uid,
    reader_from_config,
)
from hardware.readers.bridge import BridgeCardReader
from hardware.readers.bridge_sim import SimulatedBridge
from hardware.readers.serial_reader import SerialCardReader
from hardware.readers.wedge import WedgeCardReader
from tests.hardware.test_reader_wedge import now_s, typed
from tests.support.evdev_fakes import FakeInputDevice


def test_unknown_kind_names_the_choices() -> None:
    with pytest.raises(ValueError, match="simulated, wedge, serial, bridge, pcsc"):
        reader_from_config("pcsc-typo", {})
    assert READER_KINDS == ("simulated", "wedge", "serial", "bridge", "pcsc")


def test_simulated_is_built_only_by_name() -> None:
    assert isinstance(reader_from_config("simulated", {}), SimulatedCardReader)


def test_serial_reader_from_options() -> None:
    reader = reader_from_config(
        "serial",
        {"port": "loop://", "baudrate": 19200, "technology": "mifare", "encoding": "hex"},
    )
    assert isinstance(reader, SerialCardReader)
    assert reader.fmt == ReaderFormat(technology="mifare", encoding="hex")
    reader.link.port(0).write(b"04A1B2C3\n")
    assert reader.read(timeout_s=1) == mifare_uid(bytes.fromhex("04a1b2c3"))
    reader.close()


def test_bridge_reader_from_options() -> None:
    sim = SimulatedBridge()
    reader = reader_from_config("bridge", {"port": sim.port_path, "handshake_timeout_s": 2})
    assert isinstance(reader, BridgeCardReader)
    reader.read(timeout_s=0.05)
    assert reader.ready
    reader.close()
    sim.close()


def test_wedge_reader_not_plugged_in_is_built_and_reports_on_read() -> None:
    reader = reader_from_config(
        "wedge", {"device": "No Such Reader", "gap_ms": 100, "reopen_max_s": 1}
    )
    assert isinstance(reader, WedgeCardReader)
    with pytest.raises(ReaderDisconnectedError):
        reader.read(timeout_s=0.01)
    reader.close()


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("wedge", {"device": "/dev/input/event2"}, "eventN"),
        ("wedge", {}, "needs the option 'device'"),
        ("wedge", {"device": "x", "gap_ms": 5}, "gap_ms"),
        ("serial", {"port": "loop://", "baud": 9600}, "unknown option.*baud"),
        ("serial", {"port": "loop://", "baudrate": "fast"}, "'baudrate' must be a int"),
        ("serial", {"port": "loop://", "baudrate": True}, "'baudrate' must be a int"),
        ("serial", {"port": "loop://", "encoding": "base64"}, "encoding"),
        ("serial", {"port": "loop://", "reversed_bytes": 1}, "must be a bool"),
        ("bridge", {"port": "loop://", "technology": "mifare"}, "unknown option"),
        ("bridge", {"port": "loop://", "reopen_max_s": 0}, "reopen_max_s"),
        ("simulated", {"port": "x"}, "unknown option"),
    ],
)
def test_bad_options_are_refused(kind: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        reader_from_config(kind, options)


# ---- the contract: every reader type, through its simulated device, gives the same credential ----


_SIMULATED_BRIDGES: list[SimulatedBridge] = []


@pytest.fixture(autouse=True)
def _close_simulated_bridges() -> Iterator[None]:
    yield
    while _SIMULATED_BRIDGES:
        _SIMULATED_BRIDGES.pop().close()


def via_simulated(badge: Credential) -> CardReader:
    reader = SimulatedCardReader()
    reader.present(badge)
    return reader


def via_wedge_facility_number(badge: Credential) -> CardReader:
    device = FakeInputDevice()
    reader = WedgeCardReader(
        "RFIDeas USB Keyboard",
        ReaderFormat(encoding="facility:number"),
        opener=lambda: device,
    )
    device.send(typed("90:324", start_s=now_s(), enter=ecodes.KEY_KPENTER))
    return reader


def via_serial_hex_without_parity(badge: Credential) -> CardReader:
    reader = SerialCardReader("loop://", fmt=ReaderFormat(encoding="hex", parity="stripped"))
    reader.link.port(0).write(b"5A0144\r\n")  # facility 90 = 0x5A, card 324 = 0x0144
    return reader


def via_bridge(badge: Credential) -> CardReader:
    sim = SimulatedBridge()
    _SIMULATED_BRIDGES.append(sim)
    reader = BridgeCardReader(sim.port_path, handshake_timeout_s=2)
    reader.read(timeout_s=0.05)  # handshake, so the port is open before the tap
    sim.present(badge)
    return reader


@pytest.mark.parametrize(
    "reader_for",
    [via_simulated, via_wedge_facility_number, via_serial_hex_without_parity, via_bridge],
)
def test_one_badge_one_credential_on_every_reader(
    reader_for: Callable[[Credential], CardReader],
) -> None:
    badge = h10301(90, 324)
    reader = reader_for(badge)
    try:
        credential = reader.read(timeout_s=2)
    finally:
        reader.close()
    assert credential == badge
    assert credential is not None and credential.canonical() == "h10301/26/" + badge.raw.hex()
