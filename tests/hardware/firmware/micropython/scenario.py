# One bridge session, written for both interpreters: the test runs it on CPython and on real
# MicroPython and requires the same output, line for line.
import sys

import ppb_bridge
import ppb_protocol


class Reader(ppb_bridge.CardSource):
    def __init__(self):
        self.uid = None

    def read_uid(self):
        return self.uid


class Light(ppb_bridge.Led):
    def set(self, color):
        print("led", color)


class Beeper(ppb_bridge.Buzzer):
    def tone(self, frequency_hz):
        print("tone", frequency_hz)

    def off(self):
        print("tone off")


def line(text):
    body = text.encode()
    return body + b" *" + ("%02X" % ppb_protocol.crc8(body)).encode() + b"\r\n"


reader = Reader()
bridge = ppb_bridge.Bridge(reader, Light(), Beeper())
reader.uid = bytes.fromhex("04A1B2C3D4E5F6")
bridge.poll(20)
bridge.feed(line("PP1 HELLO 1,2"))
reader.uid = None
for _ in range(3):
    bridge.poll(20)
for uid in ("1A2B3C4D", "1A2B3C4D", "04A1B2C3D4E5F6071829"):
    reader.uid = bytes.fromhex(uid)
    bridge.poll(20)
bridge.feed(line("PP1 LED amber 50") + line("PP1 BEEP 2000 30"))
bridge.poll(40)
bridge.poll(40)
bridge.feed(line("PP1 PING 65535") + line("PP1 LED purple 0") + b"PP1 PING 1 *00\n")
bridge.feed(line("PP2 PING 1") + line("PP1 NOPE") + b"X" * 200 + b"\n" + line("PP1 HELLO 7"))
bridge.feed(b"PP1 PING \xff *00\n")
for out in bridge.take_output():
    print(out.decode().rstrip())
print("crc", ppb_protocol.crc8(b"123456789"), sys.implementation.name != "")
