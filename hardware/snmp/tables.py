"""Printer-MIB tables decoded: supplies, console display and alerts (RFC 3805), pure.

Rows are found by slicing the flat OID -> value map of `build_report`; see report.py for the
value types. Brother printers without prtMarkerSuppliesTable get their supplies from Brother's
maintenance blob instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from hardware.snmp import oids, vendors
from hardware.snmp.oids import Oid
from hardware.snmp.values import LevelKind, decode_lines, decode_text, supply_level

SnmpValue = vendors.SnmpValue

# prtMarkerSuppliesType (RFC 3805 §5, PrtMarkerSuppliesTypeTC) in words.
SUPPLY_TYPES = {
    1: "other",
    2: "unknown",
    3: "toner",
    4: "waste toner",
    5: "ink",
    6: "ink cartridge",
    7: "ink ribbon",
    8: "waste ink",
    9: "drum",  # opc: organic photo conductor
    10: "developer",
    11: "fuser oil",
    12: "solid wax",
    13: "ribbon wax",
    14: "waste wax",
    15: "fuser",
    16: "corona wire",
    17: "fuser oil wick",
    18: "cleaner unit",
    19: "fuser cleaning pad",
    20: "transfer unit",
    21: "toner cartridge",
    22: "fuser oiler",
    23: "water",
    24: "waste water",
    25: "glue water additive",
    26: "waste paper",
    27: "binding supply",
    28: "banding supply",
    29: "stitching wire",
    30: "shrink wrap",
    31: "paper wrap",
    32: "staples",
    33: "inserts",
    34: "covers",
    35: "matte toner",
    36: "matte ink",
}
# prtMarkerSuppliesClass (RFC 3805 §5): 3 is consumed (level = what is left), 4 is a receptacle
# that fills up (level = how full it is).
SUPPLY_CLASS_RECEPTACLE = 4

# prtAlertSeverityLevel (RFC 3805 §5, PrtAlertSeverityLevelTC)
ALERT_SEVERITIES = {1: "other", 3: "critical", 4: "warning", 5: "warning"}
# PrtAlertCodeTC (RFC 3805 §5) codes a user can act on, in words.
ALERT_CODE_WORDS = {
    3: "Cover open",
    5: "Door open",
    8: "Paper jam",
    9: "Part missing",
    11: "Part worn out",
    13: "Empty",
    15: "Full",
    22: "Offline",
    30: "Unrecoverable failure",
    501: "Door open",
    801: "Paper tray missing",
    807: "Paper low",
    808: "Out of paper",
    809: "Load paper",
    810: "Load paper in manual feed",
    901: "Output tray missing",
    902: "Output tray almost full",
    903: "Output tray full",
    1101: "Toner empty",
    1102: "Ink empty",
    1104: "Toner low",
    1105: "Ink low",
    1107: "Waste toner almost full",
    1109: "Waste toner full",
    1111: "Drum almost worn out",
    1112: "Drum worn out",
    1115: "Toner cartridge missing",
}


@dataclass(frozen=True)
class Supply:
    """One row of prtMarkerSuppliesTable (or a vendor equivalent)."""

    index: tuple[int, ...]  # (hrDeviceIndex, prtMarkerSuppliesIndex)
    description: str
    type: str
    is_receptacle: bool
    level: int
    max_capacity: int
    level_kind: LevelKind
    percent: int | None
    colour: str | None = None

    @property
    def level_words(self) -> str:
        """`"42%"`, `"some remaining"`, `"unknown"`, ..."""
        return supply_level(self.level, self.max_capacity).words


@dataclass(frozen=True)
class Alert:
    """One row of prtAlertTable."""

    index: tuple[int, ...]
    severity: str
    code: int | None
    group: int | None
    description: str

    @property
    def words(self) -> str:
        """The printer's own description, or words for the code."""
        return self.description or ALERT_CODE_WORDS.get(self.code or 0, "Printer alert")


def rows(values: Mapping[Oid, SnmpValue], column: Oid) -> Iterator[tuple[Oid, SnmpValue]]:
    """`(index, value)` of every instance under `column`, in OID order."""
    n = len(column)
    for oid in sorted(o for o in values if o[:n] == column and len(o) > n):
        yield oid[n:], values[oid]


def int_value(value: SnmpValue | None) -> int | None:
    return value if isinstance(value, int) else None


def text_value(value: SnmpValue | None, charset: str | None = None) -> str | None:
    if not isinstance(value, bytes):
        return None
    return decode_text(value, charset) or None


def read_supplies(values: Mapping[Oid, SnmpValue], charset: str | None) -> tuple[Supply, ...]:
    table = oids.PRT_MARKER_SUPPLIES
    colourants = {
        index: text
        for index, value in rows(values, oids.PRT_MARKER_COLORANT_VALUE)
        if (text := text_value(value))
    }
    supplies = []
    for index, level in rows(values, (*table, oids.SUPPLY_LEVEL)):
        if not isinstance(level, int):
            continue
        max_capacity = int_value(values.get((*table, oids.SUPPLY_MAX_CAPACITY, *index)))
        measured = supply_level(level, -2 if max_capacity is None else max_capacity)
        raw_description = values.get((*table, oids.SUPPLY_DESCRIPTION, *index))
        # Some HP recordings append a hex dump on a second line: the first line is the name.
        lines = decode_lines(raw_description, charset) if isinstance(raw_description, bytes) else ()
        kind = int_value(values.get((*table, oids.SUPPLY_TYPE, *index)))
        colourant = int_value(values.get((*table, oids.SUPPLY_COLORANT_INDEX, *index)))
        colour = colourants.get((*index[:1], colourant)) if colourant else None
        supplies.append(
            Supply(
                index=index,
                description=lines[0] if lines else f"Supply {index[-1]}",
                type=SUPPLY_TYPES.get(kind or 2, "unknown"),
                is_receptacle=values.get((*table, oids.SUPPLY_CLASS, *index))
                == SUPPLY_CLASS_RECEPTACLE,
                level=measured.level,
                max_capacity=measured.max_capacity,
                level_kind=measured.kind,
                percent=measured.percent,
                colour=colour,
            )
        )
    return tuple(supplies)


def read_brother_supplies(values: Mapping[Oid, SnmpValue]) -> tuple[Supply, ...]:
    """Toner or ink and drum levels from Brother's maintenance blob (no Printer-MIB supplies)."""
    blob = values.get(vendors.BROTHER_MAINTENANCE)
    if not isinstance(blob, bytes):
        return ()
    records = vendors.brother_records(blob)
    supplies = []
    seen: set[str] = set()
    for code, colour in vendors.BROTHER_SUPPLY_CODES.items():
        record = records.get(code)
        if record is None or record.percent is None or colour in seen:
            continue
        seen.add(colour)
        supplies.append(_percent_supply(code, f"{colour.capitalize()} cartridge", "toner", record))
    drum = records.get(vendors.BROTHER_DRUM_REMAINING)
    if drum is not None and drum.percent is not None:
        supplies.append(_percent_supply(drum.code, "Drum unit", "drum", drum))
    return tuple(supplies)


def _percent_supply(
    code: int, description: str, kind: str, record: vendors.BrotherRecord
) -> Supply:
    percent = record.percent if record.percent is not None else 0
    return Supply(
        index=(0, code),
        description=description,
        type=kind,
        is_receptacle=False,
        level=percent,
        max_capacity=100,
        level_kind=LevelKind.MEASURED,
        percent=percent,
        colour=description.split(maxsplit=1)[0].lower() if kind == "toner" else None,
    )


def read_console(values: Mapping[Oid, SnmpValue], charset: str | None) -> tuple[str, ...]:
    lines = []
    for _, value in rows(values, oids.PRT_CONSOLE_DISPLAY_BUFFER_TEXT):
        if text := text_value(value, charset):
            lines.append(text)
    return tuple(lines)


def read_alerts(values: Mapping[Oid, SnmpValue], charset: str | None) -> tuple[Alert, ...]:
    table = oids.PRT_ALERT
    alerts = []
    seen: set[Oid] = set()
    for column in (oids.ALERT_SEVERITY, oids.ALERT_CODE, oids.ALERT_DESCRIPTION):
        for index, _ in rows(values, (*table, column)):
            if index in seen:
                continue
            seen.add(index)
            severity = int_value(values.get((*table, oids.ALERT_SEVERITY, *index)))
            alerts.append(
                Alert(
                    index=index,
                    severity=ALERT_SEVERITIES.get(severity or 1, "other"),
                    code=int_value(values.get((*table, oids.ALERT_CODE, *index))),
                    group=int_value(values.get((*table, oids.ALERT_GROUP, *index))),
                    description=text_value(
                        values.get((*table, oids.ALERT_DESCRIPTION, *index)), charset
                    )
                    or "",
                )
            )
    return tuple(sorted(alerts, key=lambda a: a.index))
