"""The reader-bridge protocol: codec properties, and the host reader against a simulated bridge."""

import contextlib
import logging
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.readers import bridge_protocol as bp
from hardware.readers.bridge import BridgeCardReader
from hardware.readers.bridge_sim import SimulatedBridge
from hardware.readers.errors import (
    BridgeProtocolError,
    BridgeVersionError,
    CardFormatError,
    CardUnreadableError,
    ReaderDisconnectedError,
)
from hardware.readers.formats import corp1000, h10301, iclass_csn, mifare_uid

PROPERTY = settings(max_examples=150, deadline=None)
UID = mifare_uid(bytes.fromhex("04a1b2c3d4e5f6"))

# ---- codec ----


def test_crc8_is_crc8_smbus() -> None:
    assert bp.crc8(b"123456789") == 0xF4
    assert bp.crc8(b"") == 0


def test_a_card_line_reads_as_documented() -> None:
    line = bp.encode_line(bp.Card("mifare", 32, bytes.fromhex("04a1b2c3")))
    body = b"PP1 CARD mifare 32 04a1b2c3"
    assert line == body + b" *" + f"{bp.crc8(body):02X}".encode()
    assert bp.decode_line(line).to_credential() == mifare_uid(bytes.fromhex("04a1b2c3"))


def test_card_repr_hides_the_bits() -> None:
    assert "04a1" not in repr(bp.Card("mifare", 32, bytes.fromhex("04a1b2c3")))


tokens = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/,-",
    min_size=1,
    max_size=32,
)


@st.composite
def cards(draw: st.DrawFn) -> bp.Card:
    technology = draw(st.sampled_from(bp.CARD_TECHNOLOGIES))
    bit_length = draw(st.integers(1, 128))
    raw = draw(st.integers(0, (1 << bit_length) - 1)).to_bytes((bit_length + 7) // 8, "big")
    return bp.Card(technology, bit_length, raw)


messages = st.one_of(
    st.builds(bp.Hello, st.lists(st.integers(1, 9999), min_size=1, max_size=3).map(tuple)),
    st.builds(bp.Ready, st.integers(1, 9999), tokens),
    cards(),
    st.builds(bp.Led, st.sampled_from(bp.LED_COLORS), st.integers(0, 60_000)),
    st.builds(bp.Beep, st.integers(100, 10_000), st.integers(1, 5_000)),
    st.builds(bp.Ping, st.integers(0, 0xFFFF)),
    st.builds(bp.Pong, st.integers(0, 0xFFFF)),
    st.builds(bp.Error, tokens),
)


@given(messages)
@PROPERTY
def test_every_message_round_trips(message: bp.BridgeMessage) -> None:
    line = bp.encode_line(message)
    assert len(line) <= bp.MAX_LINE_BYTES
    assert bp.decode_line(line) == message


@given(messages, st.data())
@PROPERTY
def test_any_corrupted_byte_is_caught(message: bp.BridgeMessage, data: st.DataObject) -> None:
    line = bytearray(bp.encode_line(message))
    index = data.draw(st.integers(0, len(line) - 1))
    line[index] = data.draw(st.integers(0, 255).filter(lambda b: b != line[index]))
    with pytest.raises(BridgeProtocolError):
        bp.decode_line(bytes(line))


@given(st.binary(max_size=120))
@PROPERTY
def test_garbage_never_crashes_the_decoder(line: bytes) -> None:
    with contextlib.suppress(BridgeProtocolError):
        bp.decode_line(line)


@given(
    st.lists(
        st.sampled_from(
            [b"PP1 ", b"CARD ", b"mifare ", b"32 ", b"04a1b2c3", b" *", b"1F", b"PP2", b",", b"0"]
        ),
        max_size=10,
    )
)
@PROPERTY
def test_near_miss_lines_never_crash_the_decoder(parts: list[bytes]) -> None:
    body = b"".join(parts)
    for line in (body, body + b" *" + f"{bp.crc8(body):02X}".encode()):
        with contextlib.suppress(BridgeProtocolError):
            bp.decode_line(line)


def test_other_versions_are_refused() -> None:
    line = bp.encode_line(bp.Ready(2, "fw"), version=2)
    with pytest.raises(BridgeVersionError):
        bp.decode_line(line)
    assert bp.decode_line(line, versions=(2,)) == bp.Ready(2, "fw")


@pytest.mark.parametrize(
    "body",
    [
        b"PP1 CARD mifare 32 04a1b2",  # too few bytes for the bit length
        b"PP1 CARD em4100 40 0102030405",  # unknown technology
        b"PP1 CARD h10301 26 ffffffff",  # bits above the length
        b"PP1 LED purple 0",
        b"PP1 BEEP 50 100",  # below 100 Hz
        b"PP1 PING 007",  # leading zeros: one spelling per number
        b"PP1 PING",
        b"PP1 JUMP 1",
        b"pp1 PING 1",
        b"PP1  PING 1",
        b"PP1 PING 1\r",
    ],
)
def test_malformed_lines_with_good_checksums_are_refused(body: bytes) -> None:
    with pytest.raises(BridgeProtocolError):
        bp.decode_line(body + b" *" + f"{bp.crc8(body):02X}".encode())


def test_card_credentials_get_the_formats_checks() -> None:
    for credential in (h10301(90, 324), corp1000(1, 2), UID, iclass_csn(bytes(range(7)) + b"\xe0")):
        card = bp.Card(credential.technology, credential.bit_length, credential.raw)
        assert card.to_credential() == credential
    with pytest.raises(CardFormatError, match="random UID"):
        bp.Card("mifare", 32, bytes.fromhex("08a1b2c3")).to_credential()
    bits = int.from_bytes(h10301(90, 324).raw, "big") ^ 2
    with pytest.raises(CardFormatError, match="parity"):
        bp.Card("h10301", 26, bits.to_bytes(4, "big")).to_credential()
    with pytest.raises(CardFormatError, match="bit length"):
        bp.Card("mifare", 40, bytes.fromhex("04a1b2c3")).to_credential()


def test_encoding_refuses_what_it_could_not_decode() -> None:
    with pytest.raises(BridgeProtocolError):
        bp.encode_line(bp.Led("purple"))
    with pytest.raises(BridgeProtocolError):
        bp.encode_line(bp.Error("two words"))


# ---- the host reader against a simulated bridge on a pty ----


@pytest.fixture
def bridge() -> SimulatedBridge:
    sim = SimulatedBridge()
    yield sim
    sim.close()


def test_handshake_then_cards(bridge: SimulatedBridge) -> None:
    reader = BridgeCardReader(bridge.port_path, handshake_timeout_s=2)
    assert reader.read(timeout_s=0.05) is None  # performs the handshake
    assert reader.ready and reader.firmware == "pullprint-bridge-sim/1"
    assert bridge.hellos == 1 and bridge.commands == [bp.Hello((1,))]
    bridge.present(UID)
    bridge.present(h10301(90, 324))
    assert reader.read(timeout_s=2) == UID
    assert reader.read(timeout_s=2) == h10301(90, 324)
    reader.close()


def test_led_beep_and_ping_reach_the_bridge(bridge: SimulatedBridge) -> None:
    reader = BridgeCardReader(bridge.port_path, handshake_timeout_s=2)
    reader.read(timeout_s=0.05)
    reader.set_led("green", 500)
    reader.beep(2000, 80)
    reader.read(timeout_s=0.2)
    assert bridge.commands[1:] == [bp.Led("green", 500), bp.Beep(2000, 80)]
    reader.close()


def test_damaged_card_lines_and_bad_cards_are_unreadable_taps_noise_is_not(
    bridge: SimulatedBridge, caplog: pytest.LogCaptureFixture
) -> None:
    reader = BridgeCardReader(bridge.port_path, handshake_timeout_s=2)
    reader.read(timeout_s=0.05)
    good = bp.encode_line(bp.Card("mifare", 56, UID.raw))
    corrupted = good.replace(b"04a1", b"04a2")  # the checksum no longer matches
    random_uid = bp.encode_line(bp.Card("mifare", 32, bytes.fromhex("08a1b2c3")))
    bad_parity = int.from_bytes(h10301(90, 324).raw, "big") ^ 2
    wiegand = bp.encode_line(bp.Card("h10301", 26, bad_parity.to_bytes(4, "big")))
    pong = bp.encode_line(bp.Pong(7)).replace(b"7", b"8")  # damaged, but not a tap
    bridge.send_raw(b"\x00\xff noise\r\n" + pong + b"\n" + corrupted + b"\n")
    bridge.send_raw(random_uid + b"\n" + wiegand + b"\n")
    bridge.send(bp.Error("checksum"))
    bridge.present(UID)
    reasons = []
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            with pytest.raises(CardUnreadableError) as caught:
                reader.read(timeout_s=2)
            reasons.append(caught.value.reason)
            assert "a1b2" not in str(caught.value) and "08a1" not in str(caught.value)
        assert reader.read(timeout_s=2) == UID  # nothing after the bad taps was lost
    assert reasons == ["garbled", "unsupported", "parity"]
    assert "a1b2" not in caplog.text and "04a2" not in caplog.text
    assert "random UID" in caplog.text
    reader.close()


def test_a_bridge_of_another_version_is_refused() -> None:
    sim = SimulatedBridge(ready_version=2)
    reader = BridgeCardReader(sim.port_path, handshake_timeout_s=2)
    with pytest.raises(BridgeVersionError):
        reader.read(timeout_s=0.5)
    assert not reader.ready
    reader.close()
    sim.close()


def test_a_silent_bridge_fails_the_handshake() -> None:
    sim = SimulatedBridge(answer_hello=False)
    reader = BridgeCardReader(sim.port_path, handshake_timeout_s=0.1)
    with pytest.raises(BridgeProtocolError, match="handshake"):
        reader.read(timeout_s=0.5)
    with pytest.raises(ReaderDisconnectedError):
        reader.set_led("red")
    reader.close()
    sim.close()


def test_unplugged_bridge_is_reported() -> None:
    sim = SimulatedBridge()
    reader = BridgeCardReader(sim.port_path, handshake_timeout_s=2, reopen_min_s=0.01)
    reader.read(timeout_s=0.05)
    assert reader.ready
    sim.unplug()
    with pytest.raises(ReaderDisconnectedError):  # noqa: PT012  (the failure ends the loop)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            reader.read(timeout_s=0.1)
    assert not reader.ready
    reader.close()
