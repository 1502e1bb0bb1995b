"""The firmware's PN532 driver against a fake PN532 speaking real frames on a fake I2C or SPI bus.

The fake (tests/support/firmware_fakes.py) builds and checks its frames with its own code, written
from the PN532 User Manual, so a checksum or framing slip in the driver shows as a frame the fake
ignores (`bad_host_frames`) or a response the driver refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hardware.readers import bridge_protocol as host
from hardware.readers.formats import mifare_uid
from tests.support.firmware_fakes import (
    PN532_ACK,
    PN532_ERROR_FRAME,
    PN532_NACK,
    FakeMFRC522,
    FakePN532,
    load_firmware,
    pn532_frame,
    unwire,
    wire,
)

load_firmware()
import ppb_board  # noqa: E402  (after the fake machine module is installed)
import ppb_bridge  # noqa: E402
import ppb_pn532  # noqa: E402

UID4 = bytes.fromhex("1A2B3C4D")
UID7 = bytes.fromhex("04A1B2C3D4E5F6")


@pytest.fixture(autouse=True)
def _clean_buses() -> Iterator[None]:
    yield
    unwire()


@pytest.fixture(params=["i2c", "spi"])
def pn532(request: pytest.FixtureRequest) -> Iterator[tuple[ppb_pn532.PN532, FakePN532]]:
    chip = FakePN532()
    wiring = ppb_board.ReaderWiring("pn532", request.param)
    wire(request.param, 0, chip, cs=wiring.cs if request.param == "spi" else None)
    driver = ppb_board.open_reader(wiring)
    assert isinstance(driver, ppb_pn532.PN532)
    yield driver, chip
    assert chip.bad_host_frames == 0  # every frame the driver sent was well formed


# ---- frames ----


def test_frames_match_the_manual_and_an_independent_encoder() -> None:
    # GetFirmwareVersion as printed in the user manual: 00 00 FF 02 FE D4 02 2A 00.
    assert ppb_pn532.frame(b"\xd4\x02") == bytes.fromhex("0000FF02FED4022A00")
    for data in (b"\xd4\x14\x01\x14\x01", b"\xd4\x4a\x01\x00", bytes(range(0xD4, 0xFF))):
        assert ppb_pn532.frame(data) == pn532_frame(data[0], data[1:])
        assert ppb_pn532.parse_frame(pn532_frame(data[0], data[1:]) + bytes(9)) == data
    assert ppb_pn532.ACK == PN532_ACK and ppb_pn532.NACK == PN532_NACK
    assert ppb_pn532.parse_frame(PN532_ACK) == b""
    assert ppb_pn532.parse_frame(bytes.fromhex("0000FF02FED5032800")) == b"\xd5\x03"
    with pytest.raises(ValueError):
        ppb_pn532.frame(b"")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (PN532_NACK, "nack"),
        (PN532_ERROR_FRAME, "error-frame"),
        (bytes.fromhex("0000FFFFFF0002FFD5"), "extended"),
        # D5 03 framed is 00 00 FF 02 FE D5 03 28 00; each of these differs in one place.
        (bytes.fromhex("0000FF02FED5032900"), "checksum"),  # DCS off by one
        (bytes.fromhex("0000FF02FDD5032800"), "length-checksum"),
        (bytes.fromhex("0000FF02FED503"), "framing"),  # cut short
        (bytes.fromhex("FF02FED5032800"), "framing"),  # no preamble before the start code
        (bytes.fromhex("0000FF02FED5032801"), "framing"),  # no postamble
    ],
)
def test_bad_frames_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ppb_pn532.PN532Error) as caught:
        ppb_pn532.parse_frame(raw)
    assert caught.value.reason == reason
    assert isinstance(caught.value, OSError)  # the bridge counts it as "no card on this poll"


def test_bit_reversal_for_lsb_first_spi() -> None:
    assert ppb_pn532.reverse_bits(b"\x01\x02\x03\x80\xd4") == b"\x80\x40\xc0\x01\x2b"
    every = bytes(range(256))
    assert ppb_pn532.reverse_bits(ppb_pn532.reverse_bits(every)) == every


# ---- the driver on each bus ----


def test_start_detects_and_configures_the_chip(pn532: tuple[Any, FakePN532]) -> None:
    driver, chip = pn532
    assert driver.firmware == (0x32, 0x01, 0x06, 0x07)
    assert chip.commands == [0x02, 0x14, 0x32]  # GetFirmwareVersion, SAMConfiguration, RF
    assert chip.sam_configured and chip.passive_retries == 1


@pytest.mark.parametrize("uid", [UID4, UID7])
def test_uids_with_sens_res_and_sel_res(pn532: tuple[Any, FakePN532], uid: bytes) -> None:
    driver, chip = pn532
    assert driver.read_uid() is None  # no card: answered at once (bounded retries)
    chip.present(uid)
    target = driver.read_target()
    assert target is not None and target.uid == uid
    assert target.sens_res == (b"\x00\x04" if len(uid) == 4 else b"\x00\x44")
    assert target.sel_res == (0x08 if len(uid) == 4 else 0x00)
    assert driver.read_uid() == uid  # still there: read again, the bridge debounces
    chip.present(None)
    assert driver.read_uid() is None


def test_a_corrupted_response_is_asked_for_again_with_a_nack(pn532: tuple[Any, FakePN532]) -> None:
    driver, chip = pn532
    chip.present(UID7)
    chip.corrupt = 2
    assert driver.read_uid() == UID7
    assert chip.nacks_received == 2
    chip.corrupt = 3  # more than the driver's two NACKs: given up for this poll
    with pytest.raises(ppb_pn532.PN532Error, match="checksum"):
        driver.read_uid()
    assert driver.read_uid() == UID7  # the next poll is clean


def test_nack_error_frame_and_silence(pn532: tuple[Any, FakePN532]) -> None:
    driver, chip = pn532
    chip.present(UID4)
    chip.nack_next = True
    with pytest.raises(ppb_pn532.PN532Error, match="nack"):
        driver.read_uid()
    chip.error_next = True
    with pytest.raises(ppb_pn532.PN532Error, match="error-frame"):
        driver.read_uid()
    assert chip.aborts == 2  # each failed command aborted, so nothing stale is read next
    assert driver.read_uid() == UID4


def test_a_command_left_unanswered_is_aborted_with_an_ack(pn532: tuple[Any, FakePN532]) -> None:
    driver, chip = pn532
    chip.passive_retries = 0xFF  # as after a power glitch: InListPassiveTarget waits for ever
    driver.max_polls = 20
    with pytest.raises(ppb_pn532.PN532Error, match="timeout"):
        driver.read_uid()
    assert chip.aborts == 1
    chip.present(UID4)
    assert driver.read_uid() == UID4  # the late answer was dropped, not read as this one


def test_a_chip_missing_at_start_is_found_later() -> None:
    chip = FakePN532()
    chip.silent = True
    wire("i2c", 0, chip)
    driver = ppb_board.open_reader(ppb_board.ReaderWiring("pn532", "i2c"))
    assert driver.firmware is None  # no exception: the bridge still answers the station
    with pytest.raises(OSError):
        driver.read_uid()
    chip.silent = False
    chip.present(UID7)
    assert driver.read_uid() == UID7
    assert driver.firmware is not None


def test_nothing_on_the_bus_is_a_bus_error_not_a_crash() -> None:
    wire("i2c", 1, FakePN532())  # wired to another bus: nothing answers at 0x24 on bus 0
    driver = ppb_board.open_reader(ppb_board.ReaderWiring("pn532", "i2c"))
    with pytest.raises(OSError):
        driver.read_uid()


def test_board_wiring_is_checked() -> None:
    with pytest.raises(ValueError, match="MFRC522 is wired on SPI"):
        ppb_board.ReaderWiring("mfrc522", "i2c")
    with pytest.raises(ValueError, match="chip"):
        ppb_board.ReaderWiring("rc522", "spi")


def test_the_bridge_sends_the_same_card_line_for_either_chip() -> None:
    lines = {}
    for board, chip in (("spi", FakeMFRC522()), ("i2c", FakePN532())):
        name = "mfrc522" if board == "spi" else "pn532"
        wire(board, 0, chip)
        driver = ppb_board.open_reader(ppb_board.ReaderWiring(name, board))
        bridge = ppb_bridge.Bridge(driver, ppb_bridge.Led(), ppb_bridge.Buzzer())
        bridge.feed(host.encode_line(host.Hello((1,))) + b"\n")
        bridge.take_output()
        chip.present(UID7)
        for _ in range(4):
            bridge.poll(20)
        lines[name] = bridge.take_output()
    assert lines["pn532"] == lines["mfrc522"]
    (line,) = lines["pn532"]
    card = host.decode_line(line.rstrip(b"\n"))
    assert isinstance(card, host.Card)
    assert card.to_credential() == mifare_uid(UID7)
