"""The bridge's board parts on an RP2040: the reader chip and its bus, RGB LED, buzzer, USB serial.

Which reader chip is fitted, and how it is wired, is data: `READER` (a `ReaderWiring`) below is
the one line to edit for a board; `open_reader` builds the driver it names. The bridge logic
(`ppb_bridge`) sees only the `CardSource` port and never knows which chip it is.
"""

import select
import sys

import micropython
from machine import I2C, PWM, SPI, Pin
from ppb_bridge import Buzzer, CardSource, Led
from ppb_mfrc522 import MFRC522
from ppb_pn532 import (
    I2C_ADDRESS,
    PN532,
    SPI_DATA_READ,
    SPI_DATA_WRITE,
    SPI_STATUS_READ,
    Link,
    PN532Error,
    reverse_bits,
)


class ReaderWiring:
    """The reader chip ("mfrc522" or "pn532"), its bus ("spi" or "i2c", PN532 only) and pins.

    SPI pins: sck, mosi, miso, cs (and rst for the MFRC522); I2C pins: sda, scl. GPIO numbers.
    """

    def __init__(
        self,
        chip: str = "mfrc522",
        bus: str = "spi",
        bus_id: int = 0,
        sck: int = 18,
        mosi: int = 19,
        miso: int = 16,
        cs: int = 17,
        rst: int | None = 20,
        sda: int = 4,
        scl: int = 5,
    ) -> None:
        if chip not in ("mfrc522", "pn532"):
            raise ValueError("reader chip must be mfrc522 or pn532")
        if bus not in ("spi", "i2c") or (chip == "mfrc522" and bus != "spi"):
            raise ValueError("an MFRC522 is wired on SPI; a PN532 on SPI or I2C")
        self.chip = chip
        self.bus = bus
        self.bus_id = bus_id
        self.sck = sck
        self.mosi = mosi
        self.miso = miso
        self.cs = cs
        self.rst = rst
        self.sda = sda
        self.scl = scl


# The board as built. A PN532 breakout on I2C0 (GP4 SDA, GP5 SCL) instead:
#     READER = ReaderWiring("pn532", "i2c", bus_id=0, sda=4, scl=5)
READER = ReaderWiring("mfrc522", "spi")


class Pn532I2C(Link):
    """A PN532 on I2C (7-bit address 0x24): every read starts with the status byte, bit 0 ready."""

    def __init__(self, i2c: I2C, address: int = I2C_ADDRESS) -> None:
        self.i2c = i2c
        self.address = address

    def write(self, data: bytes) -> None:
        self.i2c.writeto(self.address, data)

    def ready(self) -> bool:
        return bool(self.i2c.readfrom(self.address, 1)[0] & 0x01)

    def read(self, count: int) -> bytes:
        data = self.i2c.readfrom(self.address, count + 1)
        if not data[0] & 0x01:
            raise PN532Error("not-ready")
        return bytes(data[1:])


class Pn532SPI(Link):
    """A PN532 on SPI, mode 0, chip select active low, least significant bit first.

    The RP2040's SPI shifts the most significant bit first only (MicroPython raises
    NotImplementedError for SPI.LSB on rp2), so every byte is bit-reversed here, both ways.
    Each transfer starts with its prefix byte: status read, data write or data read.
    """

    def __init__(self, spi: SPI, cs: Pin) -> None:
        self.spi = spi
        self.cs = cs
        cs.init(Pin.OUT, value=1)

    def _transfer(self, prefix: int, out: bytes, count: int) -> bytes:
        self.cs.value(0)
        try:
            self.spi.write(reverse_bits(bytes((prefix,)) + out))
            return reverse_bits(self.spi.read(count)) if count else b""
        finally:
            self.cs.value(1)

    def write(self, data: bytes) -> None:
        self._transfer(SPI_DATA_WRITE, data, 0)

    def ready(self) -> bool:
        return bool(self._transfer(SPI_STATUS_READ, b"", 1)[0] & 0x01)

    def read(self, count: int) -> bytes:
        return self._transfer(SPI_DATA_READ, b"", count)


def open_reader(wiring: ReaderWiring) -> CardSource:
    """The card reader driver `wiring` names, on its bus."""
    if wiring.bus == "i2c":
        # 100 kHz: the PN532 stretches the clock, which long wires and 400 kHz do not forgive.
        i2c = I2C(wiring.bus_id, scl=Pin(wiring.scl), sda=Pin(wiring.sda), freq=100_000)
        return PN532(Pn532I2C(i2c))
    # Mode 0 for both chips; the PN532 takes up to 5 MHz, the MFRC522 up to 10 MHz.
    baudrate = 1_000_000 if wiring.chip == "pn532" else 4_000_000
    sck, mosi, miso = Pin(wiring.sck), Pin(wiring.mosi), Pin(wiring.miso)
    spi = SPI(wiring.bus_id, baudrate, polarity=0, phase=0, sck=sck, mosi=mosi, miso=miso)
    if wiring.chip == "pn532":
        return PN532(Pn532SPI(spi, Pin(wiring.cs)))
    rst = Pin(wiring.rst) if wiring.rst is not None else None
    return MFRC522(spi, cs=Pin(wiring.cs), rst=rst)


# Which of red, green, blue are lit for each protocol colour.
_MIX = {
    "off": (0, 0, 0),
    "red": (1, 0, 0),
    "green": (0, 1, 0),
    "blue": (0, 0, 1),
    "amber": (1, 1, 0),
    "white": (1, 1, 1),
}


class RgbLed(Led):
    """A common-cathode RGB LED (or three LEDs); `active_low` for common anode."""

    def __init__(self, red: int, green: int, blue: int, active_low: bool = False) -> None:
        self.pins = [Pin(n, Pin.OUT) for n in (red, green, blue)]
        self.active_low = active_low
        self.set("off")

    def set(self, color: str) -> None:
        for pin, lit in zip(self.pins, _MIX[color]):
            pin.value(lit ^ self.active_low)


class PwmBuzzer(Buzzer):
    """A passive piezo buzzer driven by PWM at half duty."""

    def __init__(self, pin: int) -> None:
        self.pwm = PWM(Pin(pin))
        self.off()

    def tone(self, frequency_hz: int) -> None:
        self.pwm.freq(frequency_hz)
        self.pwm.duty_u16(32768)

    def off(self) -> None:
        self.pwm.duty_u16(0)


class UsbSerial:
    """The USB CDC port (MicroPython's stdin/stdout), read without blocking."""

    def __init__(self) -> None:
        # Ctrl-C (0x03) is line noise here, not a reason to stop the firmware.
        micropython.kbd_intr(-1)
        self.poller = select.poll()
        self.poller.register(sys.stdin, select.POLLIN)

    def read(self, timeout_ms: int) -> bytes:
        """The bytes that arrived within `timeout_ms` (at most 64)."""
        data = b""
        while len(data) < 64 and self.poller.poll(0 if data else timeout_ms):
            data += sys.stdin.buffer.read(1)
        return data

    def write(self, line: bytes) -> None:
        sys.stdout.buffer.write(line)
