"""Property tests for the IPP codec: any message round-trips; any bytes decode or fail cleanly."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.ipp.codec import (
    Attribute,
    AttributeGroup,
    Collection,
    DecodeLimits,
    IppMessage,
    IppParseError,
    IppTruncatedError,
    RangeOfInteger,
    Resolution,
    StringWithLanguage,
    Value,
    decode_message,
    encode_message,
)
from hardware.ipp.enums import Operation, Tag

PROPERTY = settings(max_examples=200, deadline=None)

int32 = st.integers(-(2**31), 2**31 - 1)
ascii_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=24)
any_text = st.text(max_size=40)  # hypothesis leaves out surrogates, so this is valid UTF-8
offsets = st.integers(-(14 * 60 + 59), 14 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
date_times = st.builds(
    lambda d, tz: d.replace(microsecond=d.microsecond // 100_000 * 100_000, tzinfo=tz),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    offsets,
)

STRING_TAGS = [
    Tag.TEXT_WITHOUT_LANGUAGE,
    Tag.NAME_WITHOUT_LANGUAGE,
    Tag.KEYWORD,
    Tag.URI,
    Tag.URI_SCHEME,
    Tag.CHARSET,
    Tag.NATURAL_LANGUAGE,
    Tag.MIME_MEDIA_TYPE,
]
OUT_OF_BAND = [0x10, 0x11, 0x12, 0x13, 0x15, 0x16, 0x17, 0x1F]
OPAQUE = [Tag.OCTET_STRING, Tag.EXTENSION, 0x20, 0x24, 0x38, 0x40, 0x43, 0x60]

scalars = st.one_of(
    st.builds(Value, st.sampled_from([Tag.INTEGER, Tag.ENUM]), int32),
    st.builds(Value, st.just(Tag.BOOLEAN), st.booleans()),
    st.builds(Value, st.sampled_from(OUT_OF_BAND), st.none()),
    st.builds(Value, st.sampled_from(OPAQUE), st.binary(max_size=40)),
    st.builds(Value, st.just(Tag.DATE_TIME), date_times),
    st.builds(
        Value,
        st.just(Tag.RESOLUTION),
        st.builds(Resolution, int32, int32, st.integers(0, 255)),
    ),
    st.builds(Value, st.just(Tag.RANGE_OF_INTEGER), st.builds(RangeOfInteger, int32, int32)),
    st.builds(
        Value,
        st.sampled_from([Tag.TEXT_WITH_LANGUAGE, Tag.NAME_WITH_LANGUAGE]),
        st.builds(StringWithLanguage, ascii_word, any_text),
    ),
    st.builds(Value, st.sampled_from(STRING_TAGS), any_text),
)


def _collections(inner: st.SearchStrategy[Value]) -> st.SearchStrategy[Value]:
    members = st.lists(
        st.builds(Attribute, ascii_word, st.lists(inner, min_size=1, max_size=3)), max_size=3
    )
    return members.map(lambda m: Value(Tag.BEG_COLLECTION, Collection(m)))


values = st.recursive(scalars, _collections, max_leaves=8)
attributes = st.builds(Attribute, ascii_word, st.lists(values, min_size=1, max_size=4))
group_tags = st.sampled_from([t for t in range(0x01, 0x10) if t != Tag.END_OF_ATTRIBUTES])
groups = st.builds(AttributeGroup, group_tags, st.lists(attributes, max_size=5))
messages = st.builds(
    IppMessage,
    st.integers(0, 0xFFFF),
    int32,
    st.lists(groups, max_size=4),
    st.tuples(st.integers(0, 255), st.integers(0, 255)),
)


@PROPERTY
@given(messages, st.binary(max_size=64))
def test_any_message_round_trips_and_leaves_the_document(message, document):
    body = encode_message(message)
    decoded, used = decode_message(body + document)
    assert decoded == message
    assert used == len(body)
    assert encode_message(decoded) == body


@PROPERTY
@given(messages, st.data())
def test_any_proper_prefix_is_truncated(message, data):
    body = encode_message(message)
    end = data.draw(st.integers(0, len(body) - 1))
    try:
        decode_message(body[:end])
    except IppTruncatedError:
        return
    raise AssertionError("a proper prefix decoded")


LIMITS = DecodeLimits(max_header_bytes=4096, max_attributes=64, max_collection_depth=4)


@PROPERTY
@given(st.binary(max_size=512))
def test_arbitrary_bytes_decode_or_raise_parse_error(data):
    with contextlib.suppress(IppParseError):
        decode_message(data, limits=LIMITS)


@PROPERTY
@given(messages, st.data())
def test_corrupted_messages_decode_or_raise_parse_error(message, data):
    body = bytearray(encode_message(message))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] = data.draw(st.integers(0, 255))
    with contextlib.suppress(IppParseError):
        decode_message(body, limits=LIMITS)


@PROPERTY
@given(
    st.sampled_from(list(Operation)), st.integers(1, 2**31 - 1), st.lists(attributes, max_size=4)
)
def test_requests_keep_charset_and_language_first(operation, request_id, extra):
    message = IppMessage.request(operation, request_id, *extra)
    decoded, _ = decode_message(encode_message(message))
    names = [a.name for a in decoded.groups[0].attributes]
    assert names[:2] == ["attributes-charset", "attributes-natural-language"]
    assert decoded.operation == operation
