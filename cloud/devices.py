"""Device data from stations (status, supplies, meters, alerts) and discovered devices.

A station reads its printer (SNMP, IPP) and uploads, each on its own schedule
(`station.device_data`): status and supplies when they changed (checked at a configurable
interval), the page counter daily, and the set of active alerts at once whenever it changes.
The cloud keeps the latest status per printer, the meter history, and alerts de-duplicated: an
alert is one row from the first report that names it until the first report that does not
(`cleared_at`), however often it is reported in between.

Discovered devices (mDNS + SNMP, merged per device by `hardware.discovery.merge`) are kept per
site under their strongest identity (UUID, MAC, serial, else address), so reporting the same
network twice updates rows instead of adding them; an admin turns one into a registered printer.

Invariants: every row and query carries the site; the printer a station reports for is the one
it is assigned to, never one it names; sizes are bounded, so a station cannot fill the database.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cloud.context import ServiceContext
from cloud.db import DiscoveredDeviceRow, PrinterAlert, PrinterMeter, PrinterReading
from cloud.errors import (
    ConflictError,
    DeviceNotFoundError,
    InvalidRequestError,
    NoPrinterAssignedError,
    PrinterExistsError,
)
from cloud.identity import StationPrincipal
from cloud.registry import (
    PrinterSpec,
    PrinterView,
    Registry,
    find_printer,
    printer_id_of,
    printer_view,
)

log = logging.getLogger(__name__)

METER_HISTORY = 31  # readings shown (a month of dailies)
MAX_DEVICE_BYTES = 4096
MAX_DEVICES_PER_REPORT = 1024


@dataclass(frozen=True, slots=True)
class SupplyReading:
    """One supply: what it is and how much is left."""

    description: str
    kind: str
    percent: int | None
    level_words: str
    colour: str | None = None


@dataclass(frozen=True, slots=True)
class StatusReading:
    """A printer's status and supplies as a station read them."""

    status_words: str
    problem: str | None
    errors: tuple[str, ...]
    supplies: tuple[SupplyReading, ...]
    console: tuple[str, ...] = ()
    page_count: int | None = None


@dataclass(frozen=True, slots=True)
class AlertReading:
    """One active alert or printer error."""

    severity: str
    words: str


@dataclass(frozen=True, slots=True)
class MeterReading:
    """A page counter reading."""

    page_count: int
    source: str | None = None


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What one upload changed."""

    printer_id: uuid.UUID
    alerts_opened: int = 0
    alerts_cleared: int = 0


@dataclass(frozen=True, slots=True)
class DeviceData:
    """What the cloud knows of a printer's state: latest status, meter history, open alerts."""

    status: dict[str, Any] | None
    read_at: datetime | None
    meters: tuple[tuple[datetime, int, str | None], ...]
    alerts: tuple[tuple[str, str, datetime], ...]  # severity, words, first seen


@dataclass(frozen=True, slots=True)
class DiscoveredView:
    """A discovered device as an admin lists it."""

    id: uuid.UUID
    identity: str
    data: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime
    reported_by: uuid.UUID | None
    printer_id: uuid.UUID | None


class Devices:
    """Device data uploads and discovered devices."""

    def __init__(self, ctx: ServiceContext, registry: Registry) -> None:
        self._ctx = ctx
        self._registry = registry

    # -- device data ---------------------------------------------------------------------------

    def record(
        self,
        station: StationPrincipal,
        *,
        status: StatusReading | None = None,
        meters: MeterReading | None = None,
        alerts: Sequence[AlertReading] | None = None,
    ) -> RecordResult:
        """Store what a station read from its printer.

        `alerts` is the complete set of active alerts (None: not part of this upload); alerts
        open before and missing now are cleared.

        Raises:
            NoPrinterAssignedError: the station serves no registered printer.
        """
        ctx = self._ctx
        now = ctx.now()
        opened = cleared = 0
        with ctx.write() as db:
            printer_id = printer_id_of(db, station)
            if printer_id is None:
                raise NoPrinterAssignedError("this station serves no registered printer")
            if status is not None:
                text = json.dumps(asdict(status), separators=(",", ":"))
                if len(text) > MAX_DEVICE_BYTES:
                    raise InvalidRequestError(f"a status is at most {MAX_DEVICE_BYTES} bytes")
                reading = db.get(PrinterReading, printer_id)
                if reading is None:
                    db.add(
                        PrinterReading(
                            printer_id=printer_id,
                            site=station.site,
                            station_id=station.id,
                            read_at=now,
                            status=text,
                        )
                    )
                else:
                    reading.station_id, reading.read_at, reading.status = station.id, now, text
            if meters is not None:
                if meters.page_count < 0:
                    raise InvalidRequestError("a page count is not negative")
                db.add(
                    PrinterMeter(
                        site=station.site,
                        printer_id=printer_id,
                        read_at=now,
                        page_count=meters.page_count,
                        source=meters.source,
                    )
                )
            if alerts is not None:
                opened, cleared = self._alerts(db, station.site, printer_id, alerts, now)
        if opened:
            log.info("printer %s: %d new alert(s)", printer_id, opened)
        return RecordResult(printer_id, opened, cleared)

    @staticmethod
    def _alerts(
        db: Any, site: str, printer_id: uuid.UUID, alerts: Sequence[AlertReading], now: datetime
    ) -> tuple[int, int]:
        wanted = {_alert_key(a): a for a in alerts}
        open_rows = {
            row.key: row
            for row in db.scalars(
                select(PrinterAlert).where(
                    PrinterAlert.printer_id == printer_id, PrinterAlert.cleared_at.is_(None)
                )
            )
        }
        opened = cleared = 0
        for key, alert in wanted.items():
            row = open_rows.get(key)
            if row is not None:
                row.last_seen_at = now
                continue
            db.add(
                PrinterAlert(
                    site=site,
                    printer_id=printer_id,
                    key=key,
                    severity=alert.severity[:32],
                    words=alert.words[:255],
                    first_seen_at=now,
                    last_seen_at=now,
                    cleared_at=None,
                )
            )
            opened += 1
        for key, row in open_rows.items():
            if key not in wanted:
                row.cleared_at = now
                cleared += 1
        return opened, cleared

    def data(self, printer_id: uuid.UUID, site: str | None = None) -> DeviceData:
        """The latest status, the meter history (newest first) and the open alerts.

        Raises:
            PrinterNotFoundError: no such printer in this site.
        """
        site = site or self._ctx.site
        with self._ctx.read() as db:
            find_printer(db, printer_id, site)
            reading = db.get(PrinterReading, printer_id)
            meters = db.execute(
                select(PrinterMeter.read_at, PrinterMeter.page_count, PrinterMeter.source)
                .where(PrinterMeter.printer_id == printer_id, PrinterMeter.site == site)
                .order_by(PrinterMeter.read_at.desc())
                .limit(METER_HISTORY)
            ).all()
            alerts = db.execute(
                select(PrinterAlert.severity, PrinterAlert.words, PrinterAlert.first_seen_at)
                .where(
                    PrinterAlert.printer_id == printer_id,
                    PrinterAlert.site == site,
                    PrinterAlert.cleared_at.is_(None),
                )
                .order_by(PrinterAlert.first_seen_at, PrinterAlert.id)
            ).all()
            return DeviceData(
                status=json.loads(reading.status) if reading is not None else None,
                read_at=reading.read_at if reading is not None else None,
                meters=tuple((m[0], int(m[1]), m[2]) for m in meters),
                alerts=tuple((a[0], a[1], a[2]) for a in alerts),
            )

    # -- discovered devices --------------------------------------------------------------------

    def report_discovered(
        self,
        devices: Sequence[Mapping[str, Any]],
        site: str,
        reported_by: uuid.UUID | None = None,
    ) -> tuple[int, int]:
        """Store discovery results (the `DiscoveredDevice.to_json()` dicts); returns (new,
        updated).

        Raises:
            InvalidRequestError: too many devices, one too large, or one with no identity.
        """
        if len(devices) > MAX_DEVICES_PER_REPORT:
            raise InvalidRequestError(f"at most {MAX_DEVICES_PER_REPORT} devices per report")
        prepared = []
        for device in devices:
            data = {key: device.get(key) for key in DEVICE_FIELDS if device.get(key) is not None}
            text = json.dumps(data, separators=(",", ":"), sort_keys=True)
            if len(text) > MAX_DEVICE_BYTES:
                raise InvalidRequestError(
                    f"a discovered device is at most {MAX_DEVICE_BYTES} bytes"
                )
            prepared.append((device_identity(data), text))
        ctx = self._ctx
        now = ctx.now()
        new = updated = 0
        with ctx.write() as db:
            for identity, text in prepared:
                row = db.scalar(
                    select(DiscoveredDeviceRow).where(
                        DiscoveredDeviceRow.site == site, DiscoveredDeviceRow.identity == identity
                    )
                )
                if row is None:
                    db.add(
                        DiscoveredDeviceRow(
                            id=uuid.uuid4(),
                            site=site,
                            identity=identity,
                            data=text,
                            reported_by=reported_by,
                            first_seen_at=now,
                            last_seen_at=now,
                            printer_id=None,
                        )
                    )
                    db.flush()  # two findings with one identity in a report: the second updates
                    new += 1
                else:
                    row.data, row.last_seen_at, row.reported_by = text, now, reported_by
                    updated += 1
        log.info("discovery report for site %s: %d new, %d seen again", site, new, updated)
        return new, updated

    def list_discovered(self, site: str | None = None) -> list[DiscoveredView]:
        """The site's discovered devices, most recently seen first."""
        site = site or self._ctx.site
        with self._ctx.read() as db:
            rows = db.scalars(
                select(DiscoveredDeviceRow)
                .where(DiscoveredDeviceRow.site == site)
                .order_by(DiscoveredDeviceRow.last_seen_at.desc(), DiscoveredDeviceRow.identity)
            )
            return [_discovered(row) for row in rows]

    def get_discovered(self, device_id: uuid.UUID, site: str | None = None) -> DiscoveredView:
        """One discovered device of the site.

        Raises:
            DeviceNotFoundError: no such device in this site.
        """
        site = site or self._ctx.site
        with self._ctx.read() as db:
            row = db.scalar(
                select(DiscoveredDeviceRow).where(
                    DiscoveredDeviceRow.id == device_id, DiscoveredDeviceRow.site == site
                )
            )
            if row is None:
                raise DeviceNotFoundError("no such discovered device")
            return _discovered(row)

    def register_discovered(
        self,
        device_id: uuid.UUID,
        name: str,
        site: str | None = None,
        **overrides: Any,
    ) -> PrinterView:
        """Register a discovered device as a printer (URI from its safest service).

        `overrides` are `PrinterSpec` fields (pin, mode, snmp_community, ...). An ipps:// URI
        is chosen only when a pin is given: pins are recorded by an admin, never trusted from
        the network on first sight.

        Raises:
            DeviceNotFoundError, InvalidRequestError, PrinterExistsError,
            ConflictError: the device is a registered printer already.
        """
        site = site or self._ctx.site
        device = self.get_discovered(device_id, site)
        if device.printer_id is not None:
            raise ConflictError("this device is a registered printer already")
        data = device.data
        uri = overrides.pop("uri", None) or _pick_uri(data, overrides.get("pin") is not None)
        if uri is None:
            raise InvalidRequestError("the device offers no printing URI; give one (--uri)")
        capabilities = {
            key: data[key]
            for key in ("make", "model", "serial_number", "mac_address", "color", "duplex", "pdl")
            if data.get(key) is not None
        }
        spec = PrinterSpec(
            name=name,
            uri=uri,
            location=str(overrides.pop("location", None) or data.get("location") or ""),
            capabilities=overrides.pop("capabilities", None) or capabilities,
            **overrides,
        )
        try:
            with self._ctx.write() as db:  # the printer and the link to it, or neither
                row = db.get(DiscoveredDeviceRow, device_id)
                if row is None or row.site != site or row.printer_id is not None:
                    raise ConflictError("this device is a registered printer already")
                printer = self._registry.add_in(db, spec, site)
                row.printer_id = printer.id
                view = printer_view(printer)
        except IntegrityError as exc:
            raise PrinterExistsError("this site has a printer of that name") from exc
        return view


DEVICE_FIELDS = (
    "addresses",
    "name",
    "uuid",
    "mac_address",
    "serial_number",
    "make",
    "model",
    "location",
    "uris",
    "pdl",
    "color",
    "duplex",
    "admin_url",
    "status",
    "page_count",
    "sources",
)


def device_identity(data: Mapping[str, Any]) -> str:
    """The strongest identity of a finding: uuid, MAC, serial, else its first address.

    Raises:
        InvalidRequestError: the finding has none of them.
    """
    for key, prefix in (("uuid", "uuid"), ("mac_address", "mac"), ("serial_number", "serial")):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return f"{prefix}:{value.strip().lower()}"[:255]
    addresses = data.get("addresses")
    if isinstance(addresses, list) and addresses and isinstance(addresses[0], str):
        return f"address:{addresses[0]}"[:255]
    raise InvalidRequestError("a discovered device needs a uuid, MAC, serial or address")


def _pick_uri(data: Mapping[str, Any], pinned: bool) -> str | None:
    uris = [u for u in data.get("uris") or [] if isinstance(u, str)]
    order = (("ipps://",) if pinned else ()) + ("ipp://", "socket://")
    for prefix in order:
        for uri in uris:
            if uri.startswith(prefix):
                return uri
    return None


def _alert_key(alert: AlertReading) -> str:
    text = f"{alert.severity.strip().lower()}|{alert.words.strip()}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _discovered(row: DiscoveredDeviceRow) -> DiscoveredView:
    return DiscoveredView(
        id=row.id,
        identity=row.identity,
        data=json.loads(row.data),
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        reported_by=row.reported_by,
        printer_id=row.printer_id,
    )


__all__ = [
    "AlertReading",
    "DeviceData",
    "Devices",
    "DiscoveredView",
    "MeterReading",
    "RecordResult",
    "StatusReading",
    "SupplyReading",
]
