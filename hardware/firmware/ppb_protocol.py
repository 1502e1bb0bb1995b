"""The reader bridge's side of the PullPrint bridge protocol, version 1 ("PP1").

The same wire format as `hardware/readers/bridge_protocol.py` on the station (which documents
it), written for MicroPython: no `re`, no dataclasses, no `typing` at run time; pure (no
`machine`), so it runs and is tested under CPython too. A test checks that every line this module
writes is accepted by the station's decoder and the other way round.

Host to bridge: HELLO <versions>, LED <color> <ms>, BEEP <hz> <ms>, PING <token>.
Bridge to host: READY <version> <firmware>, CARD <technology> <bits> <hex>, PONG <token>,
ERR <reason>.
"""

import binascii

VERSION = 1
MAX_LINE_BYTES = 96
LED_COLORS = ("off", "red", "green", "blue", "amber", "white")
_ARG_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/,-"


class ProtocolError(Exception):
    """A line is malformed; `reason` is the word sent back in `PP1 ERR <reason>`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def crc8(data: bytes) -> int:
    """CRC-8/SMBUS: polynomial 0x07, initial 0, not reflected, no final XOR."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _valid_arg(arg: str) -> bool:
    if not 1 <= len(arg) <= 32:
        return False
    return all(char in _ARG_CHARS for char in arg)


def encode(verb: str, args: list[str]) -> bytes:
    """One framed line, checksum and LF included."""
    for arg in args:
        if not _valid_arg(arg):
            raise ProtocolError("syntax")
    body = " ".join(["PP%d" % VERSION, verb] + args).encode()
    line = body + b" *" + ("%02X" % crc8(body)).encode()
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError("length")
    return line + b"\n"


def card_line(uid: bytes) -> bytes:
    """The CARD line for an ISO 14443-A UID (4, 7 or 10 bytes), in the order the card sent it."""
    return encode("CARD", ["mifare", str(len(uid) * 8), binascii.hexlify(uid).decode()])


def parse_number(text: str, low: int, high: int) -> int:
    """A decimal without sign or leading zeros, within [low, high]."""
    if not text or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise ProtocolError("syntax")
    value = int(text)
    if not low <= value <= high:
        raise ProtocolError("range")
    return value


def decode(line: bytes) -> tuple[str, list[str]]:
    """Check a line from the host (without its terminator): (verb, args).

    Raises ProtocolError with the reason to answer: length, checksum, syntax, version.
    """
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError("length")
    try:
        text = line.decode()
    except UnicodeError:
        raise ProtocolError("syntax") from None
    cut = text.rfind(" ")
    if cut < 0:
        raise ProtocolError("checksum")
    body, crc = text[:cut], text[cut + 1 :]
    if len(crc) != 3 or crc[0] != "*":
        raise ProtocolError("checksum")
    try:
        expected = int(crc[1:], 16)
    except ValueError:
        raise ProtocolError("checksum") from None
    if crc[1:] != crc[1:].upper() or crc8(body.encode()) != expected:
        raise ProtocolError("checksum")
    tokens = body.split(" ")
    if len(tokens) < 2 or not tokens[0].startswith("PP"):
        raise ProtocolError("syntax")
    version = parse_number(tokens[0][2:], 1, 9999)
    verb, args = tokens[1], tokens[2:]
    if verb != "HELLO" and version != VERSION:
        # HELLO stays PP1-framed in every version; anything else in another framing is not ours.
        raise ProtocolError("version")
    for arg in args:
        if not _valid_arg(arg):
            raise ProtocolError("syntax")
    return verb, args
