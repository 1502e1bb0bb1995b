"""Running the reader-bridge firmware (hardware/firmware) under CPython.

`load_firmware()` puts a fake `machine` and `micropython` module in `sys.modules` and the firmware
folder on `sys.path`, so `import ppb_bridge` etc. import the very files that go onto the Pico.
`FakeMFRC522` plays the chip behind the fake SPI bus at register level (FIFO, interrupts, the
CRC coprocessor, Transceive) with an ISO 14443-A card in its field, so the firmware's own driver
runs its WUPA / anticollision / SELECT / HALT cascade against it.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "hardware" / "firmware"


def crc_a(data: bytes) -> bytes:
    """ISO/IEC 14443-3 CRC_A (initial 0x6363), low byte first."""
    crc = 0x6363
    for byte in data:
        b = byte ^ (crc & 0xFF)
        b = (b ^ (b << 4)) & 0xFF
        crc = (crc >> 8) ^ (b << 8) ^ (b << 3) ^ (b >> 4)
    return bytes((crc & 0xFF, crc >> 8))


class FakeMFRC522:
    """An MFRC522's registers and FIFO, and one card (or none) in its field."""

    COMMAND, COM_IRQ, DIV_IRQ, ERROR = 0x01, 0x04, 0x05, 0x06
    FIFO_DATA, FIFO_LEVEL, BIT_FRAMING = 0x09, 0x0A, 0x0D
    CRC_H, CRC_L, VERSION = 0x21, 0x22, 0x37

    def __init__(self) -> None:
        self.regs = [0] * 64
        self.regs[self.VERSION] = 0x92
        self.fifo: list[int] = []
        self.uid: bytes | None = None
        self.halted = False
        self.frames: list[bytes] = []  # every frame the reader sent to the card
        self._level = 0
        self._pending: int | None = None

    # the card

    def present(self, uid: bytes | None) -> None:
        """Put a card in the field (None: take it away); a new card is not halted."""
        self.uid = uid
        self.halted = False
        self._level = 0

    def _levels(self) -> list[bytes]:
        assert self.uid is not None
        if len(self.uid) == 4:
            return [self.uid]
        if len(self.uid) == 7:
            return [b"\x88" + self.uid[:3], self.uid[3:]]
        return [b"\x88" + self.uid[:3], b"\x88" + self.uid[3:6], self.uid[6:]]

    def _card(self, frame: bytes, last_bits: int) -> bytes | None:
        self.frames.append(frame)
        if self.uid is None:
            return None
        if last_bits == 7 and frame in (b"\x52", b"\x26"):  # WUPA, REQA
            if frame == b"\x26" and self.halted:
                return None
            self.halted = False
            return b"\x44\x00"
        if self.halted:
            return None
        levels = self._levels()
        if len(frame) == 2 and frame[1] == 0x20 and frame[0] in (0x93, 0x95, 0x97):
            part = levels[(frame[0] - 0x93) // 2]
            return part + bytes((part[0] ^ part[1] ^ part[2] ^ part[3],))
        if len(frame) == 9 and frame[1] == 0x70 and crc_a(frame[:7]) == frame[7:]:
            index = (frame[0] - 0x93) // 2
            part = levels[index]
            if frame[2:6] != part:
                return None
            sak = bytes((0x04 if index + 1 < len(levels) else 0x08,))
            return sak + crc_a(sak)
        if frame[:2] == b"\x50\x00" and crc_a(frame[:2]) == frame[2:]:
            self.halted = True
        return None

    # the bus

    def spi_write(self, data: bytes) -> None:
        if len(data) == 1 and data[0] & 0x80:
            self._pending = (data[0] >> 1) & 0x3F
            return
        assert len(data) == 2 and not data[0] & 0x80, "one register per transfer"
        self._write((data[0] >> 1) & 0x3F, data[1])

    def spi_read(self, size: int) -> bytes:
        assert size == 1 and self._pending is not None
        register, self._pending = self._pending, None
        if register == self.FIFO_LEVEL:
            return bytes((len(self.fifo),))
        if register == self.FIFO_DATA:
            return bytes((self.fifo.pop(0) if self.fifo else 0,))
        return bytes((self.regs[register],))

    def _write(self, register: int, value: int) -> None:
        if register == self.FIFO_DATA:
            self.fifo.append(value)
        elif register == self.FIFO_LEVEL:
            if value & 0x80:
                self.fifo.clear()
        elif register in (self.COM_IRQ, self.DIV_IRQ):
            if value & 0x80:
                self.regs[register] |= value & 0x7F
            else:
                self.regs[register] &= ~value & 0x7F
        elif register == self.COMMAND:
            self.regs[register] = value & 0x0F
            if value & 0x0F == 0x03:  # CalcCRC over the FIFO
                crc = crc_a(bytes(self.fifo))
                self.regs[self.CRC_L], self.regs[self.CRC_H] = crc[0], crc[1]
                self.regs[self.DIV_IRQ] |= 0x04
            elif value & 0x0F == 0x0F:  # SoftReset
                self.fifo.clear()
        elif register == self.BIT_FRAMING:
            self.regs[register] = value & 0x7F
            if value & 0x80 and self.regs[self.COMMAND] == 0x0C:  # StartSend in Transceive
                frame, self.fifo = bytes(self.fifo), []
                answer = self._card(frame, value & 0x07)
                self.regs[self.ERROR] = 0
                if answer is None:
                    self.regs[self.COM_IRQ] |= 0x01  # the timer ran out
                else:
                    self.fifo = list(answer)
                    self.regs[self.COM_IRQ] |= 0x30  # RxIRq, IdleIRq
        else:
            self.regs[register] = value


class _Pin:
    OUT = 1
    IN = 0

    def __init__(self, number: int, mode: int = -1, value: int | None = None) -> None:
        self.number = number
        self.mode = mode
        self.level = 0 if value is None else value

    def init(self, mode: int = -1, value: int | None = None) -> None:
        self.mode = mode
        if value is not None:
            self.level = value

    def value(self, level: int | None = None) -> int:
        if level is not None:
            self.level = int(bool(level))
        return self.level


class _SPI:
    def __init__(self, bus: int = 0, **settings: object) -> None:
        self.bus = bus
        self.settings = settings
        self.chip: FakeMFRC522 | None = None

    def write(self, data: bytes) -> None:
        assert self.chip is not None
        self.chip.spi_write(bytes(data))

    def read(self, size: int, write: int = 0) -> bytes:
        assert self.chip is not None
        return self.chip.spi_read(size)


class _PWM:
    def __init__(self, pin: _Pin) -> None:
        self.pin = pin
        self.frequency = 0
        self.duty = 0

    def freq(self, hz: int) -> None:
        self.frequency = hz

    def duty_u16(self, duty: int) -> None:
        self.duty = duty


def load_firmware() -> types.ModuleType:
    """Install the fake `machine` / `micropython` modules and make the firmware importable."""
    machine = sys.modules.get("machine")
    if machine is None or not getattr(machine, "IS_FAKE", False):
        machine = types.ModuleType("machine")
        machine.IS_FAKE = True  # type: ignore[attr-defined]
        machine.Pin = _Pin  # type: ignore[attr-defined]
        machine.SPI = _SPI  # type: ignore[attr-defined]
        machine.PWM = _PWM  # type: ignore[attr-defined]
        sys.modules["machine"] = machine
        micropython = types.ModuleType("micropython")
        micropython.kbd_intr = lambda _char: None  # type: ignore[attr-defined]
        sys.modules["micropython"] = micropython
    if str(FIRMWARE_DIR) not in sys.path:
        sys.path.append(str(FIRMWARE_DIR))
    return machine


def spi_with_chip(machine: types.ModuleType, chip: FakeMFRC522) -> object:
    """A fake SPI bus with `chip` on it."""
    spi = machine.SPI(0)
    spi.chip = chip
    return spi


class FirmwareOnPty:
    """The firmware's `Bridge` and MFRC522 driver (on a `FakeMFRC522`) behind a pty.

    The master end plays the Pico's USB CDC port: a thread runs the firmware's main loop (read
    what the host sent, `poll`, write the answers). `port_path` is the slave end, which the
    station opens like /dev/ttyACM0. `chip.present(uid)` taps a card; `light` and `beeper` record
    what the host asked for.
    """

    def __init__(self, loop_ms: int = 10) -> None:
        import os
        import threading
        import tty

        machine = load_firmware()
        import ppb_bridge
        import ppb_mfrc522

        class Light(ppb_bridge.Led):
            def __init__(self) -> None:
                self.colors: list[str] = []

            def set(self, color: str) -> None:
                self.colors.append(color)

        class Beeper(ppb_bridge.Buzzer):
            def __init__(self) -> None:
                self.tones: list[int] = []

            def tone(self, frequency_hz: int) -> None:
                self.tones.append(frequency_hz)

            def off(self) -> None:
                self.tones.append(0)

        self.chip = FakeMFRC522()
        driver = ppb_mfrc522.MFRC522(spi_with_chip(machine, self.chip), machine.Pin(17))
        self.light, self.beeper = Light(), Beeper()
        self.bridge = ppb_bridge.Bridge(driver, self.light, self.beeper)
        self._loop_s = loop_ms / 1000
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port_path = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="firmware-on-pty", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import os
        import select
        import time

        last = time.monotonic()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], self._loop_s)
            if ready:
                try:
                    data = os.read(self._master, 256)
                except OSError:
                    data = b""  # EIO while the host has the port closed
                if data:
                    self.bridge.feed(data)
            now = time.monotonic()
            self.bridge.poll(int((now - last) * 1000))
            last = now
            for line in self.bridge.take_output():
                os.write(self._master, line)

    def close(self) -> None:
        """Stop the firmware loop and close the pty."""
        import os

        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self._master)
        os.close(self._slave)
