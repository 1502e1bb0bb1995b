"""The typed IPP message model: a message is groups of attributes, each attribute a list of values.

Invariants: every `Value` carries its own tag, so a message round-trips through the codec without a
schema (RFC 8010 §3.1); group and attribute order is kept as a list, because RFC 8011 §4.1.4 makes
order matter (charset, then natural-language, first in the operation group). Import this API from
`hardware.ipp.codec`, which re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

from hardware.ipp.enums import Operation, StatusCode, Tag


@dataclass(frozen=True, slots=True)
class Resolution:
    """A `resolution` value (RFC 8010 §3.9): cross-feed, feed, units (3 = dpi, 4 = dpcm)."""

    cross_feed: int
    feed: int
    units: int = 3


@dataclass(frozen=True, slots=True)
class RangeOfInteger:
    """A `rangeOfInteger` value (RFC 8010 §3.9), bounds included."""

    lower: int
    upper: int


@dataclass(frozen=True, slots=True)
class StringWithLanguage:
    """A `textWithLanguage` or `nameWithLanguage` value (RFC 8010 §3.9)."""

    language: str
    text: str


@dataclass(slots=True)
class Collection:
    """A `collection` value (RFC 8010 §3.1.6): an ordered list of member attributes."""

    members: list[Attribute] = field(default_factory=list)

    def get(self, name: str) -> Attribute | None:
        """Return the member called `name`, or None."""
        return next((m for m in self.members if m.name == name), None)


ValueData: TypeAlias = (
    int
    | bool
    | str
    | bytes
    | datetime
    | Resolution
    | RangeOfInteger
    | StringWithLanguage
    | Collection
    | None
)
"""What a value holds: None for out-of-band tags, bytes for octetString and unknown tags."""


@dataclass(frozen=True, slots=True)
class Value:
    """One value and the tag that says how it is encoded (an `int` when the tag is unknown)."""

    tag: int
    data: ValueData = None


@dataclass(slots=True)
class Attribute:
    """A named attribute with one or more values (RFC 8010 §3.1.4, §3.1.5)."""

    name: str
    values: list[Value] = field(default_factory=list)

    @classmethod
    def of(cls, name: str, tag: int, *data: ValueData) -> Attribute:
        """Build an attribute whose values share one tag: `of("copies", Tag.INTEGER, 2)`."""
        return cls(name, [Value(tag, d) for d in data])

    @property
    def first(self) -> ValueData:
        """The first value's data, or None when there is none."""
        return self.values[0].data if self.values else None


@dataclass(slots=True)
class AttributeGroup:
    """One attribute group, introduced by a delimiter tag (RFC 8010 §3.1.2)."""

    tag: int
    attributes: list[Attribute] = field(default_factory=list)

    def get(self, name: str) -> Attribute | None:
        """Return the first attribute called `name`, or None."""
        return next((a for a in self.attributes if a.name == name), None)

    def get_int(self, name: str) -> int | None:
        """The first integer or enum value of `name`, or None if absent or of another type."""
        ints = self.get_ints(name)
        return ints[0] if ints else None

    def get_ints(self, name: str) -> list[int]:
        """Every integer or enum value of `name` (booleans excluded)."""
        attr = self.get(name)
        if attr is None:
            return []
        return [
            int(v.data)
            for v in attr.values
            if isinstance(v.data, int) and not isinstance(v.data, bool)
        ]

    def get_str(self, name: str) -> str | None:
        """The first string value of `name` (any string syntax), or None."""
        strs = self.get_strs(name)
        return strs[0] if strs else None

    def get_strs(self, name: str) -> list[str]:
        """Every string value of `name`; with-language values give their text."""
        attr = self.get(name)
        if attr is None:
            return []
        out: list[str] = []
        for v in attr.values:
            if isinstance(v.data, str):
                out.append(v.data)
            elif isinstance(v.data, StringWithLanguage):
                out.append(v.data.text)
        return out

    def get_bool(self, name: str) -> bool | None:
        """The first boolean value of `name`, or None."""
        attr = self.get(name)
        if attr is None:
            return None
        return next((v.data for v in attr.values if isinstance(v.data, bool)), None)


@dataclass(slots=True)
class IppMessage:
    """An IPP request or response (RFC 8010 §3.1.1), without the document data that follows it."""

    operation_id_or_status_code: int
    request_id: int
    groups: list[AttributeGroup] = field(default_factory=list)
    version: tuple[int, int] = (2, 0)

    @classmethod
    def request(
        cls,
        operation: Operation,
        request_id: int,
        *attributes: Attribute,
        version: tuple[int, int] = (2, 0),
        natural_language: str = "en",
    ) -> IppMessage:
        """Build a request whose operation group starts with charset and natural-language.

        RFC 8011 §4.1.4 requires `attributes-charset` then `attributes-natural-language` as the
        first two operation attributes; `attributes` follow in the order given. The codec always
        speaks UTF-8.
        """
        return cls(operation, request_id, [_operation_group(natural_language, attributes)], version)

    @classmethod
    def response(
        cls,
        status: StatusCode,
        request_id: int,
        *attributes: Attribute,
        version: tuple[int, int] = (2, 0),
        natural_language: str = "en",
    ) -> IppMessage:
        """Build a response whose operation group starts with charset and natural-language."""
        return cls(status, request_id, [_operation_group(natural_language, attributes)], version)

    @property
    def operation(self) -> Operation | int:
        """The operation-id as an `Operation` when known (meaningful for requests)."""
        code = self.operation_id_or_status_code
        return Operation(code) if code in Operation._value2member_map_ else code

    @property
    def status_code(self) -> StatusCode | int:
        """The status-code as a `StatusCode` when known (meaningful for responses)."""
        code = self.operation_id_or_status_code
        return StatusCode(code) if code in StatusCode._value2member_map_ else code

    @property
    def is_success(self) -> bool:
        """True when this response's status is in the successful-ok family."""
        return self.operation_id_or_status_code < 0x0100

    def group(self, tag: int) -> AttributeGroup | None:
        """The first group with delimiter `tag`, or None."""
        return next((g for g in self.groups if g.tag == tag), None)

    def groups_of(self, tag: int) -> list[AttributeGroup]:
        """Every group with delimiter `tag`, in order (Get-Jobs answers one job group per job)."""
        return [g for g in self.groups if g.tag == tag]

    def add_group(self, tag: int, *attributes: Attribute) -> AttributeGroup:
        """Append a group and return it."""
        group = AttributeGroup(tag, list(attributes))
        self.groups.append(group)
        return group

    def get(self, group_tag: int, name: str) -> Attribute | None:
        """The first attribute `name` in the first group with `group_tag`, or None."""
        group = self.group(group_tag)
        return None if group is None else group.get(name)

    def get_int(self, group_tag: int, name: str) -> int | None:
        """The first integer or enum value of `name` in the group, or None."""
        group = self.group(group_tag)
        return None if group is None else group.get_int(name)

    def get_str(self, group_tag: int, name: str) -> str | None:
        """The first string value of `name` in the group, or None."""
        group = self.group(group_tag)
        return None if group is None else group.get_str(name)

    def get_strs(self, group_tag: int, name: str) -> list[str]:
        """Every string value of `name` in the group."""
        group = self.group(group_tag)
        return [] if group is None else group.get_strs(name)


def _operation_group(natural_language: str, attributes: tuple[Attribute, ...]) -> AttributeGroup:
    return AttributeGroup(
        Tag.OPERATION_ATTRIBUTES,
        [
            Attribute.of("attributes-charset", Tag.CHARSET, "utf-8"),
            Attribute.of("attributes-natural-language", Tag.NATURAL_LANGUAGE, natural_language),
            *attributes,
        ],
    )
