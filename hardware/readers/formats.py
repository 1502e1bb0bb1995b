"""Card formats: turning printed badge numbers into canonical credentials, with parity checks.

HID H10301 (26-bit): bit 25 is even parity over the next 12 bits, then an 8-bit facility code and a
16-bit card number, then bit 0 is odd parity over the 12 bits before it. The published example
`00101101000000001010001000` is facility 90, card 324.
"""

from __future__ import annotations

from hardware.errors import ReaderError
from hardware.readers.base import Credential


class CardFormatError(ReaderError, ValueError):
    """The bits are not a valid card of the stated format (wrong length or parity)."""


def _ones(value: int) -> int:
    return bin(value).count("1")


def h10301(facility: int, number: int) -> Credential:
    """The H10301 26-bit credential for a facility code and card number."""
    if not 0 <= facility < 1 << 8 or not 0 <= number < 1 << 16:
        raise CardFormatError("H10301 needs facility 0-255 and card number 0-65535")
    payload = (facility << 16) | number
    even = _ones(payload >> 12) % 2
    odd = 1 - _ones(payload & 0xFFF) % 2
    bits = (even << 25) | (payload << 1) | odd
    return Credential("h10301", 26, bits.to_bytes(4, "big"))


def parse_h10301(bits: int) -> tuple[int, int]:
    """Facility code and card number of a 26-bit frame; raises CardFormatError on bad parity."""
    if bits >> 26:
        raise CardFormatError("more than 26 bits")
    payload = (bits >> 1) & 0xFFFFFF
    if (bits >> 25) & 1 != _ones(payload >> 12) % 2:
        raise CardFormatError("H10301 leading (even) parity is wrong")
    if bits & 1 != 1 - _ones(payload & 0xFFF) % 2:
        raise CardFormatError("H10301 trailing (odd) parity is wrong")
    return payload >> 16, payload & 0xFFFF
