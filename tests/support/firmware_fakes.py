"""Running the reader-bridge firmware (hardware/firmware) under CPython.

`load_firmware()` puts a fake `machine` and `micropython` module in `sys.modules` and the firmware
folder on `sys.path`, so `import ppb_bridge` etc. import the very files that go onto the Pico.
`FakeMFRC522` plays the chip behind the fake SPI bus at register level (FIFO, interrupts, the
CRC coprocessor, Transceive) with an ISO 14443-A card in its field, so the firmware's own driver
runs its WUPA / anticollision / SELECT / HALT cascade against it. `FakePN532` plays a PN532 at
its host interface (frames in; ACK and response frames out, with the I2C status byte or the SPI
prefix bytes, LSB first on SPI) with injectable faults, written from the PN532 User Manual
independently of the firmware's own frame code.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


# ---- PN532 (NXP UM0701-02, 6.2) ----

PN532_ACK = bytes.fromhex("0000FF00FF00")
PN532_NACK = bytes.fromhex("0000FFFF0000")
PN532_ERROR_FRAME = bytes.fromhex("0000FF01FF7F8100")


def pn532_frame(tfi: int, payload: bytes) -> bytes:
    """A normal information frame: preamble, start code, LEN, LCS, TFI, data, DCS, postamble."""
    body = bytes((tfi,)) + payload
    length = len(body)
    lcs = (0x100 - length) % 0x100
    dcs = (0x100 - sum(body) % 0x100) % 0x100
    return b"\x00\x00\xff" + bytes((length, lcs)) + body + bytes((dcs, 0x00))


def _bit_reversed(data: bytes) -> bytes:
    return bytes(int(f"{byte:08b}"[::-1], 2) for byte in data)


class FakePN532:
    """A PN532 (IC 0x32, firmware 1.6) behind I2C (address 0x24) or SPI, one card in its field.

    Like the chip: a command frame is acknowledged (ACK), then answered after a few status polls;
    a host NACK gets the last response again, a host ACK aborts the command in progress; a bad
    host frame is ignored; InListPassiveTarget before SAMConfiguration gets the error frame, and
    without a card it is not answered at all until RFConfiguration bounded its retries.

    Faults, each for the next responses: `corrupt` (so many responses with a wrong DCS),
    `nack_next` (a NACK instead of the ACK), `error_next` (the error frame instead of the answer),
    `silent` (no answer at all: a chip that is not there).
    """

    i2c_address = 0x24

    def __init__(self, busy_polls: int = 2) -> None:
        self.busy_polls = busy_polls
        self.uid: bytes | None = None
        self.sens_res = b"\x00\x04"
        self.sel_res = 0x08
        self.sam_configured = False
        self.passive_retries = 0xFF  # the chip's default: retry for ever
        self.commands: list[int] = []  # every command code received, in order
        self.bad_host_frames = 0
        self.nacks_received = 0
        self.aborts = 0
        self.corrupt = 0
        self.nack_next = False
        self.error_next = False
        self.silent = False
        self._out: list[bytes] = []  # frames for the host, in order
        self._busy = 0
        self._last_response: bytes | None = None
        # SPI: the transfer in progress while chip select is low.
        self._selected = False
        self._spi_op: int | None = None
        self._spi_in = bytearray()

    def present(self, uid: bytes | None) -> None:
        """Put a card in the field (None: take it away), with the SENS_RES and SEL_RES it has."""
        self.uid = uid
        if uid is not None:
            # SENS_RES (ATQA) bits 7-6: UID size single / double / triple; SAK 08 MIFARE Classic.
            self.sens_res = bytes((0x00, {4: 0x04, 7: 0x44, 10: 0x84}[len(uid)]))
            self.sel_res = 0x08 if len(uid) == 4 else 0x00

    # the host interface

    def host_write(self, data: bytes) -> None:
        """A frame written by the host."""
        self._busy = self.busy_polls
        if self.silent:
            return
        if data == PN532_ACK:
            self.aborts += 1
            self._out.clear()
            return
        if data == PN532_NACK:
            self.nacks_received += 1
            if self._last_response is not None:
                self._send(self._last_response)
            return
        body = self._check_host_frame(data)
        if body is None:
            self.bad_host_frames += 1  # the chip ignores it: no ACK
            return
        if self.nack_next:
            self.nack_next = False
            self._out.append(PN532_NACK)
            return
        self._out.append(PN532_ACK)
        code, params = body[1], body[2:]
        self.commands.append(code)
        answer = self._execute(code, params)
        if answer is None:
            return
        response = pn532_frame(0xD5, bytes((code + 1,)) + answer)
        if self.error_next or answer == b"\x7f":
            self.error_next = False
            response = PN532_ERROR_FRAME
        self._last_response = response
        self._send(response)

    def _send(self, response: bytes) -> None:
        if self.corrupt:  # noise on the bus: the DCS no longer adds up
            self.corrupt -= 1
            response = response[:-2] + bytes(((response[-2] + 1) % 256, 0))
        self._out.append(response)

    def _check_host_frame(self, data: bytes) -> bytes | None:
        if len(data) < 8 or data[:3] != b"\x00\x00\xff":
            return None
        length, lcs = data[3], data[4]
        body = data[5 : 5 + length]
        if (length + lcs) % 256 or len(data) != length + 7 or data[-1] != 0:
            return None
        if (sum(body) + data[5 + length]) % 256 or length < 2 or body[0] != 0xD4:
            return None
        return body

    def _execute(self, code: int, params: bytes) -> bytes | None:
        if code == 0x02:  # GetFirmwareVersion: IC, Ver, Rev, Support
            return bytes((0x32, 0x01, 0x06, 0x07))
        if code == 0x14:  # SAMConfiguration
            self.sam_configured = params[:1] == b"\x01"
            return b""
        if code == 0x32 and params[:1] == b"\x05" and len(params) == 4:  # RF: MaxRetries
            self.passive_retries = params[3]
            return b""
        if code == 0x4A and self.sam_configured and params == b"\x01\x00":
            if self.uid is None:
                return None if self.passive_retries == 0xFF else b"\x00"
            uid = self.uid
            return b"\x01\x01" + self.sens_res + bytes((self.sel_res, len(uid))) + uid
        return b"\x7f"  # anything else: a syntax error at application level

    def status(self) -> bool:
        """The ready bit: a frame is waiting and the chip has finished working on it."""
        if not self._out:
            return False
        if self._busy > 0:
            self._busy -= 1
            return False
        return True

    def take(self, count: int) -> bytes:
        """`count` bytes of the next frame (zeros past its end)."""
        frame = self._out.pop(0)
        self._busy = self.busy_polls
        return (frame + bytes(count))[:count]

    # I2C: every read starts with the status byte; a frame is read only when it is ready.

    def i2c_write(self, data: bytes) -> None:
        self.host_write(data)

    def i2c_read(self, count: int) -> bytes:
        if not self.status():
            return bytes(count)
        return b"\x01" + (self.take(count - 1) if count > 1 else b"")

    # SPI: LSB first on the wire, a prefix byte per transfer, framed by chip select.

    def chip_select(self, level: int) -> None:
        if level == 0:
            self._selected, self._spi_op, self._spi_in = True, None, bytearray()
            return
        if self._selected and self._spi_op == 0x01:
            self.host_write(bytes(self._spi_in))
        self._selected = False

    def spi_write(self, data: bytes) -> None:
        assert self._selected, "SPI transfer without chip select"
        data = _bit_reversed(data)
        if self._spi_op is None:
            self._spi_op, data = data[0], data[1:]
        if self._spi_op == 0x01:
            self._spi_in.extend(data)

    def spi_read(self, count: int) -> bytes:
        assert self._selected, "SPI transfer without chip select"
        if self._spi_op == 0x02:
            answer = bytes((0x01 if self.status() else 0x00,)) + bytes(count - 1)
        elif self._spi_op == 0x03 and self.status():
            answer = self.take(count)
        else:
            answer = bytes(count)
        return _bit_reversed(answer)


# Parts wired to the fake buses, found by the bus objects the firmware builds itself:
# ("spi" | "i2c", bus id) -> chip, and GPIO number -> callbacks on a level change (chip select).
WIRED: dict[tuple[str, int], Any] = {}
PIN_WATCHERS: dict[int, list[Callable[[int], None]]] = {}


def wire(bus: str, bus_id: int, chip: object, cs: int | None = None) -> None:
    """Put `chip` alone on a fake bus (watching its chip-select GPIO), for buses built later."""
    unwire()
    WIRED[(bus, bus_id)] = chip
    if cs is not None:
        PIN_WATCHERS[cs] = [chip.chip_select]  # type: ignore[attr-defined]


def unwire() -> None:
    """Take every chip off the fake buses (a test's chip must not answer the next test)."""
    WIRED.clear()
    PIN_WATCHERS.clear()


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
            self.value(value)

    def value(self, level: int | None = None) -> int:
        if level is not None:
            self.level = int(bool(level))
            for watcher in PIN_WATCHERS.get(self.number, []):
                watcher(self.level)
        return self.level


class _SPI:
    def __init__(self, bus: int = 0, *args: object, **settings: object) -> None:
        self.bus = bus
        self.settings = settings
        self.chip: Any = WIRED.get(("spi", bus))

    def write(self, data: bytes) -> None:
        assert self.chip is not None
        self.chip.spi_write(bytes(data))

    def read(self, size: int, write: int = 0) -> bytes:
        assert self.chip is not None
        return self.chip.spi_read(size)


class _I2C:
    """machine.I2C: writeto / readfrom to the chip wired at that address (EIO if none)."""

    def __init__(self, bus: int = 0, **settings: object) -> None:
        self.bus = bus
        self.settings = settings
        self.chip: Any = WIRED.get(("i2c", bus))

    def _device(self, address: int) -> Any:
        if self.chip is None or self.chip.i2c_address != address:
            raise OSError(5, "EIO")  # no device acknowledged the address
        return self.chip

    def writeto(self, address: int, data: bytes, stop: bool = True) -> int:
        self._device(address).i2c_write(bytes(data))
        return len(data)

    def readfrom(self, address: int, count: int, stop: bool = True) -> bytes:
        data: bytes = self._device(address).i2c_read(count)
        return data


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
        machine.I2C = _I2C  # type: ignore[attr-defined]
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


# The reader chips FirmwareOnPty can be built with: (chip, bus) for ppb_board.ReaderWiring.
BOARDS = {
    "mfrc522": ("mfrc522", "spi"),
    "pn532-i2c": ("pn532", "i2c"),
    "pn532-spi": ("pn532", "spi"),
}


class FirmwareOnPty:
    """The firmware's `Bridge` and reader driver behind a pty, built as `main.py` builds them.

    `board` names the reader chip and bus (`BOARDS`); the driver comes from the firmware's own
    `ppb_board.open_reader` on a fake bus with `FakeMFRC522` or `FakePN532` wired to it.
    The master end plays the Pico's USB CDC port: a thread runs the firmware's main loop (read
    what the host sent, `poll`, write the answers). `port_path` is the slave end, which the
    station opens like /dev/ttyACM0. `chip.present(uid)` taps a card; `light` and `beeper` record
    what the host asked for.
    """

    def __init__(self, loop_ms: int = 10, board: str = "mfrc522") -> None:
        import os
        import threading
        import tty

        load_firmware()
        import ppb_board
        import ppb_bridge

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

        chip, bus = BOARDS[board]
        wiring = ppb_board.ReaderWiring(chip, bus)
        self.chip: Any = FakeMFRC522() if chip == "mfrc522" else FakePN532()
        wire(bus, 0, self.chip, cs=wiring.cs if board == "pn532-spi" else None)
        driver = ppb_board.open_reader(wiring)
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
        unwire()
