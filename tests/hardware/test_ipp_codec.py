"""The IPP codec: exact bytes, round trips, helpers, request rules, malformed input, limits."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hardware.ipp.codec import (
    Attribute,
    AttributeGroup,
    Collection,
    DecodeLimits,
    IppEncodeError,
    IppLimitError,
    IppMessage,
    IppParseError,
    IppRequestError,
    IppTruncatedError,
    RangeOfInteger,
    Resolution,
    StringWithLanguage,
    Value,
    decode_message,
    encode_message,
    validate_request,
)
from hardware.ipp.enums import JobState, Operation, StatusCode, Tag


def field(tag: int, name: bytes, value: bytes) -> bytes:
    return (
        bytes([tag]) + struct.pack(">h", len(name)) + name + struct.pack(">h", len(value)) + value
    )


HEADER = bytes([2, 0, 0x00, 0x0B]) + struct.pack(">i", 7)
OPS = bytes([Tag.OPERATION_ATTRIBUTES])
END = bytes([Tag.END_OF_ATTRIBUTES])


def test_request_encodes_to_the_exact_rfc8010_bytes():
    message = IppMessage.request(
        Operation.GET_PRINTER_ATTRIBUTES,
        7,
        Attribute.of("printer-uri", Tag.URI, "ipp://h/ipp/print"),
    )
    expected = (
        HEADER
        + OPS
        + field(Tag.CHARSET, b"attributes-charset", b"utf-8")
        + field(Tag.NATURAL_LANGUAGE, b"attributes-natural-language", b"en")
        + field(Tag.URI, b"printer-uri", b"ipp://h/ipp/print")
        + END
    )
    assert encode_message(message) == expected


def test_additional_values_have_name_length_zero():
    message = IppMessage(0x0B, 1, [AttributeGroup(1, [Attribute.of("x", Tag.KEYWORD, "a", "b")])])
    body = encode_message(message)
    assert field(Tag.KEYWORD, b"x", b"a") + field(Tag.KEYWORD, b"", b"b") in body


def full_message() -> IppMessage:
    media_col = Collection(
        [
            Attribute.of(
                "media-size",
                Tag.BEG_COLLECTION,
                Collection(
                    [
                        Attribute.of("x-dimension", Tag.INTEGER, 21000),
                        Attribute.of("y-dimension", Tag.INTEGER, 29700),
                    ]
                ),
            ),
            Attribute.of("media-type", Tag.KEYWORD, "stationery", "labels"),
        ]
    )
    message = IppMessage.response(
        StatusCode.SUCCESSFUL_OK,
        42,
        Attribute.of("status-message", Tag.TEXT_WITHOUT_LANGUAGE, "ça va ✓"),
    )
    message.add_group(
        Tag.PRINTER_ATTRIBUTES,
        Attribute.of("printer-state", Tag.ENUM, 3),
        Attribute.of("copies-default", Tag.INTEGER, -5, 2**31 - 1),
        Attribute.of("color-supported", Tag.BOOLEAN, True, False),
        Attribute.of(
            "printer-current-time", Tag.DATE_TIME, datetime(2024, 5, 1, 12, 30, 5, 300000, UTC)
        ),
        Attribute.of("printer-resolution-default", Tag.RESOLUTION, Resolution(600, 1200, 3)),
        Attribute.of("copies-supported", Tag.RANGE_OF_INTEGER, RangeOfInteger(1, 99)),
        Attribute.of(
            "printer-info", Tag.TEXT_WITH_LANGUAGE, StringWithLanguage("fr", "Imprimante")
        ),
        Attribute.of("printer-name", Tag.NAME_WITH_LANGUAGE, StringWithLanguage("en", "P1")),
        Attribute.of("media-col-default", Tag.BEG_COLLECTION, media_col),
        Attribute.of("printer-alert", Tag.OCTET_STRING, b"\x00\xffcode=other"),
        Attribute.of("printer-uri-supported", Tag.URI, "ipps://h/ipp/print"),
        Attribute.of("uri-scheme", Tag.URI_SCHEME, "ipps"),
        Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, "application/pdf"),
        Attribute.of("printer-geo-location", Tag.UNKNOWN, None),
        Attribute.of("media-ready", Tag.NO_VALUE, None),
        Attribute("mixed", [Value(Tag.INTEGER, 1), Value(Tag.KEYWORD, "k"), Value(0x39, b"?")]),
    )
    message.add_group(Tag.UNSUPPORTED_ATTRIBUTES)
    return message


def test_every_value_syntax_round_trips_and_document_data_is_left_alone():
    message = full_message()
    body = encode_message(message) + b"%PDF-1.7 document"
    decoded, used = decode_message(body)
    assert decoded == message
    assert body[used:] == b"%PDF-1.7 document"


def test_decoded_tags_are_enums_when_known_and_ints_otherwise():
    decoded, _ = decode_message(encode_message(full_message()))
    mixed = decoded.get(Tag.PRINTER_ATTRIBUTES, "mixed")
    assert mixed is not None
    assert [type(v.tag) for v in mixed.values] == [Tag, Tag, int]
    assert decoded.status_code is StatusCode.SUCCESSFUL_OK


def test_date_time_keeps_offset_and_decisecond():
    when = datetime(1999, 12, 31, 23, 59, 59, 900000, timezone(-timedelta(hours=5, minutes=30)))
    message = IppMessage.response(
        StatusCode.SUCCESSFUL_OK, 1, Attribute.of("t", Tag.DATE_TIME, when)
    )
    decoded, _ = decode_message(encode_message(message))
    got = decoded.get(Tag.OPERATION_ATTRIBUTES, "t")
    assert got is not None
    assert got.first == when
    assert isinstance(got.first, datetime)
    assert got.first.utcoffset() == when.utcoffset()


def test_typed_helpers():
    message = full_message()
    assert message.get_int(Tag.PRINTER_ATTRIBUTES, "printer-state") == 3
    assert message.get_int(Tag.PRINTER_ATTRIBUTES, "color-supported") is None  # a bool, not an int
    printer = message.group(Tag.PRINTER_ATTRIBUTES)
    assert printer is not None
    assert printer.get_ints("copies-default") == [-5, 2**31 - 1]
    assert printer.get_bool("color-supported") is True
    assert printer.get_strs("printer-info") == ["Imprimante"]
    assert message.get_str(Tag.OPERATION_ATTRIBUTES, "status-message") == "ça va ✓"
    assert message.get_strs(Tag.JOB_ATTRIBUTES, "anything") == []
    media = printer.get("media-col-default")
    assert media is not None
    assert isinstance(media.first, Collection)
    size = media.first.get("media-size")
    assert size is not None
    assert isinstance(size.first, Collection)
    assert size.first.get("x-dimension") == Attribute.of("x-dimension", Tag.INTEGER, 21000)
    assert len(message.groups_of(Tag.UNSUPPORTED_ATTRIBUTES)) == 1


def test_int_enums_encode_as_their_value():
    message = IppMessage.response(
        StatusCode.SUCCESSFUL_OK, 1, Attribute.of("job-state", Tag.ENUM, JobState.COMPLETED)
    )
    decoded, _ = decode_message(encode_message(message))
    assert decoded.get_int(Tag.OPERATION_ATTRIBUTES, "job-state") == 9


def test_request_starts_with_charset_then_natural_language():
    message = IppMessage.request(Operation.PRINT_JOB, 1, natural_language="de")
    names = [a.name for a in message.groups[0].attributes]
    assert names == ["attributes-charset", "attributes-natural-language"]
    assert message.operation is Operation.PRINT_JOB
    validate_request(message)


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda m: setattr(m, "version", (0, 0)), StatusCode.SERVER_ERROR_VERSION_NOT_SUPPORTED),
        (lambda m: setattr(m, "request_id", 0), StatusCode.CLIENT_ERROR_BAD_REQUEST),
        (lambda m: m.groups[0].attributes.reverse(), StatusCode.CLIENT_ERROR_BAD_REQUEST),
        (lambda m: m.groups[0].attributes.pop(0), StatusCode.CLIENT_ERROR_BAD_REQUEST),
        (lambda m: m.groups.clear(), StatusCode.CLIENT_ERROR_BAD_REQUEST),
        (
            lambda m: m.groups[0].attributes.__setitem__(
                0, Attribute.of("attributes-charset", Tag.CHARSET, "iso-8859-1")
            ),
            StatusCode.CLIENT_ERROR_CHARSET_NOT_SUPPORTED,
        ),
    ],
)
def test_validate_request_names_the_status_to_answer(mutate, status):
    message = IppMessage.request(Operation.GET_JOBS, 3)
    mutate(message)
    with pytest.raises(IppRequestError) as info:
        validate_request(message)
    assert info.value.status == status


# --- malformed input ---------------------------------------------------------------------------


def test_every_proper_prefix_is_truncated():
    body = encode_message(full_message())
    for end in range(len(body)):
        with pytest.raises(IppTruncatedError):
            decode_message(body[:end])


@pytest.mark.parametrize(
    "body",
    [
        HEADER + OPS + b"\x44\xff\xff",  # negative name-length
        HEADER + OPS + field(Tag.KEYWORD, b"a", b"b")[:4] + b"\x80\x00",  # negative value-length
        HEADER + b"\x00" + END,  # reserved delimiter
        HEADER + field(Tag.KEYWORD, b"a", b"b") + END,  # value before any group
        HEADER + OPS + field(Tag.KEYWORD, b"", b"b") + END,  # additional value, no attribute
        HEADER + OPS + field(Tag.INTEGER, b"n", b"\x00\x01") + END,  # integer of 2 octets
        HEADER + OPS + field(Tag.BOOLEAN, b"b", b"\x02") + END,  # boolean neither 0 nor 1
        HEADER + OPS + field(Tag.RESOLUTION, b"r", b"\x00" * 8) + END,
        HEADER + OPS + field(Tag.RANGE_OF_INTEGER, b"r", b"\x00" * 9) + END,
        HEADER + OPS + field(Tag.DATE_TIME, b"d", b"\x07\xe8\x0d\x01" + b"\x00" * 4 + b"+\x00\x00"),
        HEADER + OPS + field(Tag.DATE_TIME, b"d", b"\x07\xe8\x01\x01" + b"\x00" * 4 + b"*\x00\x00"),
        HEADER + OPS + field(Tag.TEXT_WITH_LANGUAGE, b"t", b"\x00\x05en\x00\x00"),  # overrun
        HEADER + OPS + field(Tag.TEXT_WITH_LANGUAGE, b"t", b"\x00\x02en\x00\x01ab"),  # short text
        HEADER + OPS + field(Tag.TEXT_WITH_LANGUAGE, b"t", b"\x00"),
        HEADER + OPS + field(Tag.KEYWORD, b"k", b"\xff\xfe") + END,  # not UTF-8
        HEADER + OPS + field(Tag.KEYWORD, b"\xc3", b"k") + END,  # name not UTF-8
        HEADER + OPS + field(Tag.END_COLLECTION, b"", b"") + END,  # end outside a collection
        HEADER + OPS + field(Tag.MEMBER_ATTR_NAME, b"", b"m") + END,
        # Collection member fields must have name-length 0 (RFC 8010 §3.1.6).
        HEADER
        + OPS
        + field(Tag.BEG_COLLECTION, b"c", b"")
        + field(Tag.MEMBER_ATTR_NAME, b"x", b"m"),
        # A value before any memberAttrName.
        HEADER + OPS + field(Tag.BEG_COLLECTION, b"c", b"") + field(Tag.INTEGER, b"", b"\0\0\0\1"),
        # An empty member name.
        HEADER + OPS + field(Tag.BEG_COLLECTION, b"c", b"") + field(Tag.MEMBER_ATTR_NAME, b"", b""),
        # A group delimiter where endCollection should be.
        HEADER + OPS + field(Tag.BEG_COLLECTION, b"c", b"") + END,
    ],
)
def test_malformed_input_is_a_parse_error_with_bad_request(body):
    with pytest.raises(IppParseError) as info:
        decode_message(body)
    assert info.value.status == StatusCode.CLIENT_ERROR_BAD_REQUEST
    assert isinstance(info.value, ValueError)


def test_value_longer_than_the_limit_is_value_too_long():
    body = HEADER + OPS + field(Tag.TEXT_WITHOUT_LANGUAGE, b"t", b"x" * 300) + END
    with pytest.raises(IppLimitError) as info:
        decode_message(body, limits=DecodeLimits(max_value_bytes=255))
    assert info.value.status == StatusCode.CLIENT_ERROR_REQUEST_VALUE_TOO_LONG
    decode_message(body)  # within the default 32767


def test_header_over_the_limit_is_entity_too_large_even_when_truncated():
    body = HEADER + OPS + field(Tag.TEXT_WITHOUT_LANGUAGE, b"t", b"x" * 2000) * 10
    with pytest.raises(IppLimitError) as info:
        decode_message(body, limits=DecodeLimits(max_header_bytes=4096))
    assert info.value.status == StatusCode.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE


def test_too_many_attributes_and_values():
    many = HEADER + OPS + b"".join(field(Tag.INTEGER, b"a%d" % i, b"\0\0\0\1") for i in range(50))
    with pytest.raises(IppLimitError):
        decode_message(many + END, limits=DecodeLimits(max_attributes=49))
    decode_message(many + END, limits=DecodeLimits(max_attributes=50))
    values = HEADER + OPS + field(Tag.INTEGER, b"a", b"\0\0\0\1")
    values += field(Tag.INTEGER, b"", b"\0\0\0\2") * 20
    with pytest.raises(IppLimitError):
        decode_message(values + END, limits=DecodeLimits(max_values=20))


def nested(depth: int) -> bytes:
    body = b""
    for level in range(depth):
        body += field(Tag.BEG_COLLECTION, b"c" if level == 0 else b"", b"")
        body += field(Tag.MEMBER_ATTR_NAME, b"", b"m")
    body += field(Tag.INTEGER, b"", b"\0\0\0\1")
    body += field(Tag.END_COLLECTION, b"", b"") * depth
    return HEADER + OPS + body + END


def test_collections_nested_too_deep_are_refused():
    decode_message(nested(4), limits=DecodeLimits(max_collection_depth=4))
    with pytest.raises(IppLimitError):
        decode_message(nested(5), limits=DecodeLimits(max_collection_depth=4))
    with pytest.raises(IppLimitError):
        decode_message(nested(1000))  # the default limit stops recursion long before Python's


def test_out_of_band_value_octets_are_ignored():
    decoded, _ = decode_message(HEADER + OPS + field(Tag.UNKNOWN, b"x", b"junk") + END)
    assert decoded.get(Tag.OPERATION_ATTRIBUTES, "x") == Attribute.of("x", Tag.UNKNOWN, None)


def test_leap_second_is_clamped():
    raw = struct.pack(">HBBBBBBcBB", 2016, 12, 31, 23, 59, 60, 0, b"+", 0, 0)
    decoded, _ = decode_message(HEADER + OPS + field(Tag.DATE_TIME, b"t", raw) + END)
    assert decoded.get(Tag.OPERATION_ATTRIBUTES, "t") == Attribute.of(
        "t", Tag.DATE_TIME, datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)
    )


# --- what cannot be encoded --------------------------------------------------------------------


@pytest.mark.parametrize(
    "attribute",
    [
        Attribute.of("n", Tag.INTEGER, True),
        Attribute.of("n", Tag.INTEGER, 2**31),
        Attribute.of("n", Tag.ENUM, "3"),
        Attribute.of("b", Tag.BOOLEAN, 1),
        Attribute.of("k", Tag.KEYWORD, b"bytes"),
        Attribute.of("o", Tag.OCTET_STRING, "text"),
        Attribute.of("t", Tag.TEXT_WITHOUT_LANGUAGE, "x" * 40000),
        Attribute.of("r", Tag.RESOLUTION, RangeOfInteger(1, 2)),
        Attribute.of("r", Tag.RESOLUTION, Resolution(1, 2, 256)),
        Attribute.of("d", Tag.DATE_TIME, "2024-01-01"),
        Attribute.of(
            "d", Tag.DATE_TIME, datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=15)))
        ),
        Attribute.of("c", Tag.BEG_COLLECTION, "not a collection"),
        Attribute.of("c", Tag.BEG_COLLECTION, Collection([Attribute("m", [])])),
        Attribute.of("c", Tag.BEG_COLLECTION, Collection([Attribute.of("", Tag.INTEGER, 1)])),
        Attribute.of("u", Tag.UNKNOWN, b""),
        Attribute.of("x", Tag.END_OF_ATTRIBUTES, b""),
        Attribute("empty", []),
        Attribute.of("", Tag.KEYWORD, "nameless"),
    ],
)
def test_unencodable_values_raise_encode_error(attribute):
    message = IppMessage.response(StatusCode.SUCCESSFUL_OK, 1, attribute)
    with pytest.raises(IppEncodeError):
        encode_message(message)


@pytest.mark.parametrize(
    "message",
    [
        IppMessage(0x10000, 1),
        IppMessage(1, 2**31),
        IppMessage(1, 1, version=(256, 0)),
        IppMessage(1, 1, [AttributeGroup(Tag.END_OF_ATTRIBUTES)]),
        IppMessage(1, 1, [AttributeGroup(0x21)]),
    ],
)
def test_unencodable_headers_raise_encode_error(message):
    with pytest.raises(IppEncodeError):
        encode_message(message)
