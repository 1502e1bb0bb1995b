"""Decoding of single SNMP values into what a person reads: text, MAC, states, supply levels.

Pure functions over plain values (`int`, `bytes`): no I/O, no pysnmp, so every rule here is
testable on made-up bytes. The printer is untrusted: every function accepts any input of its type
and never raises on odd bytes.
"""

from __future__ import annotations

import codecs
import enum
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# IANA character set MIBenums (RFC 3808 IANA-CHARSET-MIB) that printers report in
# prtLocalizationCharacterSet, mapped to Python codecs.
CHARSET_CODECS = {
    3: "ascii",
    4: "latin-1",
    5: "iso8859-2",
    8: "iso8859-5",
    12: "iso8859-9",
    106: "utf-8",
    1015: "utf-16",
    2004: "hp-roman8",
    2252: "cp1252",
}


def decode_text(raw: bytes, charset: str | None = None) -> str:
    """Bytes from a printer to one line of text.

    NUL padding ends the text (fixed-size buffers are common); `charset` (a Python codec name)
    is tried first, then UTF-8, then Latin-1, which decodes anything. Control characters become
    spaces, runs of spaces collapse, and the ends are stripped.
    """
    raw = raw.split(b"\x00", 1)[0]
    text: str | None = None
    for codec in (charset, "utf-8"):
        if codec is None:
            continue
        try:
            text = raw.decode(codec)
            break
        except (UnicodeDecodeError, LookupError):
            continue
    if text is None:
        text = raw.decode("latin-1")
    cleaned = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return " ".join(cleaned.split())


def decode_lines(raw: bytes, charset: str | None = None) -> tuple[str, ...]:
    """Like `decode_text`, but keeps the lines split by CR or LF (a front-panel display)."""
    raw = raw.split(b"\x00", 1)[0]
    parts = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return tuple(line for line in (decode_text(p, charset) for p in parts) if line)


def codec_for_charset(mib_enum: int | None) -> str | None:
    """The Python codec for an IANA charset MIBenum, or None when unknown or not given."""
    if mib_enum is None:
        return None
    codec = CHARSET_CODECS.get(mib_enum)
    if codec is None:
        return None
    try:
        codecs.lookup(codec)
    except LookupError:  # pragma: no cover - every codec above ships with CPython
        return None
    return codec


def format_mac(raw: bytes) -> str | None:
    """ifPhysAddress as `aa:bb:cc:dd:ee:ff`; None for empty, all-zero or non-6-byte values."""
    if len(raw) != 6 or not any(raw):
        return None
    return ":".join(f"{b:02x}" for b in raw)


class DeviceStatus(enum.IntEnum):
    """hrDeviceStatus (RFC 2790 §6 hrDeviceTable)."""

    UNKNOWN = 1
    RUNNING = 2
    WARNING = 3
    TESTING = 4
    DOWN = 5


class PrinterStatus(enum.IntEnum):
    """hrPrinterStatus (RFC 2790 §6 hrPrinterTable)."""

    OTHER = 1
    UNKNOWN = 2
    IDLE = 3
    PRINTING = 4
    WARMUP = 5


DEVICE_STATUS_WORDS = {
    DeviceStatus.UNKNOWN: "Status unknown",
    DeviceStatus.RUNNING: "Ready",
    DeviceStatus.WARNING: "Needs attention",
    DeviceStatus.TESTING: "Testing",
    DeviceStatus.DOWN: "Not working",
}

PRINTER_STATUS_WORDS = {
    PrinterStatus.OTHER: "Busy",
    PrinterStatus.UNKNOWN: "Status unknown",
    PrinterStatus.IDLE: "Idle",
    PrinterStatus.PRINTING: "Printing",
    PrinterStatus.WARMUP: "Warming up",
}


class PrinterError(enum.IntEnum):
    """The bits of hrPrinterDetectedErrorState (RFC 2790 §6, hrPrinterTable).

    Bit 0 is the most significant bit of the first octet; agents send 0, 1 or 2 octets.
    """

    LOW_PAPER = 0
    NO_PAPER = 1
    LOW_TONER = 2
    NO_TONER = 3
    DOOR_OPEN = 4
    JAMMED = 5
    OFFLINE = 6
    SERVICE_REQUESTED = 7
    INPUT_TRAY_MISSING = 8
    OUTPUT_TRAY_MISSING = 9
    MARKER_SUPPLY_MISSING = 10
    OUTPUT_NEAR_FULL = 11
    OUTPUT_FULL = 12
    INPUT_TRAY_EMPTY = 13
    OVERDUE_PREVENT_MAINT = 14


# Words follow hardware.printers.ipp.REASON_WORDS, so a user reads the same message whether the
# printer told us over IPP or over SNMP.
ERROR_WORDS = {
    PrinterError.LOW_PAPER: "Paper low",
    PrinterError.NO_PAPER: "Out of paper",
    PrinterError.LOW_TONER: "Toner low",
    PrinterError.NO_TONER: "Toner empty",
    PrinterError.DOOR_OPEN: "Door open",
    PrinterError.JAMMED: "Paper jam",
    PrinterError.OFFLINE: "Printer offline",
    PrinterError.SERVICE_REQUESTED: "Service requested",
    PrinterError.INPUT_TRAY_MISSING: "Paper tray missing",
    PrinterError.OUTPUT_TRAY_MISSING: "Output tray missing",
    PrinterError.MARKER_SUPPLY_MISSING: "Toner or ink cartridge missing",
    PrinterError.OUTPUT_NEAR_FULL: "Output tray almost full",
    PrinterError.OUTPUT_FULL: "Output tray full",
    PrinterError.INPUT_TRAY_EMPTY: "Paper tray empty",
    PrinterError.OVERDUE_PREVENT_MAINT: "Maintenance overdue",
}

# Conditions under which a job sent now would not print; the others are warnings.
BLOCKING_ERRORS = frozenset(
    {
        PrinterError.NO_PAPER,
        PrinterError.NO_TONER,
        PrinterError.DOOR_OPEN,
        PrinterError.JAMMED,
        PrinterError.OFFLINE,
        PrinterError.INPUT_TRAY_MISSING,
        PrinterError.OUTPUT_TRAY_MISSING,
        PrinterError.MARKER_SUPPLY_MISSING,
        PrinterError.OUTPUT_FULL,
    }
)


def decode_error_state(raw: bytes) -> tuple[PrinterError, ...]:
    """The conditions set in an hrPrinterDetectedErrorState OCTET STRING, in bit order.

    Bit n is `raw[n // 8] & (0x80 >> (n % 8))`. Bits past the last defined one are ignored
    (a future MIB may define them); an empty string means no condition.
    """
    found = []
    for bit in PrinterError:
        byte = bit // 8
        if byte < len(raw) and raw[byte] & (0x80 >> (bit % 8)):
            found.append(bit)
    return tuple(found)


def encode_error_state(errors: Iterable[PrinterError]) -> bytes:
    """The two-octet hrPrinterDetectedErrorState with `errors` set (for tests and simulators)."""
    value = 0
    for bit in errors:
        value |= 0x8000 >> bit
    return value.to_bytes(2, "big")


class LevelKind(enum.Enum):
    """What a prtMarkerSuppliesLevel says (RFC 3805 §5, prtMarkerSuppliesLevel)."""

    MEASURED = "measured"  # a number of units, `percent` known when the maximum is known
    UNRESTRICTED = "unrestricted"  # -1: other / no restriction
    UNKNOWN = "unknown"  # -2
    SOME_REMAINING = "some remaining"  # -3: at least one unit remains, amount unknown


@dataclass(frozen=True)
class SupplyLevel:
    """A supply's level and capacity as the printer gave them, and what they mean."""

    level: int
    max_capacity: int
    kind: LevelKind
    percent: int | None

    @property
    def words(self) -> str:
        """`"42%"`, `"some remaining"`, `"unknown"`..."""
        if self.percent is not None:
            return f"{self.percent}%"
        if self.kind is LevelKind.MEASURED:
            return f"{self.level} units"
        return str(self.kind.value)


def supply_level(level: int, max_capacity: int) -> SupplyLevel:
    """Interpret prtMarkerSuppliesLevel against prtMarkerSuppliesMaxCapacity.

    The percentage needs a positive maximum; it is rounded half up, and clamped to 0-100 because
    some printers report a level above their max. When the maximum is unknown (-2) or unlimited
    (-1) but the level lies in 0-100, the level is taken as a percentage: Sharp and others report
    it so (and LibreNMS reads them the same way).
    """
    if level == -1:
        return SupplyLevel(level, max_capacity, LevelKind.UNRESTRICTED, None)
    if level == -3:
        return SupplyLevel(level, max_capacity, LevelKind.SOME_REMAINING, None)
    if level < 0:
        return SupplyLevel(level, max_capacity, LevelKind.UNKNOWN, None)
    percent = None
    if max_capacity > 0:
        percent = max(0, min(100, (200 * level + max_capacity) // (2 * max_capacity)))
    elif max_capacity in (-1, -2) and level <= 100:
        percent = level
    return SupplyLevel(level, max_capacity, LevelKind.MEASURED, percent)
