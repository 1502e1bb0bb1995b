"""The station's bridge reader (pyserial, a pty) against the firmware's own code on the far end."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from hardware.readers.bridge import BridgeCardReader
from hardware.readers.formats import mifare_uid
from tests.support.firmware_fakes import FirmwareOnPty

UID7 = bytes.fromhex("04A1B2C3D4E5F6")
UID4 = bytes.fromhex("1A2B3C4D")


@pytest.fixture
def firmware() -> Iterator[FirmwareOnPty]:
    board = FirmwareOnPty()
    yield board
    board.close()


def test_handshake_taps_led_beep_and_ping_end_to_end(firmware: FirmwareOnPty) -> None:
    reader = BridgeCardReader(firmware.port_path, handshake_timeout_s=2)
    try:
        assert reader.read(timeout_s=0.3) is None  # opens the port and shakes hands
        assert reader.ready and reader.firmware == "pullprint-bridge/1.0"
        firmware.chip.present(UID7)
        assert reader.read(timeout_s=3) == mifare_uid(UID7)
        assert reader.read(timeout_s=0.3) is None  # still on the reader: no second tap
        firmware.chip.present(UID4)
        assert reader.read(timeout_s=3) == mifare_uid(UID4)

        reader.set_led("green", 80)
        reader.beep(3000, 40)
        assert reader.read(timeout_s=0.4) is None  # let the firmware loop run the timers
        assert firmware.light.colors[:2] == ["green", "off"]
        assert firmware.beeper.tones[:2] == [3000, 0]

        answered: list[bool] = []
        import threading

        pinger = threading.Thread(target=lambda: answered.append(reader.ping(99, timeout_s=2)))
        pinger.start()
        deadline = time.monotonic() + 3
        while pinger.is_alive() and time.monotonic() < deadline:
            reader.read(timeout_s=0.1)  # PONGs are taken by the reading thread
        pinger.join(timeout=1)
        assert answered == [True]
    finally:
        reader.close()


def test_a_pn532_bridge_gives_the_station_the_same_credential_as_an_mfrc522() -> None:
    # The same two cards through each board: firmware (its own board config and driver, on a
    # fake chip) -> PP1 over a pty -> the station's BridgeCardReader -> credential and tag.
    from station.credentials import credential_tag

    site_key = bytes(range(32))
    seen: dict[str, list[tuple[str, str]]] = {}
    for board in ("mfrc522", "pn532-i2c", "pn532-spi"):
        firmware = FirmwareOnPty(board=board)
        reader = BridgeCardReader(firmware.port_path, handshake_timeout_s=2)
        try:
            assert reader.read(timeout_s=0.3) is None  # handshake
            got = []
            for uid in (UID7, UID4):
                firmware.chip.present(uid)
                credential = reader.read(timeout_s=3)
                assert credential == mifare_uid(uid), board
                got.append((credential.canonical(), credential_tag(site_key, credential)))
            seen[board] = got
        finally:
            reader.close()
            firmware.close()
    assert seen["pn532-i2c"] == seen["mfrc522"] == seen["pn532-spi"]
    assert seen["mfrc522"][0][0] == "mifare/56/04a1b2c3d4e5f6"


def test_an_unsupported_card_on_a_pn532_is_an_unreadable_tap_at_the_station() -> None:
    # A random-UID card (first byte 0x08: a new UID on every tap) through the whole chain: the
    # bridge sends its CARD line as it is, the station refuses it as an unusable tap.
    from hardware.readers.errors import CardUnreadableError

    firmware = FirmwareOnPty(board="pn532-i2c")
    reader = BridgeCardReader(firmware.port_path, handshake_timeout_s=2)
    try:
        assert reader.read(timeout_s=0.3) is None
        firmware.chip.present(bytes.fromhex("08A1B2C3"))
        with pytest.raises(CardUnreadableError) as caught:
            reader.read(timeout_s=3)
        assert caught.value.reason == "unsupported" and "a1b2" not in str(caught.value).lower()
        firmware.chip.present(UID4)
        assert reader.read(timeout_s=3) == mifare_uid(UID4)
    finally:
        reader.close()
        firmware.close()
