"""Reader output parsing: every way a reader prints a badge gives the same credential."""

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.readers.formats import CardFormatError, corp1000, h10301, iclass_csn, mifare_uid
from hardware.readers.text import ReaderFormat, parse_reader_text

PROPERTY = settings(max_examples=150, deadline=None)

BADGE = h10301(90, 324)  # bits 00101101000000001010001000
BITS = int.from_bytes(BADGE.raw, "big")
PAYLOAD = (90 << 16) | 324


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        (str(BITS), ReaderFormat()),
        (f"{BITS:07X}", ReaderFormat(encoding="hex")),
        (f"{BITS:08x}\r\n", ReaderFormat(encoding="hex")),
        (str(PAYLOAD), ReaderFormat(parity="stripped")),
        (f"{PAYLOAD:06X}", ReaderFormat(encoding="hex", parity="stripped")),
        ("90:324", ReaderFormat(encoding="facility:number")),
        ("090:00324", ReaderFormat(encoding="facility:number")),
        ("90-324", ReaderFormat(encoding="facility:number", separator="-")),
        (f"ID:{BITS}#", ReaderFormat(prefix="ID:", suffix="#")),
        (str(BITS), ReaderFormat(technology="wiegand", bit_length=26)),
    ],
)
def test_one_h10301_badge_every_way_a_reader_prints_it(text: str, fmt: ReaderFormat) -> None:
    assert parse_reader_text(text, fmt) == BADGE


def test_corporate_1000_every_way() -> None:
    badge = corp1000(1234, 567890)
    bits = int.from_bytes(badge.raw, "big")
    payload = (1234 << 20) | 567890
    for text, fmt in [
        (str(bits), ReaderFormat(technology="corp1000")),
        (f"{bits:X}", ReaderFormat(technology="corp1000", encoding="hex")),
        (str(payload), ReaderFormat(technology="corp1000", parity="stripped")),
        ("1234:567890", ReaderFormat(technology="corp1000", encoding="facility:number")),
        (str(bits), ReaderFormat(technology="wiegand", bit_length=35)),
    ]:
        assert parse_reader_text(text, fmt) == badge


def test_mifare_every_way() -> None:
    badge = mifare_uid(bytes.fromhex("04a1b2c3"))
    little_endian = int.from_bytes(bytes.fromhex("04a1b2c3"), "little")
    for text, fmt in [
        ("04A1B2C3", ReaderFormat(technology="mifare", encoding="hex")),
        ("04:a1:b2:c3", ReaderFormat(technology="mifare", encoding="hex")),
        ("0x04a1b2c3", ReaderFormat(technology="mifare", encoding="hex")),
        ("C3B2A104", ReaderFormat(technology="mifare", encoding="hex", reversed_bytes=True)),
        (str(0x04A1B2C3), ReaderFormat(technology="mifare")),
        (str(little_endian), ReaderFormat(technology="mifare", reversed_bytes=True)),
    ]:
        assert parse_reader_text(text, fmt) == badge


def test_seven_byte_uid_decimal_and_hex() -> None:
    uid = bytes.fromhex("04a1b2c3d4e5f6")
    badge = mifare_uid(uid)
    fmt = ReaderFormat(technology="mifare", bit_length=56)
    assert parse_reader_text(str(int.from_bytes(uid, "big")), fmt) == badge
    assert (
        parse_reader_text(uid.hex(" "), ReaderFormat(technology="mifare", encoding="hex")) == badge
    )


def test_iclass_csn_either_order() -> None:
    csn = bytes.fromhex("75d0e013feff12e0")
    fmt = ReaderFormat(technology="iclass", encoding="hex")
    assert parse_reader_text(csn.hex(), fmt) == iclass_csn(csn)
    assert parse_reader_text(csn[::-1].hex(), fmt) == iclass_csn(csn)


@pytest.mark.parametrize(
    ("text", "fmt", "reason"),
    [
        ("", ReaderFormat(), "empty"),
        ("12345x", ReaderFormat(), "not a decimal"),
        ("١٢٣", ReaderFormat(), "not a decimal"),  # Arabic-Indic digits: isdigit() but not ASCII
        (str(BITS ^ 1), ReaderFormat(), "parity"),
        (str(1 << 40), ReaderFormat(), "more than 26 bits"),
        ("9" * 80, ReaderFormat(), "too long"),
        ("77:999999", ReaderFormat(encoding="facility:number"), "card number 0-65535"),
        ("77999", ReaderFormat(encoding="facility:number"), "separator"),
        ("04a1b2c", ReaderFormat(technology="mifare", encoding="hex"), "even number"),
        ("04a1b2c3d4", ReaderFormat(technology="mifare", encoding="hex"), "4 or 7 bytes"),
        ("08a1b2c3", ReaderFormat(technology="mifare", encoding="hex"), "random UID"),
        ("04g1b2c3", ReaderFormat(technology="mifare", encoding="hex"), "not a hex"),
        (f"X{BITS}", ReaderFormat(prefix="ID:"), "prefix"),
    ],
)
def test_garbage_is_refused_without_echoing_digits(
    text: str, fmt: ReaderFormat, reason: str
) -> None:
    with pytest.raises(CardFormatError, match=reason) as caught:
        parse_reader_text(text, fmt)
    message = str(caught.value)
    for run in ("324", "7999", "a1b2", "99999", str(BITS)):
        assert run not in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None


@given(st.text(max_size=80))
@PROPERTY
def test_any_text_either_parses_or_is_a_card_format_error(text: str) -> None:
    for fmt in (
        ReaderFormat(),
        ReaderFormat(encoding="hex", parity="stripped"),
        ReaderFormat(encoding="facility:number"),
        ReaderFormat(technology="mifare", encoding="hex"),
        ReaderFormat(technology="iclass"),
    ):
        with contextlib.suppress(CardFormatError):
            parse_reader_text(text, fmt)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"technology": "em4100"},
        {"encoding": "base64"},
        {"parity": "odd"},
        {"technology": "mifare", "encoding": "facility:number"},
        {"reversed_bytes": True},
        {"technology": "wiegand"},
        {"technology": "mifare", "bit_length": 40},
        {"technology": "h10301", "bit_length": 35},
        {"separator": "x"},
    ],
)
def test_reader_format_refuses_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ReaderFormat(**kwargs)  # type: ignore[arg-type]
