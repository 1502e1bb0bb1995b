"""The reader bridge firmware's entry point on a Raspberry Pi Pico (RP2040) with an MFRC522.

Wiring (see README.md): MFRC522 on SPI0 (SCK GP18, MOSI GP19, MISO GP16, SDA/CS GP17, RST GP20),
RGB LED on GP13/GP14/GP15, buzzer on GP12. Deploy with
`mpremote cp hardware/firmware/*.py :` and reset the board.
"""

import time

from machine import SPI, Pin
from ppb_board import PwmBuzzer, RgbLed, UsbSerial
from ppb_bridge import Bridge
from ppb_mfrc522 import MFRC522

LOOP_MS = 20  # a card is looked for about 50 times a second


def main() -> None:
    spi = SPI(0, baudrate=4_000_000, sck=Pin(18), mosi=Pin(19), miso=Pin(16))
    reader = MFRC522(spi, cs=Pin(17), rst=Pin(20))
    bridge = Bridge(reader, RgbLed(13, 14, 15), PwmBuzzer(12))
    usb = UsbSerial()
    last = time.ticks_ms()
    while True:
        data = usb.read(LOOP_MS)
        if data:
            bridge.feed(data)
        now = time.ticks_ms()
        bridge.poll(time.ticks_diff(now, last))
        last = now
        for line in bridge.take_output():
            usb.write(line)


main()
