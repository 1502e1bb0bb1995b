"""Reader output parsing: undo what a reader did to a badge number before canonicalising it.

Keyboard-wedge and serial readers print a badge as text, and each can be configured to print the
same card as hex or decimal, as `facility:number`, with or without the Wiegand parity bits, with
the UID bytes reversed, with a prefix or suffix. `ReaderFormat` says what this reader does; it is
station configuration, because the text alone cannot tell (26 bits of hex with parity and 24 bits
without look alike). `parse_reader_text` undoes each setting and hands the bits to `formats`.

Invariant: errors are `CardFormatError` whose messages say what was wrong, never the text or any
digit of it (reader text is a card number). Nothing here logs.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Literal

from hardware.readers.base import Credential
from hardware.readers.errors import CardFormatError
from hardware.readers.formats import WIEGAND_FORMATS, WiegandFormat, iclass_csn, mifare_uid

__all__ = [
    "ENCODINGS",
    "Encoding",
    "Parity",
    "MAX_TEXT_CHARS",
    "TECHNOLOGIES",
    "ReaderFormat",
    "parse_reader_text",
]

Encoding = Literal["hex", "decimal", "facility:number"]
Parity = Literal["included", "stripped"]

ENCODINGS: tuple[str, ...] = ("hex", "decimal", "facility:number")
PARITIES: tuple[str, ...] = ("included", "stripped")
# "wiegand" picks the layout by `bit_length`; the others name it.
TECHNOLOGIES: tuple[str, ...] = (*WIEGAND_FORMATS, "wiegand", "mifare", "iclass")

# The longest badge text we accept; anything longer is garbage (or an overflowed frame).
MAX_TEXT_CHARS = 64
# Hex readers separate bytes with these; none of them is a hex digit or the default separator.
_HEX_SEPARATORS = " -:"
_HEX_DIGITS = frozenset(string.hexdigits)


@dataclass(frozen=True, slots=True)
class ReaderFormat:
    """How a reader prints a badge: what `parse_reader_text` has to undo.

    Attributes:
        technology: the card family: "h10301", "corp1000", "wiegand" (layout chosen by
            `bit_length`), "mifare" or "iclass".
        encoding: "hex", "decimal" or "facility:number" (Wiegand only).
        bit_length: for "wiegand", 26 or 35; for "mifare", 32 or 56 to pin the UID size (None
            accepts both); otherwise None or the technology's own length.
        parity: Wiegand only: whether the printed number still has its parity bits
            ("included") or the reader dropped them ("stripped"); "facility:number" never has.
        reversed_bytes: MIFARE / iCLASS only: the reader prints the UID bytes back to front
            (many print a 4-byte UID as a little-endian number).
        prefix, suffix: fixed text the reader adds around the number; it must be there.
        separator: between facility and number in "facility:number".
    """

    technology: str = "h10301"
    encoding: Encoding = "decimal"
    bit_length: int | None = None
    parity: Parity = "included"
    reversed_bytes: bool = False
    prefix: str = ""
    suffix: str = ""
    separator: str = ":"

    def __post_init__(self) -> None:
        if self.technology not in TECHNOLOGIES:
            raise ValueError(f"technology must be one of {', '.join(TECHNOLOGIES)}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}")
        if self.parity not in PARITIES:
            raise ValueError(f"parity must be one of {', '.join(PARITIES)}")
        if not self.separator or self.separator.isalnum():
            raise ValueError("separator must be a non-empty, non-alphanumeric string")
        uid = self.technology in ("mifare", "iclass")
        if uid and self.encoding == "facility:number":
            raise ValueError("facility:number applies to Wiegand cards, not UIDs")
        if not uid and self.reversed_bytes:
            raise ValueError("reversed_bytes applies to MIFARE and iCLASS UIDs")
        if self.technology == "wiegand":
            if self.bit_length not in {f.bit_length for f in WIEGAND_FORMATS.values()}:
                raise ValueError("technology 'wiegand' needs bit_length 26 or 35")
        elif self.technology == "mifare":
            if self.bit_length not in (None, 32, 56):
                raise ValueError("a MIFARE UID has 32 or 56 bits")
        elif self.technology == "iclass":
            if self.bit_length not in (None, 64):
                raise ValueError("an iCLASS CSN has 64 bits")
        elif self.bit_length not in (None, WIEGAND_FORMATS[self.technology].bit_length):
            raise ValueError(f"{self.technology} has a fixed bit length")

    @property
    def wiegand_format(self) -> WiegandFormat | None:
        """The Wiegand layout this reader prints, or None for UID technologies."""
        if self.technology == "wiegand":
            return next(f for f in WIEGAND_FORMATS.values() if f.bit_length == self.bit_length)
        return WIEGAND_FORMATS.get(self.technology)


def parse_reader_text(text: str, fmt: ReaderFormat) -> Credential:
    """Turn one frame of reader text into the canonical credential.

    Args:
        text: what the reader printed for one badge, without the line terminator (surrounding
            whitespace is ignored).
        fmt: how this reader prints badges.

    Returns:
        The canonical `Credential`: the same badge gives the same credential whatever `fmt` is.

    Raises:
        CardFormatError: the text is not a badge in this format (bad characters, too long, out of
            range, wrong parity, a random UID). The message never contains the text.
    """
    body = _strip_framing(text, fmt)
    layout = fmt.wiegand_format
    if layout is not None:
        return _wiegand(body, fmt, layout)
    if fmt.technology == "mifare":
        sizes = (4, 7) if fmt.bit_length is None else (fmt.bit_length // 8,)
    else:
        sizes = (8,)
    uid = _uid_bytes(body, fmt, sizes)
    if fmt.reversed_bytes:
        uid = uid[::-1]
    return mifare_uid(uid) if fmt.technology == "mifare" else iclass_csn(uid)


def _strip_framing(text: str, fmt: ReaderFormat) -> str:
    if len(text) > MAX_TEXT_CHARS:
        raise CardFormatError("reader text is too long to be a badge")
    body = text.strip()
    if fmt.prefix:
        if not body.startswith(fmt.prefix):
            raise CardFormatError("reader text lacks the configured prefix")
        body = body[len(fmt.prefix) :]
    if fmt.suffix:
        if not body.endswith(fmt.suffix):
            raise CardFormatError("reader text lacks the configured suffix")
        body = body[: -len(fmt.suffix)]
    body = body.strip()
    if not body:
        raise CardFormatError("reader text is empty")
    return body


def _decimal(digits: str, what: str) -> int:
    # str.isdigit() accepts other scripts' digits and superscripts; a reader sends ASCII only.
    if not digits or not digits.isascii() or not digits.isdigit():
        raise CardFormatError(f"{what} is not a decimal number")
    return int(digits)


def _hex(body: str) -> str:
    digits = body
    if digits[:2] in ("0x", "0X"):
        digits = digits[2:]
    for sep in _HEX_SEPARATORS:
        digits = digits.replace(sep, "")
    if not digits or not _HEX_DIGITS.issuperset(digits):
        raise CardFormatError("reader text is not a hex number")
    return digits


def _wiegand(body: str, fmt: ReaderFormat, layout: WiegandFormat) -> Credential:
    if fmt.encoding == "facility:number":
        facility, sep, number = body.partition(fmt.separator)
        if not sep:
            raise CardFormatError("reader text lacks the facility:number separator")
        return layout.from_fields(
            _decimal(facility.strip(), "facility code"), _decimal(number.strip(), "card number")
        )
    value = int(_hex(body), 16) if fmt.encoding == "hex" else _decimal(body, "reader text")
    if fmt.parity == "stripped":
        return layout.from_payload(value)
    return layout.check(value)


def _uid_bytes(body: str, fmt: ReaderFormat, sizes: tuple[int, ...]) -> bytes:
    if fmt.encoding == "hex":
        digits = _hex(body)
        if len(digits) % 2:
            raise CardFormatError("a hex UID has an even number of digits")
        uid = bytes.fromhex(digits)
        if len(uid) not in sizes:
            raise CardFormatError(f"a {fmt.technology} UID has {_sizes(sizes)} bytes")
        return uid
    value = _decimal(body, "reader text")
    # A decimal UID loses its leading zero bytes: take the smallest allowed size it fits in.
    for size in sizes:
        if value < 1 << (8 * size):
            return value.to_bytes(size, "big")
    raise CardFormatError(f"a {fmt.technology} UID has {_sizes(sizes)} bytes")


def _sizes(sizes: tuple[int, ...]) -> str:
    return " or ".join(str(n) for n in sizes)
