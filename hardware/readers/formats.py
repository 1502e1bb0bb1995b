"""Card formats: the bits a badge carries, checked and turned into canonical credentials.

Pure functions, no I/O. Every function here returns a `Credential` whose `raw` is what the card
itself carries, so the same badge gives the same credential whichever reader read it:

* Wiegand formats keep their parity bits in `raw` (the full 26 or 35 bits as sent on the wire);
  a reader that strips parity has it recomputed (`WiegandFormat.from_payload`) before this point.
* MIFARE / ISO 14443-A UIDs keep the order the card sends them in (UID0 first: for a 7-byte UID
  that is the manufacturer byte, 0x04 for NXP). A reader that prints them reversed is undone by
  the caller (`ReaderFormat.reversed_bytes`).
* iCLASS CSNs keep the order the card sends them in, which ends with the HID manufacturer bytes
  `12 E0`; a CSN printed the other way round (starting `E0`) is turned back.

Wiegand layouts (bit 0 is the last bit on the wire, the right-most):

* HID H10301, 26 bits: bit 25 even parity over bits 13-24; bits 17-24 facility (8); bits 1-16
  card number (16); bit 0 odd parity over bits 1-12. Published example
  `00101101000000001010001000` is facility 90, card 324.
* HID Corporate 1000, 35 bits: bit 34 odd parity over bits 0-33; bit 33 even parity over bit 32
  and the bits of mask 0xB6DB6DB6; bits 21-32 company (12); bits 1-20 card number (20); bit 0 odd
  parity over bits 32-33 and the bits of mask 0x6DB6DB6C (the proxmark3 `C1k35s` layout; counted
  from the left, bit 2 covers 3,4,6,7,...,33,34 and bit 35 covers 2,3,5,6,...,32,33, as HID
  documents it).

Errors are `CardFormatError` with messages that never contain the number.
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.readers.base import Credential
from hardware.readers.errors import CardFormatError

__all__ = [
    "CORP1000",
    "H10301",
    "WIEGAND_FORMATS",
    "CardFormatError",
    "WiegandFormat",
    "corp1000",
    "h10301",
    "iclass_csn",
    "mifare_uid",
    "parse_corp1000",
    "parse_h10301",
    "wiegand",
]


def _parity(value: int) -> int:
    return value.bit_count() & 1


@dataclass(frozen=True, slots=True)
class ParityBit:
    """One parity bit: its position, the bits it covers, and whether the count must be odd."""

    position: int
    mask: int
    odd: bool


@dataclass(frozen=True, slots=True)
class WiegandFormat:
    """A Wiegand card layout: facility and number fields at bit 1 and up, parity around them.

    `parity` is in computation order: a later bit may cover an earlier one (Corporate 1000's
    leading bit covers the two others).
    """

    technology: str
    bit_length: int
    facility_bits: int
    number_bits: int
    parity: tuple[ParityBit, ...]

    @property
    def payload_bits(self) -> int:
        """Facility and number together: what a reader prints when it strips parity."""
        return self.facility_bits + self.number_bits

    def from_payload(self, payload: int) -> Credential:
        """The credential for `payload` (facility and number, no parity), parity added."""
        if not 0 <= payload < 1 << self.payload_bits:
            raise CardFormatError(f"{self.technology} needs a {self.payload_bits}-bit payload")
        bits = payload << 1
        for bit in self.parity:
            bits |= (_parity(bits & bit.mask) ^ bit.odd) << bit.position
        return Credential(self.technology, self.bit_length, _to_bytes(bits, self.bit_length))

    def from_fields(self, facility: int, number: int) -> Credential:
        """The credential for a facility (company) code and card number."""
        if not 0 <= facility < 1 << self.facility_bits or not 0 <= number < 1 << self.number_bits:
            raise CardFormatError(
                f"{self.technology} needs facility 0-{(1 << self.facility_bits) - 1} "
                f"and card number 0-{(1 << self.number_bits) - 1}"
            )
        return self.from_payload((facility << self.number_bits) | number)

    def check(self, bits: int) -> Credential:
        """The credential for a full frame (parity included); CardFormatError on bad parity."""
        if not 0 <= bits < 1 << self.bit_length:
            raise CardFormatError(f"{self.technology} frame has more than {self.bit_length} bits")
        for bit in self.parity:
            expected = _parity(bits & bit.mask) ^ bit.odd
            if (bits >> bit.position) & 1 != expected:
                kind = "odd" if bit.odd else "even"
                raise CardFormatError(
                    f"{self.technology} parity bit {bit.position} ({kind}) is wrong", "parity"
                )
        return Credential(self.technology, self.bit_length, _to_bytes(bits, self.bit_length))

    def fields(self, bits: int) -> tuple[int, int]:
        """Facility (company) code and card number of a full frame, parity checked."""
        self.check(bits)
        payload = (bits >> 1) & ((1 << self.payload_bits) - 1)
        return payload >> self.number_bits, payload & ((1 << self.number_bits) - 1)


def _to_bytes(bits: int, bit_length: int) -> bytes:
    return bits.to_bytes((bit_length + 7) // 8, "big")


H10301 = WiegandFormat(
    "h10301",
    26,
    facility_bits=8,
    number_bits=16,
    parity=(
        ParityBit(25, 0xFFF << 13, odd=False),
        ParityBit(0, 0xFFF << 1, odd=True),
    ),
)

CORP1000 = WiegandFormat(
    "corp1000",
    35,
    facility_bits=12,
    number_bits=20,
    parity=(
        ParityBit(33, (1 << 32) | 0xB6DB6DB6, odd=False),
        ParityBit(0, (0b11 << 32) | 0x6DB6DB6C, odd=True),
        ParityBit(34, (1 << 34) - 1, odd=True),
    ),
)

WIEGAND_FORMATS: dict[str, WiegandFormat] = {f.technology: f for f in (H10301, CORP1000)}
_BY_LENGTH: dict[int, WiegandFormat] = {f.bit_length: f for f in WIEGAND_FORMATS.values()}


def h10301(facility: int, number: int) -> Credential:
    """The H10301 26-bit credential for a facility code and card number."""
    return H10301.from_fields(facility, number)


def parse_h10301(bits: int) -> tuple[int, int]:
    """Facility code and card number of a 26-bit frame; raises CardFormatError on bad parity."""
    return H10301.fields(bits)


def corp1000(company: int, number: int) -> Credential:
    """The Corporate 1000 35-bit credential for a company code and card number."""
    return CORP1000.from_fields(company, number)


def parse_corp1000(bits: int) -> tuple[int, int]:
    """Company code and card number of a 35-bit frame; raises CardFormatError on bad parity."""
    return CORP1000.fields(bits)


def wiegand(bits: int, bit_length: int) -> Credential:
    """The credential for a full Wiegand frame of a known length (26 or 35), parity checked."""
    layout = _BY_LENGTH.get(bit_length)
    if layout is None:
        known = ", ".join(str(n) for n in sorted(_BY_LENGTH))
        raise CardFormatError(f"no Wiegand format of {bit_length} bits (known: {known})")
    return layout.check(bits)


# ISO/IEC 14443-3 6.5.4: a single-size UID whose UID0 is 0x08 is a random ID, drawn afresh on
# every activation; 0x88 is the cascade tag and never a UID0.
_RANDOM_UID0 = 0x08
_CASCADE_TAG = 0x88


def mifare_uid(uid: bytes) -> Credential:
    """The credential for an ISO 14443-A (MIFARE) UID of 4 or 7 bytes, in the card's order.

    Raises:
        CardFormatError: another length; a random 4-byte UID (first byte 0x08), which changes on
            every tap and so cannot identify anyone; a cascade tag as the first byte.
    """
    if len(uid) not in (4, 7):
        raise CardFormatError("a MIFARE UID has 4 or 7 bytes", "unsupported")
    if len(uid) == 4 and uid[0] == _RANDOM_UID0:
        raise CardFormatError(
            "this card gives a random UID on every tap (first byte 0x08), so it cannot be "
            "identified by its UID: enrol another card or configure the reader to read a "
            "stored number",
            "unsupported",
        )
    if uid[0] == _CASCADE_TAG:
        raise CardFormatError("a MIFARE UID never starts with the cascade tag 0x88")
    return Credential("mifare", len(uid) * 8, bytes(uid))


# The last two bytes of an iCLASS CSN, in the card's order, are HID's manufacturer code.
_ICLASS_MARKER = 0xE0


def iclass_csn(csn: bytes) -> Credential:
    """The credential for an 8-byte iCLASS CSN; a CSN printed back to front is turned around."""
    if len(csn) != 8:
        raise CardFormatError("an iCLASS CSN has 8 bytes", "unsupported")
    if csn[0] == _ICLASS_MARKER and csn[-1] != _ICLASS_MARKER:
        # Some readers print the CSN as ISO 15693 UIDs are printed, most significant byte
        # (E0) first; the card sends it the other way round, which is our canonical order.
        csn = csn[::-1]
    return Credential("iclass", 64, bytes(csn))
