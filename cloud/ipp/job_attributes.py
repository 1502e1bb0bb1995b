"""Job attributes both ways: checking what a client asks for, and describing a job back.

Checking follows RFC 8011 §4.1.7 and §4.2.1.2: an attribute or value the queue does not support
is echoed in the unsupported-attributes group; with `ipp-attribute-fidelity` true the job is then
refused (client-error-attributes-or-values-not-supported), otherwise it is accepted with the
value ignored or substituted (successful-ok-ignored-or-substituted-attributes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cloud.ipp.jobs import HOLD_INDEFINITE, HOLD_UNTIL_SUPPORTED, IppJobView, NewIppJob
from cloud.ipp.printer import (
    COLOR_MODES,
    MAX_COPIES,
    MEDIA_SIZES,
    ORIENTATIONS,
    PRINT_QUALITIES,
    RESOLUTIONS,
    SIDES,
    QueueAddress,
)
from hardware.ipp.codec import (
    Attribute,
    AttributeGroup,
    Collection,
    RangeOfInteger,
    Resolution,
    Value,
)
from hardware.ipp.enums import Tag

MAX_NAME_CHARS = 255

# Attributes the queue records or honours: name -> values accepted (None: any value).
_ACCEPTED_KEYWORDS: dict[str, tuple[str, ...] | None] = {
    "sides": SIDES,
    "print-color-mode": COLOR_MODES,
    "media": tuple(MEDIA_SIZES),
    "output-bin": ("face-down",),
    "print-content-optimize": ("auto",),
    "print-rendering-intent": ("auto",),
    "print-scaling": ("auto", "auto-fit", "fill", "fit", "none"),
    "multiple-document-handling": None,
}
_ACCEPTED_ENUMS: dict[str, tuple[int, ...]] = {
    "orientation-requested": ORIENTATIONS,
    "print-quality": PRINT_QUALITIES,
    "finishings": (3,),
}
# Accepted without a check: they change nothing the queue stores.
_PASSED = frozenset({"page-ranges", "job-priority", "job-name", "job-hold-until"})
_TEMPLATE_NAMES = frozenset(
    {"copies", "sides", "print-color-mode", "media", "job-hold-until", "job-priority"}
)


@dataclass(slots=True)
class TemplateCheck:
    """The outcome of checking a job creation request."""

    new_job: NewIppJob
    fidelity: bool
    unsupported: list[Attribute] = field(default_factory=list)


def _unsupported_name(attribute: Attribute) -> Attribute:
    return Attribute(attribute.name, [Value(Tag.UNSUPPORTED)])


def _media_from_col(value: Collection) -> str | None:
    size = value.get("media-size")
    if size is None or not isinstance(size.first, Collection):
        return None
    dims = {m.name: m.first for m in size.first.members}
    for name, (x, y) in MEDIA_SIZES.items():
        if dims.get("x-dimension") == x and dims.get("y-dimension") == y:
            return name
    return None


def check_job_template(
    operation: AttributeGroup, job: AttributeGroup | None, document_format: str | None
) -> TemplateCheck:
    """Check Print-Job / Validate-Job / Create-Job attributes and build the job to create."""
    unsupported: list[Attribute] = []
    name = operation.get_str("job-name") or operation.get_str("document-name") or "Untitled"
    name = name.strip()[:MAX_NAME_CHARS] or "Untitled"
    fidelity = bool(operation.get_bool("ipp-attribute-fidelity"))
    values: dict[str, object] = {}
    # job-hold-until is a job template attribute (RFC 8011 §5.2.2), but clients (and ipptool's
    # print-job-hold.test) also send it in the operation group: honour it in either.
    holds = [a for a in (operation.get("job-hold-until"),) if a is not None]
    for attribute in (job.attributes if job is not None else []) + holds:
        first = attribute.first
        key = attribute.name
        if key == "copies":
            ok = isinstance(first, int) and not isinstance(first, bool)
            if ok and 1 <= int(first) <= MAX_COPIES:  # type: ignore[arg-type]
                values["copies"] = first
            else:
                unsupported.append(attribute)
        elif key == "job-hold-until":
            if isinstance(first, str) and first in HOLD_UNTIL_SUPPORTED:
                values["hold_until"] = first
            else:  # a time of day or a site-defined name: held indefinitely instead
                unsupported.append(attribute)
        elif key in _ACCEPTED_KEYWORDS:
            allowed = _ACCEPTED_KEYWORDS[key]
            if not isinstance(first, str) or (allowed is not None and first not in allowed):
                unsupported.append(attribute)
            elif key == "sides":
                values["sides"] = first
            elif key == "print-color-mode":
                values["color_mode"] = first
            elif key == "media":
                values["media"] = first
        elif key in _ACCEPTED_ENUMS:
            ints = [v.data for v in attribute.values if isinstance(v.data, int)]
            if not ints or any(i not in _ACCEPTED_ENUMS[key] for i in ints):
                unsupported.append(attribute)
        elif key == "printer-resolution":
            if not isinstance(first, Resolution) or first not in RESOLUTIONS:
                unsupported.append(attribute)
        elif key == "number-up":
            if first != 1:
                unsupported.append(attribute)
        elif key == "media-col":
            media = _media_from_col(first) if isinstance(first, Collection) else None
            if media is None:
                unsupported.append(attribute)
            else:
                values.setdefault("media", media)
        elif key == "page-ranges":
            if not all(isinstance(v.data, RangeOfInteger) for v in attribute.values):
                unsupported.append(attribute)
        elif key not in _PASSED:
            unsupported.append(_unsupported_name(attribute))
    new_job = NewIppJob(
        name=name,
        document_format=document_format,
        copies=int(values.get("copies", 1)),  # type: ignore[call-overload]
        sides=_opt_str(values.get("sides")),
        color_mode=_opt_str(values.get("color_mode")),
        media=_opt_str(values.get("media")),
        hold_until=_opt_str(values.get("hold_until")) or HOLD_INDEFINITE,
    )
    return TemplateCheck(new_job, fidelity, unsupported)


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def job_uri(address: QueueAddress, job_id: int) -> str:
    """The job's URI: the queue's URI and the job-id (as ippeveprinter spells them)."""
    return f"{address.printer_uri}/{job_id}"


def job_status(view: IppJobView, address: QueueAddress) -> list[Attribute]:
    """What Print-Job, Create-Job and Send-Document answer about the job (RFC 8011 §4.2.1.2)."""
    out = [
        Attribute.of("job-id", Tag.INTEGER, view.job_id),
        Attribute.of("job-uri", Tag.URI, job_uri(address, view.job_id)),
        Attribute.of("job-state", Tag.ENUM, view.state),
        Attribute.of("job-state-reasons", Tag.KEYWORD, *view.reasons),
    ]
    if view.message:
        out.append(Attribute.of("job-state-message", Tag.TEXT_WITHOUT_LANGUAGE, view.message))
    return out


def _time(value: datetime | None) -> Value:
    return Value(Tag.INTEGER, int(value.timestamp())) if value else Value(Tag.NO_VALUE)


def _date(value: datetime | None) -> Value:
    return Value(Tag.DATE_TIME, value) if value else Value(Tag.NO_VALUE)


def job_attributes(
    view: IppJobView, address: QueueAddress, requested: list[str], now: datetime
) -> list[Attribute]:
    """The job's attributes (RFC 8011 §5.3), filtered by requested-attributes.

    Groups: "all", "job-template", "job-description"; time-at-* use the Unix time, like
    printer-up-time.
    """
    processing = view.created_at if view.state.value >= 5 else None
    attributes = [
        *job_status(view, address),
        Attribute.of("job-printer-uri", Tag.URI, address.printer_uri),
        Attribute.of("job-name", Tag.NAME_WITHOUT_LANGUAGE, view.name),
        Attribute.of("job-originating-user-name", Tag.NAME_WITHOUT_LANGUAGE, view.owner_name),
        Attribute.of("job-printer-up-time", Tag.INTEGER, int(now.timestamp())),
        Attribute.of("number-of-documents", Tag.INTEGER, 1 if view.has_document else 0),
        Attribute("time-at-creation", [_time(view.created_at)]),
        Attribute("time-at-processing", [_time(processing)]),
        Attribute("time-at-completed", [_time(view.completed_at)]),
        Attribute("date-time-at-creation", [_date(view.created_at)]),
        Attribute("date-time-at-processing", [_date(processing)]),
        Attribute("date-time-at-completed", [_date(view.completed_at)]),
        Attribute.of("copies", Tag.INTEGER, view.copies),
        Attribute.of("job-hold-until", Tag.KEYWORD, view.hold_until),
        Attribute.of("job-impressions-completed", Tag.INTEGER, 0),
    ]
    if view.size_bytes is not None:
        attributes.append(Attribute.of("job-k-octets", Tag.INTEGER, -(-view.size_bytes // 1024)))
    if view.document_format:
        attributes.append(
            Attribute.of("document-format-supplied", Tag.MIME_MEDIA_TYPE, view.document_format)
        )
    for name, value in (
        ("sides", view.sides),
        ("print-color-mode", view.color_mode),
        ("media", view.media),
    ):
        if value:
            attributes.append(Attribute.of(name, Tag.KEYWORD, value))
    wanted = set(requested) or {"all"}
    if "all" in wanted:
        return attributes
    return [
        a
        for a in attributes
        if a.name in wanted
        or ("job-template" if a.name in _TEMPLATE_NAMES else "job-description") in wanted
    ]
