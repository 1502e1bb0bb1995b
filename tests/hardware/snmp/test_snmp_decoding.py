"""The pure decoders on plain values: error-state bits, supply levels, text, Brother records."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.snmp import (
    CommunityCredentials,
    PrinterError,
    SnmpValue,
    SnmpVersion,
    UsmCredentials,
    oids,
    vendors,
)
from hardware.snmp.report import build_report
from hardware.snmp.values import (
    BLOCKING_ERRORS,
    ERROR_WORDS,
    LevelKind,
    decode_error_state,
    decode_lines,
    decode_text,
    encode_error_state,
    format_mac,
    supply_level,
)

# (bit, MIB name, first octet, second octet, words)
BITS = [
    (0, "lowPaper", 0x80, 0x00, "Paper low"),
    (1, "noPaper", 0x40, 0x00, "Out of paper"),
    (2, "lowToner", 0x20, 0x00, "Toner low"),
    (3, "noToner", 0x10, 0x00, "Toner empty"),
    (4, "doorOpen", 0x08, 0x00, "Door open"),
    (5, "jammed", 0x04, 0x00, "Paper jam"),
    (6, "offline", 0x02, 0x00, "Printer offline"),
    (7, "serviceRequested", 0x01, 0x00, "Service requested"),
    (8, "inputTrayMissing", 0x00, 0x80, "Paper tray missing"),
    (9, "outputTrayMissing", 0x00, 0x40, "Output tray missing"),
    (10, "markerSupplyMissing", 0x00, 0x20, "Toner or ink cartridge missing"),
    (11, "outputNearFull", 0x00, 0x10, "Output tray almost full"),
    (12, "outputFull", 0x00, 0x08, "Output tray full"),
    (13, "inputTrayEmpty", 0x00, 0x04, "Paper tray empty"),
    (14, "overduePreventMaint", 0x00, 0x02, "Maintenance overdue"),
]


@pytest.mark.parametrize(
    ("bit", "name", "first", "second", "words"), BITS, ids=[b[1] for b in BITS]
)
def test_each_error_state_bit(bit: int, name: str, first: int, second: int, words: str) -> None:
    error = PrinterError(bit)
    assert error.name.replace("_", "").lower() == name.lower()
    assert decode_error_state(bytes([first, second])) == (error,)
    assert ERROR_WORDS[error] == words
    assert encode_error_state([error]) == bytes([first, second])
    if second == 0:  # agents may send only the first octet
        assert decode_error_state(bytes([first])) == (error,)


def test_error_state_edge_cases() -> None:
    assert decode_error_state(b"") == ()
    assert decode_error_state(b"\x00") == ()
    assert decode_error_state(b"\x00\x01") == ()  # bit 15 is not defined
    assert decode_error_state(b"\xff\xff\xff") == tuple(PrinterError)  # extra octets ignored


def test_problem_is_the_first_blocking_condition() -> None:
    state = encode_error_state([PrinterError.LOW_TONER, PrinterError.JAMMED, PrinterError.OFFLINE])
    report = build_report({(*oids.HR_PRINTER_DETECTED_ERROR_STATE, 1): state})
    assert report.error_words == ("Toner low", "Paper jam", "Printer offline")
    assert report.problem == "Paper jam"
    low = build_report({(*oids.HR_PRINTER_DETECTED_ERROR_STATE, 1): b"\xa0"})  # low paper+toner
    assert low.problem is None
    assert PrinterError.LOW_PAPER not in BLOCKING_ERRORS


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=4))
def test_error_state_round_trips(raw: bytes) -> None:
    errors = decode_error_state(raw)
    assert list(errors) == sorted(errors)
    again = decode_error_state(encode_error_state(errors))
    assert again == errors


@pytest.mark.parametrize(
    ("level", "max_capacity", "kind", "percent", "words"),
    [
        (50, 100, LevelKind.MEASURED, 50, "50%"),
        (1060, 5300, LevelKind.MEASURED, 20, "20%"),
        (28407, 30000, LevelKind.MEASURED, 95, "95%"),  # rounded half up
        (150, 100, LevelKind.MEASURED, 100, "100%"),  # clamped
        (0, 0, LevelKind.MEASURED, None, "0 units"),
        (-1, 100, LevelKind.UNRESTRICTED, None, "unrestricted"),
        (-2, 100, LevelKind.UNKNOWN, None, "unknown"),
        (-3, -2, LevelKind.SOME_REMAINING, None, "some remaining"),
        (-7, 100, LevelKind.UNKNOWN, None, "unknown"),
        (9, -2, LevelKind.MEASURED, 9, "9%"),  # max unknown, level read as percent (Sharp)
        (500, -2, LevelKind.MEASURED, None, "500 units"),
    ],
)
def test_supply_levels(
    level: int, max_capacity: int, kind: LevelKind, percent: int | None, words: str
) -> None:
    measured = supply_level(level, max_capacity)
    assert (measured.kind, measured.percent, measured.words) == (kind, percent, words)


@settings(max_examples=100, deadline=None)
@given(st.integers(-(2**31), 2**31 - 1), st.integers(-(2**31), 2**31 - 1))
def test_supply_percent_is_always_0_to_100_or_none(level: int, max_capacity: int) -> None:
    measured = supply_level(level, max_capacity)
    assert measured.percent is None or 0 <= measured.percent <= 100
    if level < 0:
        assert measured.percent is None


@pytest.mark.parametrize(
    ("raw", "charset", "text"),
    [
        (b"Ready\x00\x00\x00", None, "Ready"),
        (b"Ready\x00garbage", None, "Ready"),
        ("Büro".encode(), None, "Büro"),
        ("Büro".encode("latin-1"), None, "Büro"),  # not UTF-8: Latin-1
        (b"Line\r\nTwo\tx\x07", None, "Line Two x"),
        (b"  padded   text  ", None, "padded text"),
        ("Спящий".encode("iso8859-5"), "iso8859-5", "Спящий"),
        ("Stap. Kopiën".encode("hp-roman8"), "hp-roman8", "Stap. Kopiën"),
        (b"\x85\x9f", None, ""),  # C1 control characters only
    ],
)
def test_decode_text(raw: bytes, charset: str | None, text: str) -> None:
    assert decode_text(raw, charset) == text


def test_decode_lines_keeps_lines_and_drops_the_hex_dump_line_only_on_request() -> None:
    raw = b"Black Cartridge \n38 32 37 41\x00\x00"
    assert decode_lines(raw) == ("Black Cartridge", "38 32 37 41")
    assert decode_lines(b"ENERGIESPAREN   \rTROMMEL ERSETZ. ") == (
        "ENERGIESPAREN",
        "TROMMEL ERSETZ.",
    )


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64), st.sampled_from([None, "utf-8", "hp-roman8", "iso8859-2"]))
def test_decode_text_never_raises_and_has_no_controls(raw: bytes, charset: str | None) -> None:
    text = decode_text(raw, charset)
    assert text == text.strip()
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in text)


def test_mac_addresses() -> None:
    assert format_mac(bytes.fromhex("3ca82af638ac")) == "3c:a8:2a:f6:38:ac"
    assert format_mac(b"") is None
    assert format_mac(bytes(6)) is None
    assert format_mac(b"\x01\x02\x03") is None


def test_mac_skips_loopback_and_empty_interfaces() -> None:
    values: dict[tuple[int, ...], SnmpValue] = {
        (*oids.IF_TYPE, 1): 24,
        (*oids.IF_PHYS_ADDRESS, 1): bytes.fromhex("020000000001"),
        (*oids.IF_PHYS_ADDRESS, 2): bytes(6),
        (*oids.IF_PHYS_ADDRESS, 3): bytes.fromhex("00074d6bc2a8"),
    }
    assert build_report(values).mac_address == "00:07:4d:6b:c2:a8"


def test_brother_records() -> None:
    blob = bytes.fromhex("0001040000064b" + "6f010400001e14" + "a101020414" + "ff")
    records = vendors.brother_records(blob)
    assert records[0x00].number == 0x64B
    assert records[0x6F].percent == 77
    assert records[0xA1].percent == 20  # old models: level/max bytes
    assert vendors.brother_records(b"\xff") == {}


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=80))
def test_brother_records_never_raise(blob: bytes) -> None:
    for record in vendors.brother_records(blob).values():
        assert 1 <= len(record.value) <= 255
        assert record.percent is None or record.percent >= 0


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                oids.SYS_DESCR,
                oids.SYS_OBJECT_ID,
                (*oids.HR_DEVICE_DESCR, 1),
                (*oids.HR_PRINTER_DETECTED_ERROR_STATE, 1),
                (*oids.PRT_MARKER_SUPPLIES, 9, 1, 1),
                (*oids.PRT_MARKER_SUPPLIES, 8, 1, 1),
                (*oids.PRT_MARKER_SUPPLIES, 6, 1, 1),
                (*oids.PRT_ALERT, 7, 1, 1),
                vendors.BROTHER_COUNTERS,
                vendors.BROTHER_MAINTENANCE,
                vendors.BROTHER_DEVICE_ID,
            ]
        ),
        st.one_of(
            st.integers(-(2**31), 2**32), st.binary(max_size=40), st.tuples(st.integers(0, 99))
        ),
        max_size=11,
    )
)
def test_build_report_never_raises_on_any_value_types(
    values: dict[tuple[int, ...], int | bytes | tuple[int, ...]],
) -> None:
    report = build_report(values)
    report.to_json()


def test_model_and_make_fallbacks() -> None:
    sys_descr = b"HP ETHERNET MULTI-ENVIRONMENT,SN:VNB3J99999,FN:1F31B6C,PID:HP Color LaserJet Pro"
    report = build_report({oids.SYS_DESCR: sys_descr})
    assert (report.make, report.model, report.serial_number) == (
        "HP",
        "HP Color LaserJet Pro",
        "VNB3J99999",
    )
    generic = build_report(
        {
            (*oids.HR_DEVICE_DESCR, 1): b"Generic 28C-1",
            (*oids.PRT_GENERAL_PRINTER_NAME, 1): b"Floor 2 printer",
            oids.SYS_OBJECT_ID: (1, 3, 6, 1, 4, 1, 18334, 1),
        }
    )
    assert (generic.make, generic.model) == ("Konica Minolta", "Floor 2 printer")
    assert build_report({}).model is None


def test_credentials_hide_secrets() -> None:
    community = CommunityCredentials("s3cret-community", SnmpVersion.V1)
    user = UsmCredentials("admin", auth_key="auth-pass-phrase", priv_key="priv-pass-phrase")
    for credentials in (community, user):
        assert "pass-phrase" not in repr(credentials) and "s3cret" not in repr(credentials)
    assert user.security_level == "authPriv"
    with pytest.raises(ValueError, match="8 characters"):
        UsmCredentials("admin", auth_key="short")
    with pytest.raises(ValueError, match="authPriv"):
        UsmCredentials("admin", priv_key="priv-pass-phrase")
    with pytest.raises(ValueError, match="v3"):
        CommunityCredentials("public", SnmpVersion.V3)
