"""A small MFRC522 driver (SPI) for the reader bridge: ISO 14443-A UIDs of 4, 7 or 10 bytes.

Only what a badge reader needs: wake the card in the field (WUPA, so a card left on the reader
answers again after HALT), run the anticollision and SELECT cascade to get the whole UID (the
cascade tag 0x88 announces another level), then HALT it. No authentication, no reading of blocks.
Register and command values are from the NXP MFRC522 data sheet (rev. 3.9), the frame formats
from ISO/IEC 14443-3. Written here rather than taken from a MicroPython library because those
return only the first cascade level (so a 7-byte UID came back as 4 bytes of it plus 0x88).
"""

from machine import SPI, Pin
from ppb_bridge import CardSource

# Registers (data sheet 9.2).
COMMAND = 0x01
COM_IEN = 0x02
COM_IRQ = 0x04
DIV_IRQ = 0x05
ERROR = 0x06
FIFO_DATA = 0x09
FIFO_LEVEL = 0x0A
CONTROL = 0x0C
BIT_FRAMING = 0x0D
COLL = 0x0E
MODE = 0x11
TX_CONTROL = 0x14
TX_ASK = 0x15
CRC_RESULT_H = 0x21
CRC_RESULT_L = 0x22
T_MODE = 0x2A
T_PRESCALER = 0x2B
T_RELOAD_H = 0x2C
T_RELOAD_L = 0x2D
VERSION = 0x37

# Commands (data sheet 10.3).
IDLE = 0x00
CALC_CRC = 0x03
TRANSCEIVE = 0x0C
SOFT_RESET = 0x0F

# ISO 14443-3 frames.
WUPA = 0x52
SELECT_LEVELS = (0x93, 0x95, 0x97)
CASCADE_TAG = 0x88
HALT = (0x50, 0x00)

_RX_IRQ = 0x20
_IDLE_IRQ = 0x10
_TIMER_IRQ = 0x01
_ERRORS = 0x13  # BufferOvfl, ParityErr, ProtocolErr (a collision is handled by bit framing)


class MFRC522(CardSource):
    """An MFRC522 on SPI (mode 0, up to 10 MHz), chip select active low."""

    def __init__(self, spi: SPI, cs: Pin, rst: Pin | None = None, max_polls: int = 2000) -> None:
        self.spi = spi
        self.cs = cs
        self.max_polls = max_polls  # guards every wait: a missing chip must not hang the loop
        cs.init(Pin.OUT, value=1)
        if rst is not None:
            rst.init(Pin.OUT, value=1)
        self.reset()

    # ---- registers ----

    def write(self, register: int, value: int) -> None:
        self.cs.value(0)
        self.spi.write(bytes(((register << 1) & 0x7E, value & 0xFF)))
        self.cs.value(1)

    def read(self, register: int) -> int:
        self.cs.value(0)
        self.spi.write(bytes((((register << 1) & 0x7E) | 0x80,)))
        value = self.spi.read(1)[0]
        self.cs.value(1)
        return int(value)

    def set_bits(self, register: int, mask: int) -> None:
        self.write(register, self.read(register) | mask)

    def clear_bits(self, register: int, mask: int) -> None:
        self.write(register, self.read(register) & ~mask)

    # ---- set-up ----

    def reset(self) -> None:
        """Soft reset, a 25 ms receive timeout, 100% ASK, CRC preset 0x6363, antenna on."""
        self.write(COMMAND, SOFT_RESET)
        self.write(T_MODE, 0x8D)
        self.write(T_PRESCALER, 0x3E)
        self.write(T_RELOAD_H, 0)
        self.write(T_RELOAD_L, 30)
        self.write(TX_ASK, 0x40)
        self.write(MODE, 0x3D)
        self.set_bits(TX_CONTROL, 0x03)

    def version(self) -> int:
        """The chip's version register (0x91 or 0x92 for a genuine MFRC522)."""
        return self.read(VERSION)

    # ---- the card ----

    def transceive(self, data: bytes, last_bits: int = 0) -> bytes | None:
        """Send a frame (of which the last byte has `last_bits` bits, 0 = 8); the answer or None."""
        self.write(COMMAND, IDLE)
        self.write(COM_IEN, 0x77 | 0x80)
        self.write(COM_IRQ, 0x7F)  # clear every interrupt request
        self.write(FIFO_LEVEL, 0x80)  # flush the FIFO
        for byte in data:
            self.write(FIFO_DATA, byte)
        self.write(BIT_FRAMING, last_bits & 0x07)
        self.write(COMMAND, TRANSCEIVE)
        self.set_bits(BIT_FRAMING, 0x80)  # StartSend
        irq = 0
        for _ in range(self.max_polls):
            irq = self.read(COM_IRQ)
            if irq & (_RX_IRQ | _IDLE_IRQ | _TIMER_IRQ):
                break
        self.clear_bits(BIT_FRAMING, 0x80)
        if not irq & (_RX_IRQ | _IDLE_IRQ) or self.read(ERROR) & _ERRORS:
            return None  # no card answered before the timer, or a garbled answer
        count = self.read(FIFO_LEVEL)
        return bytes(self.read(FIFO_DATA) for _ in range(count))

    def crc_a(self, data: bytes) -> bytes:
        """CRC_A of `data` from the chip's coprocessor, low byte first."""
        self.write(COMMAND, IDLE)
        self.write(DIV_IRQ, 0x04)
        self.write(FIFO_LEVEL, 0x80)
        for byte in data:
            self.write(FIFO_DATA, byte)
        self.write(COMMAND, CALC_CRC)
        for _ in range(self.max_polls):
            if self.read(DIV_IRQ) & 0x04:
                break
        self.write(COMMAND, IDLE)
        return bytes((self.read(CRC_RESULT_L), self.read(CRC_RESULT_H)))

    def read_uid(self) -> bytes | None:
        """The UID of the card in the field (then HALTed), or None if there is none."""
        atqa = self.transceive(bytes((WUPA,)), last_bits=7)
        if atqa is None or len(atqa) != 2:
            return None
        uid = b""
        for level in SELECT_LEVELS:
            answer = self.transceive(bytes((level, 0x20)))
            if answer is None or len(answer) != 5:
                return None
            if answer[0] ^ answer[1] ^ answer[2] ^ answer[3] != answer[4]:
                return None  # BCC mismatch: a collision or noise
            frame = bytes((level, 0x70)) + answer
            sak = self.transceive(frame + self.crc_a(frame))
            if sak is None or len(sak) != 3:
                return None
            if sak[0] & 0x04:  # UID not complete: cascade tag, three bytes, next level
                if answer[0] != CASCADE_TAG:
                    return None
                uid += answer[1:4]
                continue
            uid += answer[:4]
            halt = bytes(HALT)
            self.transceive(halt + self.crc_a(halt))  # no answer is the answer to HALT
            return uid
        return None
