"""`PrinterReport`: what one printer says about itself, built from a flat map of SNMP values.

`build_report(values)` is pure: `values` maps each OID read (GET or walk) to a plain value, `int`
for INTEGER/Counter/Gauge/TimeTicks, `bytes` for OCTET STRING and IpAddress, `tuple[int, ...]`
for OBJECT IDENTIFIER; OIDs the printer does not have are simply absent. Every field is optional
because real printers leave out whole tables (see shared/data/snmprec/README.md).

Sources, in the order tried (RFC 2790 HOST-RESOURCES-MIB, RFC 3805 Printer-MIB):

- model: Konica Minolta's and Brother's model objects (Konica's hrDeviceDescr is a driver name),
  the printer row's hrDeviceDescr, Brother's IEEE 1284 device ID, Zebra's model object,
  prtGeneralPrinterName, then sysDescr (HP's `PID:`, OKI's "Attached to", or its first part);
- make: a brand word opening the model or sysDescr, else the sysObjectID enterprise number;
- serial: prtGeneralSerialNumber, vendor serial objects, HP's `SN:` in sysDescr;
- page count: Brother's own counter on Brother printers (it is what Brother's tools show and
  differs from prtMarkerLifeCount on some models), else prtMarkerLifeCount, else vendor totals.
  Every counter found is kept in `page_counters`: pick one at pairing and compare its deltas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from hardware.snmp import oids, vendors
from hardware.snmp.oids import Oid, format_oid
from hardware.snmp.tables import (
    Alert,
    Supply,
    int_value,
    read_alerts,
    read_brother_supplies,
    read_console,
    read_supplies,
    rows,
    text_value,
)
from hardware.snmp.values import (
    BLOCKING_ERRORS,
    DEVICE_STATUS_WORDS,
    ERROR_WORDS,
    PRINTER_STATUS_WORDS,
    DeviceStatus,
    PrinterError,
    PrinterStatus,
    codec_for_charset,
    decode_error_state,
    decode_lines,
    format_mac,
)

SnmpValue = vendors.SnmpValue
_E = TypeVar("_E", DeviceStatus, PrinterStatus)


@dataclass(frozen=True)
class PageCounter:
    """One page counter found, named by where it came from."""

    source: str
    oid: str
    value: int


@dataclass(frozen=True)
class PrinterReport:
    """What one printer reports about itself over SNMP."""

    make: str | None = None
    model: str | None = None
    serial_number: str | None = None
    mac_address: str | None = None
    firmware: str | None = None
    location: str | None = None
    name: str | None = None
    sys_descr: str | None = None
    device_status: DeviceStatus | None = None
    printer_status: PrinterStatus | None = None
    errors: tuple[PrinterError, ...] = ()
    page_count: int | None = None
    page_count_source: str | None = None
    page_counters: tuple[PageCounter, ...] = ()
    supplies: tuple[Supply, ...] = ()
    console_lines: tuple[str, ...] = ()
    alerts: tuple[Alert, ...] = ()
    unreadable: tuple[str, ...] = field(default=())  # subtrees that timed out while reading

    @property
    def error_words(self) -> tuple[str, ...]:
        """Every detected condition in words, in bit order."""
        return tuple(ERROR_WORDS[e] for e in self.errors)

    @property
    def problem(self) -> str | None:
        """The first condition that stops printing, in words (for refusing a release), or None."""
        for error in self.errors:
            if error in BLOCKING_ERRORS:
                return ERROR_WORDS[error]
        if self.device_status is DeviceStatus.DOWN:
            return "Printer not working"
        return None

    @property
    def status_words(self) -> str:
        """One short status: the problem, else the printer or device status, else "Unknown"."""
        if self.problem is not None:
            return self.problem
        if self.printer_status is not None:
            return PRINTER_STATUS_WORDS[self.printer_status]
        if self.device_status is not None:
            return DEVICE_STATUS_WORDS[self.device_status]
        return "Status unknown"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (enums as names, supplies with their level words)."""
        data = asdict(self)
        data["device_status"] = self.device_status.name.lower() if self.device_status else None
        data["printer_status"] = self.printer_status.name.lower() if self.printer_status else None
        data["errors"] = [e.name.lower() for e in self.errors]
        data["error_words"] = list(self.error_words)
        data["status_words"] = self.status_words
        data["problem"] = self.problem
        for supply, row in zip(self.supplies, data["supplies"], strict=True):
            row["level_kind"] = supply.level_kind.value
            row["level_words"] = supply.level_words
        for alert, row in zip(self.alerts, data["alerts"], strict=True):
            row["words"] = alert.words
        return data


def build_report(
    values: Mapping[Oid, SnmpValue], unreadable: tuple[str, ...] = ()
) -> PrinterReport:
    """Decode everything a printer answered into a `PrinterReport`. Never raises on odd values."""
    charset = _charset(values)
    sys_descr = text_value(values.get(oids.SYS_DESCR))
    sys_object_id = values.get(oids.SYS_OBJECT_ID)
    object_id = sys_object_id if isinstance(sys_object_id, tuple) else None
    device = _printer_device_index(values)

    model = _model(values, device, sys_descr)
    make = vendors.make_from((model, sys_descr), object_id)
    if make is None and values.get(vendors.BROTHER_DEVICE_ID) is not None:
        make = "Brother"
    is_brother = make == "Brother" or any(oid[:7] == (1, 3, 6, 1, 4, 1, 2435) for oid in values)
    page_counters = _page_counters(values, device)
    preferred = "brother-total-pages" if is_brother else "prtMarkerLifeCount"
    chosen = next((c for c in page_counters if c.source == preferred), None)
    chosen = chosen or (page_counters[0] if page_counters else None)

    status = int_value(values.get((*oids.HR_DEVICE_STATUS, device)))
    printer_status = int_value(values.get((*oids.HR_PRINTER_STATUS, device)))
    error_state = values.get((*oids.HR_PRINTER_DETECTED_ERROR_STATE, device))
    supplies = read_supplies(values, charset) or read_brother_supplies(values)
    console = read_console(values, charset)
    if not console and isinstance(lcd := values.get(vendors.BROTHER_LCD), bytes):
        # Brother's own front-panel text; Brother's default charset is HP Roman-8.
        console = decode_lines(lcd, charset or "hp-roman8")

    return PrinterReport(
        make=make,
        model=model,
        serial_number=_serial(values, sys_descr),
        mac_address=_mac(values),
        firmware=_firmware(values, sys_descr),
        location=text_value(values.get(oids.SYS_LOCATION), charset),
        name=text_value(values.get(oids.SYS_NAME), charset),
        sys_descr=sys_descr,
        device_status=_member(DeviceStatus, status),
        printer_status=_member(PrinterStatus, printer_status),
        errors=decode_error_state(error_state) if isinstance(error_state, bytes) else (),
        page_count=chosen.value if chosen else None,
        page_count_source=chosen.source if chosen else None,
        page_counters=page_counters,
        supplies=supplies,
        console_lines=console,
        alerts=read_alerts(values, charset),
        unreadable=unreadable,
    )


def _member(kind: type[_E], value: int | None) -> _E | None:
    """`kind(value)`, or None for a value the MIB does not define."""
    try:
        return kind(value) if value is not None else None
    except ValueError:
        return None


def _charset(values: Mapping[Oid, SnmpValue]) -> str | None:
    for _, value in rows(values, oids.PRT_LOCALIZATION_CHARSET):
        if isinstance(value, int) and (codec := codec_for_charset(value)) is not None:
            return codec
    return None


def _printer_device_index(values: Mapping[Oid, SnmpValue]) -> int:
    """hrDeviceIndex of the first hrDevicePrinter row, else the first hrPrinterTable row, else 1."""
    for index, kind in rows(values, oids.HR_DEVICE_TYPE):
        if kind == oids.HR_DEVICE_PRINTER and len(index) == 1:
            return index[0]
    for index, _ in rows(values, oids.HR_PRINTER_STATUS):
        if len(index) == 1:
            return index[0]
    return 1


def _model(values: Mapping[Oid, SnmpValue], device: int, sys_descr: str | None) -> str | None:
    candidates: list[str | None] = [
        text_value(values.get(vendors.KONICA_MODEL)),
        text_value(values.get(vendors.BROTHER_MODEL)),
    ]
    descr = text_value(values.get((*oids.HR_DEVICE_DESCR, device)))
    # "Generic 28C-1" is a PDL driver name some Konica Minolta devices put there, not a model.
    if descr and not descr.lower().startswith("generic "):
        candidates.append(descr)
    device_id = text_value(values.get(vendors.BROTHER_DEVICE_ID))
    candidates.append(vendors.model_from_device_id(device_id) if device_id else None)
    candidates.append(text_value(values.get(vendors.ZEBRA_MODEL)))
    candidates.append(text_value(values.get((*oids.PRT_GENERAL_PRINTER_NAME, device))))
    candidates.append(vendors.model_from_sys_descr(sys_descr) if sys_descr else None)
    for candidate in candidates:
        if candidate:
            return vendors.strip_series(candidate)
    return None


def _serial(values: Mapping[Oid, SnmpValue], sys_descr: str | None) -> str | None:
    for _, value in rows(values, oids.PRT_GENERAL_SERIAL_NUMBER):
        if text := text_value(value):
            return text
    for oid in vendors.SERIAL_OIDS:
        if text := text_value(values.get(oid)):
            return text
    return vendors.serial_from_sys_descr(sys_descr) if sys_descr else None


def _firmware(values: Mapping[Oid, SnmpValue], sys_descr: str | None) -> str | None:
    for oid in vendors.FIRMWARE_OIDS:
        if text := text_value(values.get(oid)):
            return text.removeprefix("Firmware Ver.").strip() or None
    return vendors.firmware_from_sys_descr(sys_descr) if sys_descr else None


def _mac(values: Mapping[Oid, SnmpValue]) -> str | None:
    """ifPhysAddress of the first interface that is not a loopback and has a real MAC."""
    for index, raw in rows(values, oids.IF_PHYS_ADDRESS):
        if values.get(oids.IF_TYPE + index) == oids.IF_TYPE_SOFTWARE_LOOPBACK:
            continue
        if isinstance(raw, bytes) and (mac := format_mac(raw)) is not None:
            return mac
    return None


def _page_counters(values: Mapping[Oid, SnmpValue], device: int) -> tuple[PageCounter, ...]:
    found: list[PageCounter] = []
    for index, value in rows(values, oids.PRT_MARKER_LIFE_COUNT):
        if isinstance(value, int) and index[:1] == (device,):
            oid = oids.PRT_MARKER_LIFE_COUNT + index
            found.append(PageCounter("prtMarkerLifeCount", format_oid(oid), value))
            break  # the first marker: one engine prints the pages
    brother = vendors.brother_page_count(values)
    if brother is not None:
        where = format_oid(vendors.BROTHER_COUNTERS)
        found.append(PageCounter("brother-total-pages", where, brother))
    for source, counter_oids in vendors.VENDOR_PAGE_COUNTERS:
        parts = [values.get(oid) for oid in counter_oids]
        if isinstance(parts[0], int):
            total = sum(p for p in parts if isinstance(p, int))
            found.append(PageCounter(source, format_oid(counter_oids[0]), total))
    ricoh = vendors.ricoh_page_count(values)
    if ricoh is not None:
        found.append(PageCounter("ricoh-total", format_oid(vendors.RICOH_COUNTER_VALUE), ricoh))
    return tuple(found)
