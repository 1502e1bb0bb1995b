"""The bridge's board parts on an RP2040: RGB LED on three GPIOs, a PWM buzzer, USB CDC serial."""

import select
import sys

import micropython
from machine import PWM, Pin
from ppb_bridge import Buzzer, Led

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
