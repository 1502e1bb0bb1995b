"""The PullPrint reader-bridge protocol, version 1 ("PP1"): a sans-I/O codec.

Our reader bridge (an RP2040 with an MFRC522 or PN532, `hardware/firmware/`) talks to the station
over USB CDC serial in lines of printable ASCII. This module turns lines into typed messages and
back; it does no I/O and never logs.

Line format
-----------

    PP<version> SP <VERB> *(SP <arg>) SP "*" <CRC>          terminated by LF (CR LF accepted)

* `version` is decimal, no leading zeros; this module speaks 1 only.
* `VERB` is upper-case; each `arg` is 1-32 characters of `A-Z a-z 0-9 . _ : / , -`.
* `CRC` is CRC-8 (polynomial 0x07, initial value 0, not reflected, no final XOR: "CRC-8/SMBUS",
  check value 0xF4 over "123456789") of every byte before the " *", as two upper-case hex
  digits. It detects every error burst of up to 8 bits, so any single corrupted byte.
* A line is at most `MAX_LINE_BYTES` bytes without its terminator.

Messages
--------

Host to bridge:

    PP1 HELLO <versions>        versions the host speaks, comma-separated ("1")
    PP1 LED <color> <ms>        color: off red green blue amber white; ms 0 = until changed
    PP1 BEEP <hz> <ms>          a tone, 100-10000 Hz, 1-5000 ms
    PP1 PING <token>            token 0-65535, echoed by PONG

Bridge to host:

    PP1 READY <version> <firmware>        answer to HELLO: the version chosen, firmware id
    PP1 CARD <technology> <bits> <hex>    a badge: technology (h10301 corp1000 mifare iclass),
                                          bit length (1-128), raw bits right-aligned
                                          big-endian in hex
                                          (for UIDs: the bytes in the order the card sends them)
    PP1 PONG <token>
    PP1 ERR <reason>                      the bridge refused a line: checksum, syntax, verb,
                                          version, ...

Handshake: after opening the port the host sends HELLO (bytes sent before the port was open are
lost, so the bridge's own greeting cannot be relied on); the bridge answers READY with the
highest version both speak, or `PP1 ERR version`. The host refuses a READY for a version it did
not offer, and any line whose `PP<n>` prefix is not a version it speaks (`BridgeVersionError`).
The HELLO / READY / ERR lines of the handshake stay PP1-framed in every future version, so any
host and bridge can always find out that they disagree.

Errors: `decode_line` raises `BridgeProtocolError` (a `ReaderError`) for anything malformed,
never another exception; messages never contain card data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hardware.readers.base import Credential
from hardware.readers.errors import BridgeProtocolError, BridgeVersionError, CardFormatError
from hardware.readers.formats import WIEGAND_FORMATS, iclass_csn, mifare_uid

__all__ = [
    "CARD_TECHNOLOGIES",
    "LED_COLORS",
    "MAX_LINE_BYTES",
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "Beep",
    "BridgeMessage",
    "Card",
    "Error",
    "Hello",
    "Led",
    "Ping",
    "Pong",
    "Ready",
    "crc8",
    "decode_line",
    "encode_line",
]

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
MAX_LINE_BYTES = 96
LED_COLORS: tuple[str, ...] = ("off", "red", "green", "blue", "amber", "white")
CARD_TECHNOLOGIES: tuple[str, ...] = (*WIEGAND_FORMATS, "mifare", "iclass")

_ARG = re.compile(r"[A-Za-z0-9._:/,-]{1,32}")
_VERB = re.compile(r"[A-Z]{2,8}")
_PREFIX = re.compile(r"PP([1-9][0-9]{0,3})")
_CRC = re.compile(r"\*[0-9A-F]{2}")


def _crc8_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_CRC8_TABLE = _crc8_table()


def crc8(data: bytes) -> int:
    """CRC-8/SMBUS (poly 0x07, init 0, no reflection, no final XOR) of `data`."""
    crc = 0
    for byte in data:
        crc = _CRC8_TABLE[crc ^ byte]
    return crc


# ---- messages ----


@dataclass(frozen=True, slots=True)
class Hello:
    """Host to bridge: the protocol versions the host speaks."""

    versions: tuple[int, ...] = SUPPORTED_VERSIONS


@dataclass(frozen=True, slots=True)
class Ready:
    """Bridge to host: the version chosen, and the firmware's id (name/version)."""

    version: int
    firmware: str


@dataclass(frozen=True, slots=True)
class Card:
    """Bridge to host: a badge was read. `raw` as in `Credential`; the repr hides it."""

    technology: str
    bit_length: int
    raw: bytes = field(repr=False)

    def to_credential(self) -> Credential:
        """The canonical credential, with the format's own checks (parity, random UID).

        Raises:
            CardFormatError: the bits are not a valid badge of that technology.
        """
        layout = WIEGAND_FORMATS.get(self.technology)
        if layout is not None:
            if self.bit_length != layout.bit_length:
                raise CardFormatError(f"{self.technology} has {layout.bit_length} bits")
            return layout.check(int.from_bytes(self.raw, "big"))
        if self.technology == "mifare":
            credential = mifare_uid(self.raw)
        elif self.technology == "iclass":
            credential = iclass_csn(self.raw)
        else:
            raise CardFormatError("the bridge sent a card technology we do not know", "unsupported")
        if credential.bit_length != self.bit_length:
            raise CardFormatError("the bridge's bit length does not match the UID")
        return credential


@dataclass(frozen=True, slots=True)
class Led:
    """Host to bridge: set the status LED, for `duration_ms` (0: until changed)."""

    color: str
    duration_ms: int = 0


@dataclass(frozen=True, slots=True)
class Beep:
    """Host to bridge: sound a tone."""

    frequency_hz: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Ping:
    """Host to bridge: are you there? Answered by a `Pong` with the same token."""

    token: int


@dataclass(frozen=True, slots=True)
class Pong:
    """Bridge to host: the answer to a `Ping`."""

    token: int


@dataclass(frozen=True, slots=True)
class Error:
    """Bridge to host: the bridge refused a line, for `reason`."""

    reason: str


BridgeMessage = Hello | Ready | Card | Led | Beep | Ping | Pong | Error


# ---- encoding ----


def encode_line(message: BridgeMessage, version: int = PROTOCOL_VERSION) -> bytes:
    """The line for `message`, checksum included, without its terminator.

    Raises:
        BridgeProtocolError: the message's fields are out of range (a bug in the caller).
    """
    verb, args = _fields(message)
    for arg in args:
        if not _ARG.fullmatch(arg):
            raise BridgeProtocolError(f"{verb} has an argument that cannot be sent")
    body = " ".join((f"PP{version}", verb, *args)).encode("ascii")
    line = body + b" *" + f"{crc8(body):02X}".encode("ascii")
    if len(line) > MAX_LINE_BYTES:
        raise BridgeProtocolError(f"{verb} line is too long")
    # Round-trip through the decoder: what we send is exactly what we accept.
    _check(decode_line(line, versions=(version,)) == message, f"{verb} fields are out of range")
    return line


def _fields(message: BridgeMessage) -> tuple[str, tuple[str, ...]]:
    match message:
        case Hello(versions):
            return "HELLO", (",".join(str(v) for v in versions),)
        case Ready(version, firmware):
            return "READY", (str(version), firmware)
        case Card(technology, bit_length, raw):
            return "CARD", (technology, str(bit_length), raw.hex())
        case Led(color, duration_ms):
            return "LED", (color, str(duration_ms))
        case Beep(frequency_hz, duration_ms):
            return "BEEP", (str(frequency_hz), str(duration_ms))
        case Ping(token):
            return "PING", (str(token),)
        case Pong(token):
            return "PONG", (str(token),)
        case Error(reason):
            return "ERR", (reason,)


# ---- decoding ----


def decode_line(line: bytes, versions: tuple[int, ...] = SUPPORTED_VERSIONS) -> BridgeMessage:
    """The message in one line (without its terminator).

    Args:
        line: the bytes of the line.
        versions: the protocol versions accepted in the `PP<n>` prefix.

    Raises:
        BridgeVersionError: the line is framed for a version not in `versions`.
        BridgeProtocolError: anything else wrong: length, characters, checksum, fields.
    """
    if len(line) > MAX_LINE_BYTES:
        raise BridgeProtocolError("bridge line is too long")
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise BridgeProtocolError("bridge line is not ASCII") from None
    body, sep, crc = text.rpartition(" ")
    if not sep or not _CRC.fullmatch(crc):
        raise BridgeProtocolError("bridge line has no checksum")
    if crc8(body.encode("ascii")) != int(crc[1:], 16):
        raise BridgeProtocolError("bridge line fails its checksum")
    tokens = body.split(" ")
    prefix = _PREFIX.fullmatch(tokens[0])
    if prefix is None or len(tokens) < 2 or not _VERB.fullmatch(tokens[1]):
        raise BridgeProtocolError("bridge line is not PP<version> <VERB> ...")
    if int(prefix.group(1)) not in versions:
        raise BridgeVersionError("bridge line is framed for a protocol version we do not speak")
    verb, args = tokens[1], tokens[2:]
    if not all(_ARG.fullmatch(arg) for arg in args):
        raise BridgeProtocolError(f"bridge {verb} line has a malformed argument")
    return _message(verb, args)


def _message(verb: str, args: list[str]) -> BridgeMessage:
    match verb, args:
        case "HELLO", [versions]:
            return Hello(tuple(_int(v, 1, 9999) for v in versions.split(",")))
        case "READY", [version, firmware]:
            return Ready(_int(version, 1, 9999), firmware)
        case "CARD", [technology, bits, hex_raw]:
            return _card(technology, _int(bits, 1, 128), hex_raw)
        case "LED", [color, duration]:
            _check(color in LED_COLORS, "unknown LED color")
            return Led(color, _int(duration, 0, 60_000))
        case "BEEP", [frequency, duration]:
            return Beep(_int(frequency, 100, 10_000), _int(duration, 1, 5_000))
        case "PING", [token]:
            return Ping(_int(token, 0, 0xFFFF))
        case "PONG", [token]:
            return Pong(_int(token, 0, 0xFFFF))
        case "ERR", [reason]:
            return Error(reason)
    raise BridgeProtocolError(f"bridge sent an unknown verb or wrong arguments for {verb}")


def _card(technology: str, bit_length: int, hex_raw: str) -> Card:
    _check(technology in CARD_TECHNOLOGIES, "bridge CARD names an unknown technology")
    _check(
        len(hex_raw) == 2 * ((bit_length + 7) // 8) and _is_hex(hex_raw),
        "bridge CARD bits do not match its bit length",
    )
    raw = bytes.fromhex(hex_raw)
    _check(int.from_bytes(raw, "big") >> bit_length == 0, "bridge CARD has bits above its length")
    return Card(technology, bit_length, raw)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _int(text: str, low: int, high: int) -> int:
    # Digits only, no sign, no leading zeros: one spelling per number.
    _check(
        text.isascii() and text.isdigit() and (text == "0" or not text.startswith("0")),
        "bridge line has a malformed number",
    )
    value = int(text)
    _check(low <= value <= high, "bridge line has a number out of range")
    return value


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise BridgeProtocolError(message)
