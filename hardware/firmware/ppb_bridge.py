"""The reader bridge's logic: host lines in, answers and card lines out; pure and clock-free.

`Bridge` never touches hardware itself: it is handed three small objects (the card reader, the
LED, the buzzer) and told how much time passed, so the same code runs on the RP2040 (`main.py`
wires in the MFRC522 driver, PWM and GPIO) and under CPython in the tests (fakes, and the
station's real `BridgeCardReader` on the other end of a pty).

* Handshake: nothing is sent before the host's HELLO (bytes sent while the host's port is closed
  are lost); HELLO is answered with READY or `ERR version`.
* Cards: polled every loop; a UID is sent once per tap. The same UID is sent again only after
  the card has been away for `absent_polls` polls in a row, because an MFRC522 misses a card
  that is still there now and then; a different UID is sent at once.
* LED and BEEP run for their duration (LED 0 ms: until changed), timed from `poll(elapsed_ms)`.
* Bad lines are answered `ERR <reason>` (length, checksum, syntax, version, verb, range) and
  never stop the bridge.
"""

from ppb_protocol import LED_COLORS, VERSION, ProtocolError, card_line, decode, encode, parse_number

FIRMWARE_ID = "pullprint-bridge/1.0"


# The bridge's ports. Base classes rather than typing.Protocol: MicroPython has no typing
# module, and nominal subclasses type-check the same on both sides.


class CardSource:
    """The card reader (MFRC522, PN532): the UID of the card in the field, or None."""

    def read_uid(self) -> bytes | None:
        raise NotImplementedError


class Led:
    """The status LED: one of `LED_COLORS`."""

    def set(self, color: str) -> None:
        raise NotImplementedError


class Buzzer:
    """The buzzer: a tone until `off()`."""

    def tone(self, frequency_hz: int) -> None:
        raise NotImplementedError

    def off(self) -> None:
        raise NotImplementedError


class Bridge:
    """The firmware's state machine. Not thread-safe: one loop calls `feed` and `poll`."""

    def __init__(
        self,
        reader: CardSource,
        led: Led,
        buzzer: Buzzer,
        firmware: str = FIRMWARE_ID,
        absent_polls: int = 3,
        max_line: int = 96,
    ) -> None:
        self.reader = reader
        self.led = led
        self.buzzer = buzzer
        self.firmware = firmware
        self.absent_polls = absent_polls
        self.max_line = max_line
        self.ready = False
        self._rx = bytearray()
        self._discarding = False
        self._out: list[bytes] = []
        self._last_uid: bytes | None = None
        self._misses = 0
        self._led_left_ms = 0
        self._beep_left_ms = 0

    # ---- input from the host ----

    def feed(self, data: bytes) -> None:
        """Bytes from the host; every complete line is handled."""
        for byte in data:
            if byte in (10, 13):  # LF, CR
                if self._discarding:
                    self._discarding = False
                    self._error("length")
                elif self._rx:
                    line = bytes(self._rx)
                    self._rx = bytearray()
                    self._line(line)
                continue
            if self._discarding:
                continue
            if len(self._rx) >= self.max_line:
                self._rx = bytearray()
                self._discarding = True
                continue
            self._rx.append(byte)

    def _line(self, line: bytes) -> None:
        try:
            verb, args = decode(line)
            self._command(verb, args)
        except ProtocolError as exc:
            self._error(exc.reason)

    def _command(self, verb: str, args: list[str]) -> None:
        if verb == "HELLO" and len(args) == 1:
            versions = [parse_number(v, 1, 9999) for v in args[0].split(",")]
            if VERSION in versions:
                self.ready = True
                self._send(encode("READY", [str(VERSION), self.firmware]))
            else:
                self._error("version")
        elif verb == "LED" and len(args) == 2:
            if args[0] not in LED_COLORS:
                raise ProtocolError("range")
            duration = parse_number(args[1], 0, 60000)
            self.led.set(args[0])
            self._led_left_ms = duration
        elif verb == "BEEP" and len(args) == 2:
            frequency = parse_number(args[0], 100, 10000)
            duration = parse_number(args[1], 1, 5000)
            self.buzzer.tone(frequency)
            self._beep_left_ms = duration
        elif verb == "PING" and len(args) == 1:
            self._send(encode("PONG", [str(parse_number(args[0], 0, 65535))]))
        elif verb in ("HELLO", "LED", "BEEP", "PING"):
            raise ProtocolError("syntax")
        else:
            raise ProtocolError("verb")

    # ---- time and the card reader ----

    def poll(self, elapsed_ms: int) -> None:
        """Called every loop with the milliseconds since the last call."""
        if self._led_left_ms > 0:
            self._led_left_ms -= elapsed_ms
            if self._led_left_ms <= 0:
                self._led_left_ms = 0
                self.led.set("off")
        if self._beep_left_ms > 0:
            self._beep_left_ms -= elapsed_ms
            if self._beep_left_ms <= 0:
                self._beep_left_ms = 0
                self.buzzer.off()
        try:
            uid = self.reader.read_uid()
        except OSError:
            uid = None  # an SPI hiccup: the next poll tries again
        if uid is None:
            self._misses += 1
            if self._misses >= self.absent_polls:
                self._last_uid = None
            return
        self._misses = 0
        if uid == self._last_uid:
            return
        self._last_uid = uid
        if self.ready:  # before HELLO the host's port may be closed: the tap would be lost
            self._send(card_line(bytes(uid)))

    # ---- output ----

    def take_output(self) -> list[bytes]:
        """The lines to write to the host, in order (each ends in LF)."""
        out, self._out = self._out, []
        return out

    def _send(self, line: bytes) -> None:
        self._out.append(line)

    def _error(self, reason: str) -> None:
        self._send(encode("ERR", [reason]))
