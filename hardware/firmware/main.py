"""The reader bridge firmware's entry point on a Raspberry Pi Pico (RP2040).

Wiring (see README.md): the reader chip named by `ppb_board.READER` (an MFRC522 on SPI0: SCK
GP18, MOSI GP19, MISO GP16, SDA/CS GP17, RST GP20; or a PN532 on I2C0: SDA GP4, SCL GP5, or on
SPI0), RGB LED on GP13/GP14/GP15, buzzer on GP12. Deploy with
`mpremote cp hardware/firmware/*.py :` and reset the board.
"""

import time

from ppb_board import READER, PwmBuzzer, RgbLed, UsbSerial, open_reader
from ppb_bridge import Bridge

LOOP_MS = 20  # a card is looked for about 50 times a second


def main() -> None:
    reader = open_reader(READER)
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
