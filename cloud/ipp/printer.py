"""The secure queue's printer attributes (RFC 8011 §5.4, PWG 5100.12 §6.2, PWG 5100.14 §5).

One queue per site, identified by a stable `printer-uuid`. The queue is not a device: it accepts
the formats office printers take, parks them, and the job is printed wherever its owner releases
it. So the capabilities advertised are the common IPP Everywhere baseline (A4/Letter, duplex,
colour, PDF/PWG raster/URF/JPEG), chosen so that `lpadmin -m everywhere` builds a useful PPD and
every client sends PDF as is; the real printer's limits apply at release time.

Invariants: `media-col-database` is returned only when asked for by name (PWG 5100.7 §6.6.1 keeps
it out of "all"); URIs are built from the address the client used, so a queue reached through a
proxy advertises the name the client knows.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cloud.config import CloudConfig
from hardware.ipp.codec import Attribute, Collection, RangeOfInteger, Resolution, Value
from hardware.ipp.enums import Operation, PrinterState, Tag

DOCUMENT_FORMATS = (
    "application/pdf",
    "image/pwg-raster",
    "image/urf",
    "image/jpeg",
    "application/postscript",
    "text/plain",
    "application/octet-stream",
)
DEFAULT_FORMAT = "application/octet-stream"
OPERATIONS = (
    Operation.PRINT_JOB,
    Operation.VALIDATE_JOB,
    Operation.CREATE_JOB,
    Operation.SEND_DOCUMENT,
    Operation.CANCEL_JOB,
    Operation.GET_JOB_ATTRIBUTES,
    Operation.GET_JOBS,
    Operation.GET_PRINTER_ATTRIBUTES,
    Operation.HOLD_JOB,
    Operation.RELEASE_JOB,
    Operation.CANCEL_MY_JOBS,
    Operation.CLOSE_JOB,
    Operation.IDENTIFY_PRINTER,
)
# PWG 5101.1 self-describing names with their size in hundredths of millimetres.
MEDIA_SIZES: dict[str, tuple[int, int]] = {
    "iso_a4_210x297mm": (21000, 29700),
    "na_letter_8.5x11in": (21590, 27940),
    "na_legal_8.5x14in": (21590, 35560),
    "iso_a5_148x210mm": (14800, 21000),
}
MEDIA_DEFAULT = "iso_a4_210x297mm"
MEDIA_READY = ("iso_a4_210x297mm", "na_letter_8.5x11in")
MARGIN = 423  # 1/6 inch, what most office printers manage, in hundredths of mm
SIDES = ("one-sided", "two-sided-long-edge", "two-sided-short-edge")
COLOR_MODES = ("auto", "color", "monochrome")
PRINT_QUALITIES = (3, 4, 5)  # draft, normal, high (RFC 8011 §5.2.13)
ORIENTATIONS = (3, 4, 5, 6)  # portrait, landscape, reverse-landscape, reverse-portrait
RESOLUTIONS = (Resolution(300, 300), Resolution(600, 600))
RASTER_RESOLUTIONS = (Resolution(150, 150), Resolution(300, 300))
RASTER_TYPES = ("black_1", "sgray_8", "srgb_8")
MAX_COPIES = 999
STRINGS_PATH = "/ipp/strings/en.strings"
ICON_PATH = "/ipp/icon.png"
MORE_INFO_PATH = "/ipp/about"

# Job template attributes (RFC 8011 §5.2 and PWG extensions): answered for "job-template".
_TEMPLATE_PREFIXES = (
    "copies-",
    "finishings-",
    "job-hold-until-",
    "media-",
    "multiple-document-handling-",
    "number-up-",
    "orientation-requested-",
    "output-bin-",
    "overrides-",
    "page-ranges-",
    "print-color-mode-",
    "print-content-optimize-",
    "print-quality-",
    "print-rendering-intent-",
    "print-scaling-",
    "printer-resolution-",
    "sides-",
)
_EXPLICIT_ONLY = frozenset({"media-col-database"})


@dataclass(frozen=True, slots=True)
class QueueAddress:
    """How the client reached us: the queue's URI and the HTTP base for the web resources."""

    printer_uri: str  # ipp://host:port/ipp/print (ipps:// behind TLS)
    http_base: str  # http://host:port (https:// behind TLS)
    secure: bool


def printer_uuid(config: CloudConfig) -> uuid.UUID:
    """The configured printer-uuid, else one derived from the site and the pepper (stable)."""
    if config.printer_uuid:
        return uuid.UUID(config.printer_uuid)
    digest = hmac.new(config.pepper, b"printer-uuid/v1|" + config.site.encode(), hashlib.sha256)
    return uuid.UUID(bytes=digest.digest()[:16], version=4)


def _kw(name: str, *values: str) -> Attribute:
    return Attribute.of(name, Tag.KEYWORD, *values)


def _int(name: str, *values: int) -> Attribute:
    return Attribute.of(name, Tag.INTEGER, *values)


def _enum(name: str, *values: int) -> Attribute:
    return Attribute.of(name, Tag.ENUM, *values)


def _text(name: str, *values: str) -> Attribute:
    return Attribute.of(name, Tag.TEXT_WITHOUT_LANGUAGE, *values)


def _media_col(size: str, *, full: bool = True) -> Collection:
    """A media-col value (PWG 5100.7 §6.3): size, margins and, for `full`, source and type."""
    x, y = MEDIA_SIZES[size]
    members = [
        Attribute.of(
            "media-size",
            Tag.BEG_COLLECTION,
            Collection([_int("x-dimension", x), _int("y-dimension", y)]),
        ),
        _int("media-bottom-margin", MARGIN),
        _int("media-left-margin", MARGIN),
        _int("media-right-margin", MARGIN),
        _int("media-top-margin", MARGIN),
    ]
    if full:
        members += [_kw("media-source", "auto"), _kw("media-type", "stationery")]
    return Collection(members)


def _supply() -> tuple[bytes, str]:
    # The queue has no marker of its own: its supplies are those of whichever printer the job is
    # released at, so the level is "unknown" (-2, RFC 3805 prtMarkerSuppliesLevel).
    value = "index=1;class=supplyThatIsConsumed;type=other;unit=percent;maxcapacity=-2;level=-2;"
    return value.encode(), "Supplies of the printer the job is released at"


def printer_attributes(
    config: CloudConfig,
    address: QueueAddress,
    *,
    now: datetime,
    started_at: datetime,
    queued_job_count: int,
) -> list[Attribute]:
    """Every printer attribute of the queue, in a stable order."""
    up_time = int(now.timestamp())  # CUPS' convention: printer-up-time is the Unix time
    supply, supply_text = _supply()
    info = config.printer_name
    device_id = "MFG:PullPrint;MDL:Secure Queue;CMD:PDF,PWGRaster,URF,JPEG,PostScript;"
    more_info = address.http_base + MORE_INFO_PATH
    sizes = list(MEDIA_SIZES)
    return [
        Attribute.of("charset-configured", Tag.CHARSET, "utf-8"),
        Attribute.of("charset-supported", Tag.CHARSET, "utf-8"),
        Attribute.of("color-supported", Tag.BOOLEAN, True),
        _kw("compression-supported", "none"),
        _int("copies-default", 1),
        Attribute.of("copies-supported", Tag.RANGE_OF_INTEGER, RangeOfInteger(1, MAX_COPIES)),
        Attribute.of("document-format-default", Tag.MIME_MEDIA_TYPE, DEFAULT_FORMAT),
        Attribute.of("document-format-supported", Tag.MIME_MEDIA_TYPE, *DOCUMENT_FORMATS),
        _enum("finishings-default", 3),
        _enum("finishings-supported", 3),
        Attribute.of("generated-natural-language-supported", Tag.NATURAL_LANGUAGE, "en"),
        # Identify-Printer is accepted and does nothing: the queue has no panel of its own.
        _kw("identify-actions-default", "display"),
        _kw("identify-actions-supported", "display"),
        _kw("ipp-features-supported", "ipp-everywhere"),
        _kw("ipp-versions-supported", "1.1", "2.0"),
        _kw(
            "job-creation-attributes-supported",
            "copies",
            "job-hold-until",
            "media",
            "media-col",
            "orientation-requested",
            "print-color-mode",
            "print-quality",
            "printer-resolution",
            "sides",
        ),
        _kw("job-hold-until-default", "indefinite"),
        _kw("job-hold-until-supported", "no-hold", "indefinite"),
        Attribute.of("job-ids-supported", Tag.BOOLEAN, True),
        _int("media-bottom-margin-supported", MARGIN),
        Attribute.of("media-col-database", Tag.BEG_COLLECTION, *(_media_col(s) for s in sizes)),
        Attribute.of("media-col-default", Tag.BEG_COLLECTION, _media_col(MEDIA_DEFAULT)),
        Attribute.of("media-col-ready", Tag.BEG_COLLECTION, *(_media_col(s) for s in MEDIA_READY)),
        _kw(
            "media-col-supported",
            "media-bottom-margin",
            "media-left-margin",
            "media-right-margin",
            "media-size",
            "media-source",
            "media-top-margin",
            "media-type",
        ),
        _kw("media-default", MEDIA_DEFAULT),
        _int("media-left-margin-supported", MARGIN),
        _kw("media-ready", *MEDIA_READY),
        _int("media-right-margin-supported", MARGIN),
        Attribute.of(
            "media-size-supported",
            Tag.BEG_COLLECTION,
            *(
                Collection([_int("x-dimension", x), _int("y-dimension", y)])
                for x, y in MEDIA_SIZES.values()
            ),
        ),
        _kw("media-source-supported", "auto"),
        _kw("media-supported", *sizes),
        _int("media-top-margin-supported", MARGIN),
        _kw("media-type-supported", "stationery"),
        Attribute.of("multiple-document-jobs-supported", Tag.BOOLEAN, False),
        _int("multiple-operation-time-out", 300),
        _kw("multiple-operation-time-out-action", "abort-job"),
        Attribute.of("natural-language-configured", Tag.NATURAL_LANGUAGE, "en"),
        _int("number-up-default", 1),
        _int("number-up-supported", 1),
        _enum("operations-supported", *OPERATIONS),
        _enum("orientation-requested-default", 3),
        _enum("orientation-requested-supported", *ORIENTATIONS),
        _kw("output-bin-default", "face-down"),
        _kw("output-bin-supported", "face-down"),
        # PWG 5100.6 calls it document-numbers, ipptool's files expect document-number: both.
        _kw("overrides-supported", "document-number", "document-numbers", "pages"),
        Attribute.of("page-ranges-supported", Tag.BOOLEAN, True),
        _int("pages-per-minute", 20),
        _int("pages-per-minute-color", 20),
        _kw("pdl-override-supported", "attempted"),
        Attribute.of("preferred-attributes-supported", Tag.BOOLEAN, False),
        _kw("print-color-mode-default", "auto"),
        _kw("print-color-mode-supported", *COLOR_MODES),
        _kw("print-content-optimize-default", "auto"),
        _kw("print-content-optimize-supported", "auto"),
        _enum("print-quality-default", 4),
        _enum("print-quality-supported", *PRINT_QUALITIES),
        _kw("print-rendering-intent-default", "auto"),
        _kw("print-rendering-intent-supported", "auto"),
        _kw("print-scaling-default", "auto"),
        _kw("print-scaling-supported", "auto", "auto-fit", "fill", "fit", "none"),
        Attribute.of("printer-config-change-date-time", Tag.DATE_TIME, started_at),
        _int("printer-config-change-time", int(started_at.timestamp())),
        Attribute.of("printer-current-time", Tag.DATE_TIME, now),
        _text("printer-device-id", device_id),
        # Where the queue is has no single answer (it prints wherever its owner goes).
        Attribute("printer-geo-location", [Value(Tag.UNKNOWN)]),
        _kw("printer-get-attributes-supported", "document-format"),
        Attribute.of("printer-icons", Tag.URI, address.http_base + ICON_PATH),
        _text("printer-info", info),
        Attribute.of("printer-is-accepting-jobs", Tag.BOOLEAN, True),
        _text("printer-location", config.printer_location),
        _text("printer-make-and-model", "PullPrint Secure Queue"),
        Attribute.of("printer-more-info", Tag.URI, more_info),
        Attribute.of("printer-name", Tag.NAME_WITHOUT_LANGUAGE, config.printer_name),
        _text("printer-organization", ""),
        _text("printer-organizational-unit", ""),
        Attribute.of("printer-resolution-default", Tag.RESOLUTION, Resolution(300, 300)),
        Attribute.of("printer-resolution-supported", Tag.RESOLUTION, *RESOLUTIONS),
        Attribute.of("printer-state", Tag.ENUM, PrinterState.IDLE),
        Attribute.of("printer-state-change-date-time", Tag.DATE_TIME, started_at),
        _int("printer-state-change-time", int(started_at.timestamp())),
        _text("printer-state-message", "Ready: jobs are held until released at a printer."),
        _kw("printer-state-reasons", "none"),
        Attribute.of("printer-strings-languages-supported", Tag.NATURAL_LANGUAGE, "en"),
        Attribute.of("printer-strings-uri", Tag.URI, address.http_base + STRINGS_PATH),
        Attribute.of("printer-supply", Tag.OCTET_STRING, supply),
        _text("printer-supply-description", supply_text),
        Attribute.of("printer-supply-info-uri", Tag.URI, more_info),
        _int("printer-up-time", up_time),
        Attribute.of("printer-uri-supported", Tag.URI, address.printer_uri),
        Attribute.of("printer-uuid", Tag.URI, printer_uuid(config).urn),
        Attribute.of(
            "pwg-raster-document-resolution-supported", Tag.RESOLUTION, *RASTER_RESOLUTIONS
        ),
        _kw("pwg-raster-document-sheet-back", "normal"),
        _kw("pwg-raster-document-type-supported", *RASTER_TYPES),
        _int("queued-job-count", queued_job_count),
        _kw("sides-default", "one-sided"),
        _kw("sides-supported", *SIDES),
        _kw("uri-authentication-supported", "basic"),
        _kw("uri-security-supported", "tls" if address.secure else "none"),
        _kw("urf-supported", "V1.4", "CP1", "DM1", "IS1", "PQ3-4-5", "RS300", "SRGB24", "W8"),
        _kw("which-jobs-supported", "completed", "not-completed", "all", "pending-held"),
    ]


def select_attributes(attributes: Iterable[Attribute], requested: list[str]) -> list[Attribute]:
    """Filter by requested-attributes (RFC 8011 §4.2.5.1): names and the groups all,
    printer-description and job-template; an empty request means "all".
    """
    wanted = set(requested) or {"all"}
    out = []
    for attribute in attributes:
        name = attribute.name
        template = name.startswith(_TEMPLATE_PREFIXES) or name in (
            "job-creation-attributes-supported",
        )
        if name in wanted:
            out.append(attribute)
        elif name in _EXPLICIT_ONLY:
            continue
        elif "all" in wanted or ("job-template" if template else "printer-description") in wanted:
            out.append(attribute)
    return out


STRINGS = """/* PullPrint secure queue: printer strings (PWG 5100.13 §6.2.2), English. */
"print-color-mode.auto" = "Automatic";
"print-color-mode.color" = "Color";
"print-color-mode.monochrome" = "Black and white";
"job-hold-until.indefinite" = "Hold until I release it at a printer";
"job-hold-until.no-hold" = "Release at any printer";
"media-source.auto" = "Automatic";
"media-type.stationery" = "Plain paper";
"output-bin.face-down" = "Face down";
"printer-state-reasons.none" = "Ready";
"""
