"""What vendors put outside the standard MIBs: serials, firmware, models, page counters, Brother.

Pure tables and decoders (no I/O). Each OID is here because a recording of a real printer in
`shared/data/snmprec` carries it, or because established monitoring tools read it (see
SNMP-NOTES.md); vendor MIB names are given where known.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from hardware.snmp.oids import ENTERPRISES, Oid, parse_oid

SnmpValue = int | bytes | Oid

# sysObjectID enterprise number (IANA Private Enterprise Numbers) -> make.
ENTERPRISE_MAKES = {
    11: "HP",
    236: "Samsung",
    253: "Xerox",
    297: "Fujifilm",
    367: "Ricoh",
    641: "Lexmark",
    674: "Dell",
    683: "Zebra",  # Extended Systems, the ZebraNet print server
    1248: "Epson",
    1347: "Kyocera",
    1602: "Canon",
    2001: "OKI",
    2385: "Sharp",
    2435: "Brother",
    10642: "Zebra",
    18334: "Konica Minolta",
}

# Brand words that open a model or sysDescr; they win over the enterprise number because OEM
# brands share one (Develop is Konica Minolta's, Savin and Gestetner are Ricoh's).
BRAND_PREFIXES = (
    ("hewlett-packard", "HP"),
    ("hp", "HP"),
    ("konica minolta", "Konica Minolta"),
    ("fuji xerox", "Fuji Xerox"),
    ("fujifilm", "Fujifilm"),
    ("brother", "Brother"),
    ("canon", "Canon"),
    ("dell", "Dell"),
    ("develop", "Develop"),
    ("epson", "Epson"),
    ("gestetner", "Gestetner"),
    ("kyocera", "Kyocera"),
    ("lanier", "Lanier"),
    ("lexmark", "Lexmark"),
    ("oki", "OKI"),
    ("ricoh", "Ricoh"),
    ("samsung", "Samsung"),
    ("savin", "Savin"),
    ("sharp", "Sharp"),
    ("toshiba", "Toshiba"),
    ("xerox", "Xerox"),
    ("zebra", "Zebra"),
)

# Brother (enterprise 2435) BROTHER-MIB objects.
BROTHER_SERIAL = parse_oid("1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.1.0")
BROTHER_FIRMWARE = parse_oid("1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.17.0")
BROTHER_FIRMWARE_TEXT = parse_oid("1.3.6.1.4.1.2435.2.4.3.1240.6.5.0")  # "Firmware Ver.Q"
BROTHER_MODEL = parse_oid("1.3.6.1.4.1.2435.2.4.3.2435.5.13.3.0")
BROTHER_DEVICE_ID = parse_oid("1.3.6.1.4.1.2435.2.3.9.1.1.7.0")  # IEEE 1284 device ID
BROTHER_LCD = parse_oid("1.3.6.1.4.1.2435.2.3.9.4.2.1.5.4.5.2.0")
BROTHER_COUNTERS = parse_oid("1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.10.0")
BROTHER_MAINTENANCE = parse_oid("1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.8.0")

KONICA_MODEL = parse_oid("1.3.6.1.4.1.18334.1.1.1.1.6.2.1.0")
ZEBRA_MODEL = parse_oid("1.3.6.1.4.1.10642.1.1.0")

# Serial numbers where prtGeneralSerialNumber is missing, in the order tried.
SERIAL_OIDS = (
    BROTHER_SERIAL,
    parse_oid("1.3.6.1.4.1.1347.43.5.1.1.28.1"),  # Kyocera/UTAX KYOCERA-MIB
    parse_oid("1.3.6.1.4.1.367.3.2.1.2.1.4.0"),  # Ricoh
    parse_oid("1.3.6.1.4.1.683.1.5.0"),  # ZebraNet print server
)

# Firmware versions, in the order tried; sysDescr patterns come after.
FIRMWARE_OIDS = (
    BROTHER_FIRMWARE,
    parse_oid("1.3.6.1.4.1.1602.1.1.1.4.0"),  # Canon
    parse_oid("1.3.6.1.4.1.674.10898.100.1.1.1.0"),  # Dell
    parse_oid("1.3.6.1.4.1.18334.1.1.1.1.6.1.0"),  # Konica Minolta
    parse_oid("1.3.6.1.4.1.367.3.2.1.1.1.2.0"),  # Ricoh
    parse_oid("1.3.6.1.4.1.2385.2.1.1.2.1.2.1"),  # Sharp
    parse_oid("1.3.6.1.4.1.10642.1.2.0"),  # Zebra
    BROTHER_FIRMWARE_TEXT,
)

FIRMWARE_PATTERNS = (
    re.compile(r"Firmware Ver\.?\s*([\w.]+)", re.IGNORECASE),
    re.compile(r"Attached to \S+ Rev\.([\w.]+)"),  # OKI: the printer's, not the print server's
    re.compile(r"\bversion ([\w.]+)", re.IGNORECASE),  # Dell, Lexmark, Toshiba
    re.compile(r"^[^/;]*? (\d+\.\d+) /"),  # Ricoh family: "RICOH MP 3053 1.09 / ..."
    re.compile(r";\s*V(\d[\d.]*\d)"),  # Samsung: "Samsung M4080FX; V11.01.03.04_02-27-2017;"
)

# Vendor total-page counters (used when prtMarkerLifeCount is missing), name -> OIDs summed.
VENDOR_PAGE_COUNTERS: tuple[tuple[str, tuple[Oid, ...]], ...] = (
    ("hp-total-engine-pages", (parse_oid("1.3.6.1.4.1.11.2.3.9.4.2.1.4.1.2.5.0"),)),
    ("kyocera-total-pages", (parse_oid("1.3.6.1.4.1.1347.43.10.1.1.12.1.1"),)),
    ("konica-total-pages", (parse_oid("1.3.6.1.4.1.18334.1.1.1.5.7.2.1.1.0"),)),
    (
        "sharp-total-pages",
        (
            parse_oid("1.3.6.1.4.1.2385.1.1.19.2.1.3.5.4.61"),  # black & white total
            parse_oid("1.3.6.1.4.1.2385.1.1.19.2.1.3.5.4.63"),  # full colour total
        ),
    ),
    ("xerox-total-impressions", (parse_oid("1.3.6.1.4.1.253.8.53.13.2.1.6.1.20.1"),)),
)

# Ricoh (also Savin, Lanier, Gestetner) counter table: type column 2, value column 9.
RICOH_COUNTER_TYPE = parse_oid("1.3.6.1.4.1.367.3.2.1.2.19.5.1.2")
RICOH_COUNTER_VALUE = parse_oid("1.3.6.1.4.1.367.3.2.1.2.19.5.1.9")
RICOH_COUNTER_TOTAL = 10

# Scalars fetched with GET on every printer: a missing one costs nothing on v2c/v3.
VENDOR_SCALARS: tuple[Oid, ...] = (
    *SERIAL_OIDS,
    *FIRMWARE_OIDS,
    BROTHER_MODEL,
    BROTHER_DEVICE_ID,
    BROTHER_LCD,
    BROTHER_COUNTERS,
    BROTHER_MAINTENANCE,
    KONICA_MODEL,
    ZEBRA_MODEL,
    *(oid for _, oids in VENDOR_PAGE_COUNTERS for oid in oids),
)

# Vendor tables walked only when sysObjectID says the vendor (walks are not free on v1).
VENDOR_SUBTREES: Mapping[int, tuple[Oid, ...]] = {
    367: (RICOH_COUNTER_TYPE, RICOH_COUNTER_VALUE),
}


def make_from(texts: tuple[str | None, ...], sys_object_id: Oid | None) -> str | None:
    """The make: a brand word opening one of `texts`, else the sysObjectID enterprise."""
    for text in texts:
        if not text:
            continue
        lowered = text.lower()
        for prefix, make in BRAND_PREFIXES:
            if lowered == prefix or lowered.startswith((prefix + " ", prefix + "-")):
                return make
    if sys_object_id is not None and len(sys_object_id) > 6 and sys_object_id[:6] == ENTERPRISES:
        return ENTERPRISE_MAKES.get(sys_object_id[6])
    return None


def model_from_device_id(device_id: str) -> str | None:
    """The MDL field of an IEEE 1284 device ID (`MFG:Brother;MDL:DCP-9020CDW series;`)."""
    match = re.search(r"(?:^|;)\s*(?:MDL|MODEL):\s*([^;]+)", device_id)
    if not match:
        return None
    return strip_series(match.group(1).strip()) or None


def strip_series(model: str) -> str:
    """`Brother MFC-L2710DW series` -> `Brother MFC-L2710DW`."""
    return re.sub(r"\s+series$", "", model, flags=re.IGNORECASE).strip()


def model_from_sys_descr(sys_descr: str) -> str | None:
    """A model guessed from sysDescr: HP's `PID:` field, the printer an OKI print server is
    attached to, else the text before the first `;`, `,`, ` / ` or ` version `."""
    pid = re.search(r"\bPID:([^,;]+)", sys_descr)
    if pid:
        return pid.group(1).strip() or None
    attached = re.search(r"Attached to (\S+) Rev\.", sys_descr)  # OKI print servers
    if attached:
        return attached.group(1)
    head = re.split(r";|,| / | version | Rev\.", sys_descr, maxsplit=1)[0].strip()
    # Ricoh family: "RICOH MP 3053 1.09 / ..." carries the firmware after the model.
    head = re.sub(r" \d+\.\d+$", "", head)
    return head or None


def serial_from_sys_descr(sys_descr: str) -> str | None:
    """HP JetDirect's `SN:` field (`HP ETHERNET MULTI-ENVIRONMENT,SN:VNCRC48198,...`)."""
    match = re.search(r"\bSN:([A-Za-z0-9]+)", sys_descr)
    return match.group(1) if match else None


def firmware_from_sys_descr(sys_descr: str) -> str | None:
    """A firmware version found in sysDescr by the vendor patterns above, or None."""
    for pattern in FIRMWARE_PATTERNS:
        match = pattern.search(sys_descr)
        if match:
            return match.group(1)
    return None


@dataclass(frozen=True)
class BrotherRecord:
    """One record of Brother's counter and maintenance blobs: code, then 1-4 value bytes.

    The blob is a list of `code, 0x01, length, value...` records ending in a 0xFF checksum byte
    (the BRN-Printer-sCounters-Info layout, as bieniu/brother reads it). Old models use length 2:
    one byte of level and one of maximum.
    """

    code: int
    value: bytes

    @property
    def number(self) -> int:
        """The value as an unsigned big-endian integer."""
        return int.from_bytes(self.value, "big")

    @property
    def percent(self) -> int | None:
        """Percent remaining: hundredths of a percent (4 bytes) or level/max (2 bytes)."""
        if len(self.value) == 4:
            return round(self.number / 100)
        if len(self.value) == 2 and self.value[1]:
            return round(self.value[0] * 100 / self.value[1])
        return None


def brother_records(blob: bytes) -> dict[int, BrotherRecord]:
    """Decode a Brother record blob; stops quietly at the first malformed record."""
    records: dict[int, BrotherRecord] = {}
    pos = 0
    while pos + 3 <= len(blob):
        code, marker, length = blob[pos], blob[pos + 1], blob[pos + 2]
        if marker != 0x01 or length == 0 or pos + 3 + length > len(blob):
            break  # the 0xFF checksum byte, or garbage
        records.setdefault(code, BrotherRecord(code, bytes(blob[pos + 3 : pos + 3 + length])))
        pos += 3 + length
    return records


# Brother maintenance codes of supplies remaining (bieniu/brother const.py), colour by code.
BROTHER_SUPPLY_CODES = {
    0x6F: "black",
    0x70: "cyan",
    0x71: "magenta",
    0x72: "yellow",
    0xA1: "black",
    0xA2: "cyan",
    0xA3: "magenta",
    0xA4: "yellow",
}
BROTHER_DRUM_REMAINING = 0x41
BROTHER_TOTAL_PAGES = 0x00


def brother_page_count(values: Mapping[Oid, SnmpValue]) -> int | None:
    """Brother's own total page counter (record 0 of the counters blob), or None."""
    blob = values.get(BROTHER_COUNTERS)
    if not isinstance(blob, bytes):
        return None
    record = brother_records(blob).get(BROTHER_TOTAL_PAGES)
    return record.number if record is not None and len(record.value) == 4 else None


def ricoh_page_count(values: Mapping[Oid, SnmpValue]) -> int | None:
    """The Ricoh counter-table row whose type is 10 (total), or None."""
    n = len(RICOH_COUNTER_TYPE)
    for oid, kind in values.items():
        if oid[:n] == RICOH_COUNTER_TYPE and kind == RICOH_COUNTER_TOTAL:
            total = values.get(RICOH_COUNTER_VALUE + oid[n:])
            if isinstance(total, int):
                return total
    return None
