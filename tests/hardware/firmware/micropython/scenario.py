# One bridge session, written for both interpreters: the test runs it on CPython and on real
# MicroPython and requires the same output, line for line.
import sys

import ppb_bridge
import ppb_pn532
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


# The PN532 driver (pure) against a chip that answers every command at once over a `Link`.
class Chip(ppb_pn532.Link):
    def __init__(self):
        self.out = []
        self.uid = None
        self.corrupt = 0

    def write(self, data):
        if data in (ppb_pn532.ACK, ppb_pn532.NACK):
            if data == ppb_pn532.NACK:
                self.out.append(self.last)
            return
        code = ppb_pn532.parse_frame(data)[1]
        answer = {0x02: b"\x32\x01\x06\x07", 0x14: b"", 0x32: b""}.get(code)
        if code == 0x4A:
            answer = b"\x00"
            if self.uid is not None:
                sens = b"\x00\x44" if len(self.uid) == 7 else b"\x00\x04"
                answer = b"\x01\x01" + sens + bytes((0x00, len(self.uid))) + self.uid
        self.last = ppb_pn532.frame(bytes((0xD5, code + 1)) + answer)
        self.out.append(ppb_pn532.ACK)
        if self.corrupt:
            self.corrupt -= 1
            self.out.append(self.last[:-2] + b"\x00\x00")
        else:
            self.out.append(self.last)

    def ready(self):
        return bool(self.out)

    def read(self, count):
        return (self.out.pop(0) + bytes(count))[:count]


chip = Chip()
pn532 = ppb_pn532.PN532(chip)
print("pn532", pn532.firmware, pn532.read_uid())
chip.uid = bytes.fromhex("04A1B2C3D4E5F6")
chip.corrupt = 1
target = pn532.read_target()
print(
    "pn532 uid",
    ppb_protocol.card_line(target.uid).decode().rstrip(),
    target.sens_res,
    target.sel_res,
)
try:
    ppb_pn532.parse_frame(ppb_pn532.ERROR_FRAME)
except OSError as exc:
    print("pn532 error", exc.reason)
print("reversed", ppb_pn532.reverse_bits(b"\x01\xd4"))
print("crc", ppb_protocol.crc8(b"123456789"), sys.implementation.name != "")
