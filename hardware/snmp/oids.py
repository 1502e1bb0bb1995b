"""Numeric OIDs read from printers, with the MIB and RFC that define each.

Numeric because Printer-MIB is not bundled with pysnmp and loading MIB files costs time at the
first request; `lookupMib=False` everywhere. An `Oid` is a tuple of ints so that table rows can be
sliced by prefix without parsing strings.
"""

from __future__ import annotations

Oid = tuple[int, ...]


def parse_oid(text: str) -> Oid:
    """`"1.3.6.1"` (a leading dot allowed) -> `(1, 3, 6, 1)`; raises ValueError on garbage."""
    parts = text.strip().lstrip(".").split(".")
    if not parts or parts == [""]:
        raise ValueError(f"not an OID: {text!r}")
    return tuple(int(p) for p in parts)


def format_oid(oid: Oid) -> str:
    """`(1, 3, 6, 1)` -> `"1.3.6.1"`."""
    return ".".join(str(arc) for arc in oid)


# SNMPv2-MIB system group (RFC 3418 §2)
SYS_DESCR = parse_oid("1.3.6.1.2.1.1.1.0")
SYS_OBJECT_ID = parse_oid("1.3.6.1.2.1.1.2.0")
SYS_UPTIME = parse_oid("1.3.6.1.2.1.1.3.0")
SYS_NAME = parse_oid("1.3.6.1.2.1.1.5.0")
SYS_LOCATION = parse_oid("1.3.6.1.2.1.1.6.0")
SYSTEM_SCALARS = (SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SYS_NAME, SYS_LOCATION)
ENTERPRISES = parse_oid("1.3.6.1.4.1")

# IF-MIB ifTable (RFC 2863 §6): ifDescr, ifType, ifPhysAddress
IF_DESCR = parse_oid("1.3.6.1.2.1.2.2.1.2")
IF_TYPE = parse_oid("1.3.6.1.2.1.2.2.1.3")
IF_PHYS_ADDRESS = parse_oid("1.3.6.1.2.1.2.2.1.6")
IF_TYPE_SOFTWARE_LOOPBACK = 24  # IANAifType

# HOST-RESOURCES-MIB (RFC 2790 §6) hrDeviceTable and hrPrinterTable, indexed by hrDeviceIndex
HR_DEVICE_TYPE = parse_oid("1.3.6.1.2.1.25.3.2.1.2")
HR_DEVICE_DESCR = parse_oid("1.3.6.1.2.1.25.3.2.1.3")
HR_DEVICE_STATUS = parse_oid("1.3.6.1.2.1.25.3.2.1.5")
HR_DEVICE_PRINTER = parse_oid("1.3.6.1.2.1.25.3.1.5")  # hrDeviceTypes.hrDevicePrinter
HR_PRINTER_STATUS = parse_oid("1.3.6.1.2.1.25.3.5.1.1")
HR_PRINTER_DETECTED_ERROR_STATE = parse_oid("1.3.6.1.2.1.25.3.5.1.2")

# Printer-MIB v2 (RFC 3805), tables indexed by hrDeviceIndex then the table's own index
PRT_GENERAL_PRINTER_NAME = parse_oid("1.3.6.1.2.1.43.5.1.1.16")  # §5 prtGeneralTable
PRT_GENERAL_SERIAL_NUMBER = parse_oid("1.3.6.1.2.1.43.5.1.1.17")
PRT_LOCALIZATION_CHARSET = parse_oid("1.3.6.1.2.1.43.7.1.1.4")  # IANA charset MIBenum
PRT_MARKER_COUNTER_UNIT = parse_oid("1.3.6.1.2.1.43.10.2.1.3")
PRT_MARKER_LIFE_COUNT = parse_oid("1.3.6.1.2.1.43.10.2.1.4")
PRT_MARKER_SUPPLIES = parse_oid("1.3.6.1.2.1.43.11.1.1")  # prtMarkerSuppliesEntry
PRT_MARKER_COLORANT_VALUE = parse_oid("1.3.6.1.2.1.43.12.1.1.4")
PRT_CONSOLE_DISPLAY_BUFFER_TEXT = parse_oid("1.3.6.1.2.1.43.16.5.1.2")
PRT_ALERT = parse_oid("1.3.6.1.2.1.43.18.1.1")  # prtAlertEntry

# prtMarkerSuppliesEntry columns (RFC 3805 §5 prtMarkerSuppliesTable)
SUPPLY_MARKER_INDEX = 2
SUPPLY_COLORANT_INDEX = 3
SUPPLY_CLASS = 4
SUPPLY_TYPE = 5
SUPPLY_DESCRIPTION = 6
SUPPLY_UNIT = 7
SUPPLY_MAX_CAPACITY = 8
SUPPLY_LEVEL = 9

# prtAlertEntry columns (RFC 3805 §5 prtAlertTable)
ALERT_SEVERITY = 2
ALERT_GROUP = 4
ALERT_GROUP_INDEX = 5
ALERT_LOCATION = 6
ALERT_CODE = 7
ALERT_DESCRIPTION = 8

# The tables walked for a report: small on every printer recorded, so a whole walk is cheap.
REPORT_SUBTREES = (
    IF_DESCR,
    IF_TYPE,
    IF_PHYS_ADDRESS,
    HR_DEVICE_TYPE,
    HR_DEVICE_DESCR,
    HR_DEVICE_STATUS,
    parse_oid("1.3.6.1.2.1.25.3.5.1"),  # hrPrinterEntry
    PRT_GENERAL_PRINTER_NAME,
    PRT_GENERAL_SERIAL_NUMBER,
    PRT_LOCALIZATION_CHARSET,
    PRT_MARKER_COUNTER_UNIT,
    PRT_MARKER_LIFE_COUNT,
    PRT_MARKER_SUPPLIES,
    PRT_MARKER_COLORANT_VALUE,
    PRT_CONSOLE_DISPLAY_BUFFER_TEXT,
    PRT_ALERT,
)
