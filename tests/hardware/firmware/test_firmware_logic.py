"""The reader-bridge firmware's own files, run under CPython with a fake `machine` module.

The protocol module is checked against the station's codec (both directions), the bridge state
machine line by line, and the MFRC522 driver against a register-level fake chip with 4-, 7- and
10-byte UIDs.
"""

from __future__ import annotations

import random

import pytest

from hardware.readers import bridge_protocol as host
from tests.support.firmware_fakes import FakeMFRC522, crc_a, load_firmware, spi_with_chip

machine = load_firmware()
import ppb_bridge  # noqa: E402  (after the fake machine module is installed)
import ppb_mfrc522  # noqa: E402
import ppb_protocol as fw  # noqa: E402

UID4 = bytes.fromhex("1A2B3C4D")
UID7 = bytes.fromhex("04A1B2C3D4E5F6")
UID10 = bytes.fromhex("04A1B2C3D4E5F6071829")


class Reader(ppb_bridge.CardSource):
    def __init__(self) -> None:
        self.uid: bytes | None = None
        self.fail = False

    def read_uid(self) -> bytes | None:
        if self.fail:
            raise OSError("SPI")
        return self.uid


class Light(ppb_bridge.Led):
    def __init__(self) -> None:
        self.colors: list[str] = []

    def set(self, color: str) -> None:
        self.colors.append(color)


class Beeper(ppb_bridge.Buzzer):
    def __init__(self) -> None:
        self.events: list[int] = []  # a frequency, or 0 for off

    def tone(self, frequency_hz: int) -> None:
        self.events.append(frequency_hz)

    def off(self) -> None:
        self.events.append(0)


def _bridge() -> tuple[ppb_bridge.Bridge, Reader, Light, Beeper]:
    reader, light, beeper = Reader(), Light(), Beeper()
    return ppb_bridge.Bridge(reader, light, beeper), reader, light, beeper


def _say(bridge: ppb_bridge.Bridge, message: host.BridgeMessage) -> list[host.BridgeMessage]:
    bridge.feed(host.encode_line(message) + b"\r\n")
    return [host.decode_line(line.rstrip(b"\n")) for line in bridge.take_output()]


# ---- the protocol module against the station's codec ----


def test_crc8_is_the_same_on_both_sides() -> None:
    rng = random.Random(7)
    for _ in range(300):
        data = rng.randbytes(rng.randrange(0, 90))
        assert fw.crc8(data) == host.crc8(data)
    assert fw.crc8(b"123456789") == 0xF4  # CRC-8/SMBUS check value


def test_firmware_lines_decode_on_the_host() -> None:
    assert host.decode_line(fw.card_line(UID7).rstrip(b"\n")) == host.Card("mifare", 56, UID7)
    assert host.decode_line(fw.encode("READY", ["1", "pullprint-bridge/1.0"])[:-1]) == host.Ready(
        1, "pullprint-bridge/1.0"
    )
    assert host.decode_line(fw.encode("ERR", ["checksum"])[:-1]) == host.Error("checksum")


def test_host_lines_decode_on_the_firmware() -> None:
    for message, expected in [
        (host.Hello((1, 2)), ("HELLO", ["1,2"])),
        (host.Led("amber", 250), ("LED", ["amber", "250"])),
        (host.Beep(2000, 100), ("BEEP", ["2000", "100"])),
        (host.Ping(65535), ("PING", ["65535"])),
    ]:
        assert fw.decode(host.encode_line(message)) == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"PP1 PING 5 *00", "checksum"),
        (b"PP1 PING 5", "checksum"),
        (b"PP1 PING 5 *3a", "checksum"),  # lower-case hex is not the one spelling
        (b"PP2 PING 5 *" + b"%02X" % host.crc8(b"PP2 PING 5"), "version"),
        (b"XX1 PING 5 *" + b"%02X" % host.crc8(b"XX1 PING 5"), "syntax"),
        (b"PP1 PING \xff *00", "syntax"),
        (b"P" * 97, "length"),
    ],
)
def test_bad_host_lines_are_refused_with_a_reason(line: bytes, reason: str) -> None:
    with pytest.raises(fw.ProtocolError) as caught:
        fw.decode(line)
    assert caught.value.reason == reason


# ---- the bridge state machine ----


def test_handshake_then_cards_once_per_tap() -> None:
    bridge, reader, _, _ = _bridge()
    reader.uid = UID7
    bridge.poll(20)
    assert bridge.take_output() == []  # before HELLO the host may not be listening
    assert _say(bridge, host.Hello((1,))) == [host.Ready(1, ppb_bridge.FIRMWARE_ID)]
    bridge.poll(20)
    assert bridge.take_output() == []  # the card seen before HELLO is not sent late
    reader.uid = None
    for _ in range(3):
        bridge.poll(20)
    reader.uid = UID7
    for _ in range(5):
        bridge.poll(20)
    lines = bridge.take_output()
    assert [host.decode_line(x[:-1]) for x in lines] == [host.Card("mifare", 56, UID7)]


def test_a_card_missed_for_a_poll_or_two_is_not_a_second_tap() -> None:
    bridge, reader, _, _ = _bridge()
    _say(bridge, host.Hello((1,)))
    for uid in (UID4, None, None, UID4, None, UID4, UID4):
        reader.uid = uid
        bridge.poll(20)
    assert len(bridge.take_output()) == 1
    reader.uid = UID7  # another card at once: sent at once
    bridge.poll(20)
    assert [host.decode_line(x[:-1]) for x in bridge.take_output()] == [
        host.Card("mifare", 56, UID7)
    ]
    reader.fail = True  # a bus error counts as "no card", never as a crash
    bridge.poll(20)
    assert bridge.take_output() == []


def test_hello_without_our_version_is_refused() -> None:
    bridge, _, _, _ = _bridge()
    assert _say(bridge, host.Hello((2, 3))) == [host.Error("version")]
    assert not bridge.ready


def test_led_and_beep_run_for_their_duration() -> None:
    bridge, _, light, beeper = _bridge()
    _say(bridge, host.Hello((1,)))
    assert _say(bridge, host.Led("green", 100)) == []
    assert _say(bridge, host.Beep(2500, 60)) == []
    assert light.colors == ["green"] and beeper.events == [2500]
    bridge.poll(50)
    assert light.colors == ["green"] and beeper.events == [2500]
    bridge.poll(20)
    assert beeper.events == [2500, 0]
    bridge.poll(40)
    assert light.colors == ["green", "off"]
    _say(bridge, host.Led("red", 0))  # 0 ms: until changed
    bridge.poll(60_000)
    assert light.colors[-1] == "red"


def test_ping_pong_and_errors_for_bad_lines() -> None:
    bridge, _, light, _ = _bridge()
    assert _say(bridge, host.Ping(4242)) == [host.Pong(4242)]
    body = b"PP1 LED purple 0"
    bridge.feed(body + b" *" + b"%02X" % host.crc8(body) + b"\n")
    bridge.feed(b"PP1 LED red 0 *00\n")
    body = b"PP1 FLASH 1"
    bridge.feed(body + b" *" + b"%02X" % host.crc8(body) + b"\n")
    bridge.feed(b"A" * 300 + b"\n")
    body = b"PP1 BEEP 50 10"
    bridge.feed(body + b" *" + b"%02X" % host.crc8(body) + b"\n")
    answers = [host.decode_line(x[:-1]) for x in bridge.take_output()]
    assert answers == [
        host.Error("range"),
        host.Error("checksum"),
        host.Error("verb"),
        host.Error("length"),
        host.Error("range"),
    ]
    assert light.colors == []  # nothing half-applied
    # Bytes split anywhere still make whole lines.
    line = host.encode_line(host.Ping(7)) + b"\n"
    for byte in line:
        bridge.feed(bytes((byte,)))
    assert [host.decode_line(x[:-1]) for x in bridge.take_output()] == [host.Pong(7)]


# ---- the MFRC522 driver against a fake chip ----


def _driver() -> tuple[ppb_mfrc522.MFRC522, FakeMFRC522]:
    chip = FakeMFRC522()
    driver = ppb_mfrc522.MFRC522(
        spi_with_chip(machine, chip), machine.Pin(17), rst=machine.Pin(20), max_polls=5
    )
    return driver, chip


def test_crc_a_matches_the_standard_example() -> None:
    driver, _ = _driver()
    # ISO/IEC 14443-3 Annex B: CRC_A of 00 00 is 0x1EA0, sent low byte first; the catalogue
    # check value of CRC-16/ISO-IEC-14443-3-A over "123456789" is 0xBF05.
    assert crc_a(b"\x00\x00") == bytes.fromhex("A01E")
    assert crc_a(b"123456789") == bytes.fromhex("05BF")
    assert driver.crc_a(b"\x00\x00") == bytes.fromhex("A01E")
    assert driver.version() == 0x92


@pytest.mark.parametrize("uid", [UID4, UID7, UID10])
def test_the_driver_reads_whole_uids_through_the_cascade(uid: bytes) -> None:
    driver, chip = _driver()
    assert driver.read_uid() is None
    chip.present(uid)
    assert driver.read_uid() == uid
    assert chip.halted  # HALT sent after reading
    assert chip.frames[-1][:2] == b"\x50\x00"
    assert driver.read_uid() == uid  # WUPA wakes a halted card that is still there
    chip.present(None)
    assert driver.read_uid() is None


def test_the_firmware_bridge_on_the_real_driver() -> None:
    driver, chip = _driver()
    bridge = ppb_bridge.Bridge(driver, Light(), Beeper())
    _say(bridge, host.Hello((1,)))
    chip.present(UID7)
    for _ in range(4):
        bridge.poll(20)  # the card stays: one CARD line
    lines = [host.decode_line(x[:-1]) for x in bridge.take_output()]
    assert lines == [host.Card("mifare", 56, UID7)]
    assert lines[0].to_credential().canonical() == "mifare/56/04a1b2c3d4e5f6"
