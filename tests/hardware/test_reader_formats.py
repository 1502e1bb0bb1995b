"""Card formats: Corporate 1000 against HID's own description, MIFARE UIDs, iCLASS CSNs."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.readers.formats import (
    CORP1000,
    H10301,
    CardFormatError,
    corp1000,
    h10301,
    iclass_csn,
    mifare_uid,
    parse_corp1000,
    wiegand,
)

PROPERTY = settings(max_examples=150, deadline=None)


def reference_corp1000(company: int, number: int) -> str:
    """Corporate 1000 written from HID's description, counting bits 1-35 from the left.

    Bit 1: odd parity over bits 2-35; bit 2: even parity over 3,4,6,7,...,33,34; bits 3-14
    company; bits 15-34 card number; bit 35: odd parity over 2,3,5,6,...,32,33.
    """
    bits = [0] * 36  # index 1..35
    for i, b in enumerate(format(company, "012b")):
        bits[3 + i] = int(b)
    for i, b in enumerate(format(number, "020b")):
        bits[15 + i] = int(b)
    bits[2] = sum(bits[p] for p in range(3, 35) if p % 3 != 2) % 2
    bits[35] = 1 - sum(bits[p] for p in range(2, 34) if p % 3 != 1) % 2
    bits[1] = 1 - sum(bits[2:36]) % 2
    return "".join(map(str, bits[1:]))


@given(st.integers(0, 0xFFF), st.integers(0, 0xFFFFF))
@PROPERTY
def test_corp1000_matches_hids_description(company: int, number: int) -> None:
    credential = corp1000(company, number)
    bits = int.from_bytes(credential.raw, "big")
    assert format(bits, "035b") == reference_corp1000(company, number)
    assert parse_corp1000(bits) == (company, number)
    assert credential.canonical() == f"corp1000/35/{credential.raw.hex()}"


@given(st.integers(0, 0xFFF), st.integers(0, 0xFFFFF), st.integers(0, 34))
@PROPERTY
def test_corp1000_catches_every_single_bit_error(company: int, number: int, flip: int) -> None:
    bits = int.from_bytes(corp1000(company, number).raw, "big") ^ (1 << flip)
    with pytest.raises(CardFormatError, match="parity"):
        parse_corp1000(bits)


@given(st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 25))
@PROPERTY
def test_h10301_catches_every_single_bit_error(facility: int, number: int, flip: int) -> None:
    bits = int.from_bytes(h10301(facility, number).raw, "big") ^ (1 << flip)
    with pytest.raises(CardFormatError):
        H10301.fields(bits)


def test_payload_without_parity_gets_the_same_credential() -> None:
    assert H10301.from_payload((90 << 16) | 324) == h10301(90, 324)
    assert CORP1000.from_payload((1234 << 20) | 567890) == corp1000(1234, 567890)


def test_wiegand_picks_the_layout_by_length() -> None:
    badge = corp1000(7, 42)
    assert wiegand(int.from_bytes(badge.raw, "big"), 35) == badge
    with pytest.raises(CardFormatError, match="no Wiegand format of 37 bits"):
        wiegand(1, 37)


@pytest.mark.parametrize(("company", "number"), [(4096, 1), (-1, 1), (1, 1 << 20)])
def test_corp1000_refuses_out_of_range(company: int, number: int) -> None:
    with pytest.raises(CardFormatError):
        corp1000(company, number)


def test_mifare_uids_of_4_and_7_bytes() -> None:
    assert mifare_uid(bytes.fromhex("04a1b2c3")).canonical() == "mifare/32/04a1b2c3"
    assert mifare_uid(bytes.fromhex("04a1b2c3d4e5f6")).canonical() == "mifare/56/04a1b2c3d4e5f6"


def test_random_4_byte_uid_is_refused_with_a_clear_reason() -> None:
    with pytest.raises(CardFormatError, match="random UID") as caught:
        mifare_uid(bytes.fromhex("08123456"))
    assert "123456" not in str(caught.value)


@pytest.mark.parametrize("uid", ["04a1b2", "04a1b2c3d4", "88a1b2c3", ""])
def test_malformed_uids_are_refused(uid: str) -> None:
    with pytest.raises(CardFormatError):
        mifare_uid(bytes.fromhex(uid))


def test_iclass_csn_in_either_order_is_one_credential() -> None:
    card_order = bytes.fromhex("75d0e013feff12e0")
    assert iclass_csn(card_order).canonical() == "iclass/64/75d0e013feff12e0"
    assert iclass_csn(card_order[::-1]) == iclass_csn(card_order)
    with pytest.raises(CardFormatError, match="8 bytes"):
        iclass_csn(card_order[:7])
