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
