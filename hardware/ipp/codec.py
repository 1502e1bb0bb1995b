"""Sans-I/O IPP codec: bytes to `IppMessage` and back (RFC 8010 §3), bounded for untrusted input.

The codec never opens a socket, logs, or spawns a thread (an import-linter contract holds it to
that), so the cloud's IPP endpoint and the station's printer client share it. `decode_message`
returns how many bytes the header took, because in a request the document data follows the
end-of-attributes tag in the same HTTP body (RFC 8010 §3.1.1); the caller streams the rest.

Errors have their own root, independent of `hardware.errors`, because the cloud may import only
this module and `hardware.ipp.enums`:

    IppError (ValueError)         carries `status`, the IPP status a server should answer with
    ├── IppParseError             the bytes are not a well-formed IPP message
    │   ├── IppTruncatedError     the bytes end before end-of-attributes-tag (read more, try again)
    │   └── IppLimitError         a decode limit was exceeded (too long, too many, too deep)
    ├── IppRequestError           well-formed, but breaks RFC 8011 §4.1 request rules
    └── IppEncodeError            a message cannot be encoded (wrong type, out of range, too long)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from hardware.ipp.enums import Operation, StatusCode, Tag
from hardware.ipp.model import (
    Attribute,
    AttributeGroup,
    Collection,
    IppMessage,
    RangeOfInteger,
    Resolution,
    StringWithLanguage,
    Value,
    ValueData,
)

__all__ = [
    "DEFAULT_LIMITS",
    "Attribute",
    "AttributeGroup",
    "Collection",
    "DecodeLimits",
    "IppEncodeError",
    "IppError",
    "IppLimitError",
    "IppMessage",
    "IppParseError",
    "IppRequestError",
    "IppTruncatedError",
    "Operation",
    "RangeOfInteger",
    "Resolution",
    "StatusCode",
    "StringWithLanguage",
    "Tag",
    "Value",
    "ValueData",
    "decode_message",
    "encode_message",
    "validate_request",
]

# RFC 8010 §3.1: name-length and value-length are SIGNED-SHORT, so 32767 is the most either holds.
MAX_SHORT = 0x7FFF
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

# Tags whose value is a string (RFC 8010 §3.9): text and name are UTF-8 under attributes-charset
# utf-8 (the only charset we speak); the others are US-ASCII, a subset of UTF-8.
_STRING_TAGS = frozenset(
    {
        Tag.TEXT_WITHOUT_LANGUAGE,
        Tag.NAME_WITHOUT_LANGUAGE,
        Tag.KEYWORD,
        Tag.URI,
        Tag.URI_SCHEME,
        Tag.CHARSET,
        Tag.NATURAL_LANGUAGE,
        Tag.MIME_MEDIA_TYPE,
        Tag.MEMBER_ATTR_NAME,
    }
)


class IppError(ValueError):
    """Root of the codec's errors; `status` is what a server answers a bad request with."""

    def __init__(
        self, message: str, status: StatusCode = StatusCode.CLIENT_ERROR_BAD_REQUEST
    ) -> None:
        super().__init__(message)
        self.status = status


class IppParseError(IppError):
    """The bytes are not a well-formed IPP message."""


class IppTruncatedError(IppParseError):
    """The bytes end before the end-of-attributes tag: more data may complete them."""


class IppLimitError(IppParseError):
    """A decode limit was exceeded."""


class IppRequestError(IppError):
    """A well-formed request that breaks the RFC 8011 §4.1 rules every request must follow."""


class IppEncodeError(IppError):
    """A message that cannot be put on the wire."""


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds on what a decoder accepts from an untrusted peer."""

    max_header_bytes: int = 1 << 20  # the attributes, not the document data after them
    max_value_bytes: int = MAX_SHORT  # also bounds names
    max_attributes: int = 4096  # named attributes plus collection members
    max_values: int = 65536
    max_collection_depth: int = 16


DEFAULT_LIMITS = DecodeLimits()


def decode_message(
    data: bytes | bytearray | memoryview, *, limits: DecodeLimits = DEFAULT_LIMITS
) -> tuple[IppMessage, int]:
    """Decode the IPP header (version through end-of-attributes-tag) at the start of `data`.

    Args:
        data: the HTTP body, or as much of its start as has arrived.
        limits: bounds for untrusted input.

    Returns:
        The message and the number of bytes it took; document data starts at that offset.

    Raises:
        IppTruncatedError: `data` ends before the end-of-attributes tag.
        IppLimitError: a limit was exceeded (`status` says how to answer).
        IppParseError: the bytes are malformed.
    """
    decoder = _Decoder(bytes(data), limits)
    return decoder.message(), decoder.pos


def encode_message(message: IppMessage) -> bytes:
    """Encode `message` as an IPP header ending with end-of-attributes-tag (RFC 8010 §3.1.1).

    Raises:
        IppEncodeError: a value does not fit its tag, or a length exceeds 32767.
    """
    major, minor = message.version
    code, request_id = message.operation_id_or_status_code, message.request_id
    if not (0 <= major <= 255 and 0 <= minor <= 255):
        raise IppEncodeError(f"version {major}.{minor} does not fit two octets")
    if not 0 <= code <= 0xFFFF:
        raise IppEncodeError(f"operation-id/status-code {code} does not fit two octets")
    if not _INT32_MIN <= request_id <= _INT32_MAX:
        raise IppEncodeError(f"request-id {request_id} does not fit four octets")
    out = bytearray(struct.pack(">BBHi", major, minor, code, request_id))
    for group in message.groups:
        if not 0x01 <= group.tag <= 0x0F or group.tag == Tag.END_OF_ATTRIBUTES:
            raise IppEncodeError(f"0x{group.tag:02x} is not a group delimiter tag")
        out.append(group.tag)
        for attribute in group.attributes:
            if not attribute.name:
                raise IppEncodeError("an attribute needs a name")
            _encode_values(out, attribute.name.encode(), attribute)
    out.append(Tag.END_OF_ATTRIBUTES)
    return bytes(out)


def validate_request(message: IppMessage, *, versions: frozenset[int] = frozenset({1, 2})) -> None:
    """Check the rules every request follows (RFC 8011 §4.1.1, §4.1.4, §4.1.8).

    Raises:
        IppRequestError: with `status` set to the status-code the server must answer with.
    """
    if message.version[0] not in versions:
        raise IppRequestError(
            f"IPP version {message.version[0]}.{message.version[1]} is not supported",
            StatusCode.SERVER_ERROR_VERSION_NOT_SUPPORTED,
        )
    if message.request_id < 1:
        raise IppRequestError("request-id must be 1 or more")
    first = message.groups[0] if message.groups else None
    if first is None or first.tag != Tag.OPERATION_ATTRIBUTES:
        raise IppRequestError("the first group must be operation attributes")
    names = [a.name for a in first.attributes[:2]]
    if names != ["attributes-charset", "attributes-natural-language"]:
        raise IppRequestError(
            "attributes-charset and attributes-natural-language must come first, in that order"
        )
    charset = first.attributes[0].first
    if not isinstance(charset, str) or charset.lower() != "utf-8":
        raise IppRequestError(
            f"charset {charset!r} is not supported", StatusCode.CLIENT_ERROR_CHARSET_NOT_SUPPORTED
        )
    if first.attributes[1].first is None:
        raise IppRequestError("attributes-natural-language has no value")


# --- decoding --------------------------------------------------------------------------------


class _Decoder:
    """Walks one IPP header; each field is bounds-checked before it is read."""

    def __init__(self, data: bytes, limits: DecodeLimits) -> None:
        self.data = data
        self.limits = limits
        self.pos = 0
        self.attributes = 0
        self.values = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > self.limits.max_header_bytes:
            raise IppLimitError(
                f"IPP header longer than {self.limits.max_header_bytes} bytes",
                StatusCode.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
            )
        if end > len(self.data):
            raise IppTruncatedError(f"IPP header truncated at byte {len(self.data)}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def short(self, what: str) -> int:
        n: int = struct.unpack(">h", self.take(2))[0]
        if n < 0:
            raise IppParseError(f"negative {what} {n}")
        if n > self.limits.max_value_bytes:
            raise IppLimitError(
                f"{what} {n} exceeds {self.limits.max_value_bytes}",
                StatusCode.CLIENT_ERROR_REQUEST_VALUE_TOO_LONG,
            )
        return n

    def field(self) -> tuple[int, bytes, bytes]:
        """Read one attribute-with-one-value field after its tag (RFC 8010 §3.1.4)."""
        tag = self.take(1)[0]
        name = self.take(self.short("name-length"))
        raw = self.take(self.short("value-length"))
        self.values += 1
        if self.values > self.limits.max_values:
            raise IppLimitError(f"more than {self.limits.max_values} values")
        return tag, name, raw

    def count_attribute(self) -> None:
        self.attributes += 1
        if self.attributes > self.limits.max_attributes:
            raise IppLimitError(f"more than {self.limits.max_attributes} attributes")

    def message(self) -> IppMessage:
        major, minor, code, request_id = struct.unpack(">BBHi", self.take(8))
        message = IppMessage(code, request_id, [], (major, minor))
        group: AttributeGroup | None = None
        attribute: Attribute | None = None
        while True:
            tag = self.take(1)[0]
            if tag < 0x10:  # a delimiter (RFC 8010 §3.5.1)
                if tag == Tag.END_OF_ATTRIBUTES:
                    return message
                if tag == 0x00:
                    raise IppParseError("delimiter tag 0x00 is reserved")
                group = message.add_group(_known_tag(tag))
                attribute = None
                continue
            self.pos -= 1  # a value tag: re-read it as the start of a field
            tag, name, raw = self.field()
            if group is None:
                raise IppParseError("attribute before any group delimiter")
            if tag in (Tag.END_COLLECTION, Tag.MEMBER_ATTR_NAME):
                raise IppParseError(f"tag 0x{tag:02x} outside a collection")
            value = self.value(tag, raw, depth=1)
            if name:  # a new attribute (RFC 8010 §3.1.4)
                self.count_attribute()
                attribute = Attribute(_text(name, "attribute name"), [value])
                group.attributes.append(attribute)
            elif attribute is None:  # name-length 0 means "another value" (RFC 8010 §3.1.5)
                raise IppParseError("additional value without an attribute")
            else:
                attribute.values.append(value)

    def value(self, tag: int, raw: bytes, depth: int) -> Value:
        if tag == Tag.BEG_COLLECTION:
            return Value(Tag.BEG_COLLECTION, self.collection(depth))
        return Value(_known_tag(tag), _decode_value(tag, raw))

    def collection(self, depth: int) -> Collection:
        """Read members up to the matching endCollection (RFC 8010 §3.1.6)."""
        if depth > self.limits.max_collection_depth:
            raise IppLimitError(
                f"collections nested deeper than {self.limits.max_collection_depth}"
            )
        collection = Collection()
        member: Attribute | None = None
        while True:
            if self.pos < len(self.data) and self.data[self.pos] < 0x10:
                raise IppParseError("group delimiter inside a collection")
            tag, name, raw = self.field()
            if name:
                raise IppParseError("collection fields must have name-length 0")
            if tag == Tag.END_COLLECTION:
                return collection
            if tag == Tag.MEMBER_ATTR_NAME:
                if not raw:
                    raise IppParseError("empty memberAttrName")
                self.count_attribute()
                member = Attribute(_text(raw, "member name"), [])
                collection.members.append(member)
            elif member is None:
                raise IppParseError("collection value before any memberAttrName")
            else:
                member.values.append(self.value(tag, raw, depth + 1))


def _known_tag(tag: int) -> int:
    return Tag(tag) if tag in Tag._value2member_map_ else tag


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IppParseError(f"{what} is not UTF-8") from exc


def _decode_value(tag: int, raw: bytes) -> ValueData:
    """Decode one value's octets by tag (RFC 8010 §3.9); unknown tags keep their octets."""
    if 0x10 <= tag < 0x20:
        return None  # out-of-band: RFC 8010 §3.8 says ignore any value octets
    if tag in (Tag.INTEGER, Tag.ENUM):
        _expect_length(tag, raw, 4)
        return int(struct.unpack(">i", raw)[0])
    if tag == Tag.BOOLEAN:
        _expect_length(tag, raw, 1)
        if raw[0] > 1:
            raise IppParseError(f"boolean octet 0x{raw[0]:02x} is neither 0 nor 1")
        return raw[0] == 1
    if tag == Tag.DATE_TIME:
        _expect_length(tag, raw, 11)
        return _decode_datetime(raw)
    if tag == Tag.RESOLUTION:
        _expect_length(tag, raw, 9)
        return Resolution(*struct.unpack(">iiB", raw))
    if tag == Tag.RANGE_OF_INTEGER:
        _expect_length(tag, raw, 8)
        return RangeOfInteger(*struct.unpack(">ii", raw))
    if tag in (Tag.TEXT_WITH_LANGUAGE, Tag.NAME_WITH_LANGUAGE):
        return _decode_with_language(raw)
    if tag in _STRING_TAGS:
        return _text(raw, f"value of tag 0x{tag:02x}")
    return raw  # octetString, extension and unassigned tags


def _expect_length(tag: int, raw: bytes, n: int) -> None:
    if len(raw) != n:
        raise IppParseError(f"tag 0x{tag:02x} needs {n} value octets, got {len(raw)}")


def _decode_with_language(raw: bytes) -> StringWithLanguage:
    """RFC 8010 §3.9: two (length, octets) pairs, language then text, filling the value."""
    if len(raw) < 4:
        raise IppParseError("textWithLanguage value too short")
    (lang_len,) = struct.unpack_from(">H", raw, 0)
    text_at = 2 + lang_len
    if text_at + 2 > len(raw):
        raise IppParseError("textWithLanguage language overruns the value")
    (text_len,) = struct.unpack_from(">H", raw, text_at)
    if text_at + 2 + text_len != len(raw):
        raise IppParseError("textWithLanguage lengths do not add up to the value length")
    return StringWithLanguage(
        _text(raw[2:text_at], "language"), _text(raw[text_at + 2 :], "text value")
    )


def _decode_datetime(raw: bytes) -> datetime:
    """RFC 2579 DateAndTime, the 11-octet form RFC 8010 §3.9 uses."""
    year, month, day, hour, minute, second, deci, sign, off_h, off_m = struct.unpack(
        ">HBBBBBBcBB", raw
    )
    if sign not in (b"+", b"-") or off_h > 14 or off_m > 59 or deci > 9:
        raise IppParseError("dateTime has a bad UTC offset or deci-seconds")
    offset = timedelta(hours=off_h, minutes=off_m) * (1 if sign == b"+" else -1)
    try:
        # RFC 2579 allows second 60 (a leap second); datetime does not.
        return datetime(
            year, month, day, hour, minute, min(second, 59), deci * 100_000, timezone(offset)
        )
    except ValueError as exc:
        raise IppParseError(f"dateTime is not a date: {exc}") from exc


# --- encoding --------------------------------------------------------------------------------


def _encode_values(out: bytearray, name: bytes, attribute: Attribute) -> None:
    """Append an attribute: its name on the first value, name-length 0 on the rest."""
    if not attribute.values:
        raise IppEncodeError(f"attribute {attribute.name!r} has no values")
    for i, value in enumerate(attribute.values):
        _encode_field(out, value.tag, name if i == 0 else b"", value.data)


def _encode_field(out: bytearray, tag: int, name: bytes, data: ValueData) -> None:
    if not 0x10 <= tag <= 0xFF:
        raise IppEncodeError(f"0x{tag:02x} is not a value tag")
    if tag == Tag.BEG_COLLECTION:
        if not isinstance(data, Collection):
            raise IppEncodeError("begCollection needs a Collection")
        out += bytes([tag]) + _short(len(name), "name") + name + b"\x00\x00"
        for member in data.members:
            if not member.name:
                raise IppEncodeError("a collection member needs a name")
            _encode_field(out, Tag.MEMBER_ATTR_NAME, b"", member.name)
            _encode_values(out, b"", member)
        out += bytes([Tag.END_COLLECTION]) + b"\x00\x00\x00\x00"
        return
    raw = _encode_value(tag, data)
    out += bytes([tag]) + _short(len(name), "name") + name + _short(len(raw), "value") + raw


def _short(n: int, what: str) -> bytes:
    if n > MAX_SHORT:
        raise IppEncodeError(f"{what} of {n} octets exceeds {MAX_SHORT}")
    return struct.pack(">h", n)


def _encode_value(tag: int, data: ValueData) -> bytes:
    """The value octets for one non-collection value (RFC 8010 §3.9)."""
    if 0x10 <= tag < 0x20:
        _expect_type(tag, data, type(None))
        return b""
    if tag in (Tag.INTEGER, Tag.ENUM):
        if not isinstance(data, int) or isinstance(data, bool):  # IntEnums welcome, bools not
            raise IppEncodeError(f"tag 0x{tag:02x} needs an int, got {data!r}")
        if not _INT32_MIN <= data <= _INT32_MAX:
            raise IppEncodeError(f"tag 0x{tag:02x} needs a 32-bit int, got {data!r}")
        return struct.pack(">i", data)
    if tag == Tag.BOOLEAN:
        _expect_type(tag, data, bool)
        return b"\x01" if data else b"\x00"
    if tag == Tag.DATE_TIME:
        if not isinstance(data, datetime):
            raise IppEncodeError(f"dateTime needs a datetime, got {data!r}")
        return _encode_datetime(data)
    if isinstance(data, Resolution) and tag == Tag.RESOLUTION:
        return _pack(">iiB", data.cross_feed, data.feed, data.units)
    if isinstance(data, RangeOfInteger) and tag == Tag.RANGE_OF_INTEGER:
        return _pack(">ii", data.lower, data.upper)
    if isinstance(data, StringWithLanguage) and tag in (
        Tag.TEXT_WITH_LANGUAGE,
        Tag.NAME_WITH_LANGUAGE,
    ):
        lang, text = data.language.encode(), data.text.encode()
        return _short(len(lang), "language") + lang + _short(len(text), "text") + text
    if tag in (
        Tag.RESOLUTION,
        Tag.RANGE_OF_INTEGER,
        Tag.TEXT_WITH_LANGUAGE,
        Tag.NAME_WITH_LANGUAGE,
    ):
        raise IppEncodeError(f"tag 0x{tag:02x} cannot hold {data!r}")
    if tag in _STRING_TAGS:
        _expect_type(tag, data, str)
        assert isinstance(data, str)
        return data.encode()
    _expect_type(tag, data, bytes)
    assert isinstance(data, bytes)
    return data


def _expect_type(tag: int, data: ValueData, kind: type) -> None:
    if not isinstance(data, kind):
        raise IppEncodeError(f"tag 0x{tag:02x} needs {kind.__name__}, got {data!r}")


def _pack(fmt: str, *values: int) -> bytes:
    try:
        return struct.pack(fmt, *values)
    except struct.error as exc:
        raise IppEncodeError(f"value out of range: {values}") from exc


def _encode_datetime(when: datetime) -> bytes:
    offset = when.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = b"+" if minutes >= 0 else b"-"
    off_h, off_m = divmod(abs(minutes), 60)
    if off_h > 14:
        raise IppEncodeError(f"UTC offset {offset} is outside RFC 2579's range")
    return struct.pack(
        ">HBBBBBBcBB",
        when.year,
        when.month,
        when.day,
        when.hour,
        when.minute,
        when.second,
        when.microsecond // 100_000,
        sign,
        off_h,
        off_m,
    )
