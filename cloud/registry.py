"""The printer registry: printers, the stations assigned to them, and the config stations run.

A registered printer records how stations reach it: its URI and transport policy (the station
side is `hardware.printers.fallback.PrinterPolicy`: "ipps-only", "ipps-then-ipp" or "any", with
the IPPS certificate pin), its capabilities and location. A station serves one printer; a printer
may have several stations.

The config a station runs is a small JSON document built from its printer's row
(`station_config`); its ETag is a hash of that document. A station's heartbeat carries the ETag
it runs: when it matches, the answer is "unchanged" and nothing else (DESIGN.md's keep-alive
budget); when an admin changed the printer (or moved the station), the next heartbeat carries the
new document. Nothing is pushed: stations only open outbound connections.

Invariants: every query carries the caller's site; the SNMP community reaches the station that
needs it and is never logged nor shown in listings; a printer with stations assigned is not
removed (they would be left without a way to print).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.context import ServiceContext
from cloud.db import (
    DiscoveredDeviceRow,
    Printer,
    PrinterAlert,
    PrinterMeter,
    PrinterReading,
    Station,
    StationAssignment,
    StationHealth,
)
from cloud.errors import (
    InvalidRequestError,
    PrinterExistsError,
    PrinterInUseError,
    PrinterNotFoundError,
    StationNotFoundError,
)
from cloud.identity import StationPrincipal
from cloud.sites import require_site

log = logging.getLogger(__name__)

# The same modes and rules as hardware.printers.fallback.PrinterPolicy: the cloud may not import
# the printer stack (import contract), so the rules are restated here and tested against it.
PrinterMode = Literal["ipps-only", "ipps-then-ipp", "any"]
MODES: tuple[str, ...] = get_args(PrinterMode)
_SCHEMES = {"uri": ("ipps", "ipp", "socket"), "ipp_uri": ("ipp",), "raw_uri": ("socket",)}
# How a station reaches and trusts its printer: the fields a spec, a row, a view and the
# station's config document all carry under the same names.
POLICY_FIELDS = ("uri", "mode", "ipp_uri", "raw_uri", "pin", "raw_pjl")
MAX_NAME_CHARS = 200
MAX_URI_CHARS = 2048
_PIN_BYTES = 32
MAX_CAPABILITIES_BYTES = 4096
MAX_HEALTH_BYTES = 1024
CONFIG_VERSION = 1  # of the document format stations receive


@dataclass(frozen=True, slots=True)
class PrinterSpec:
    """What an admin says about a printer (add, or the fields of an update)."""

    name: str
    uri: str
    mode: str | None = None
    ipp_uri: str | None = None
    raw_uri: str | None = None
    pin: str | None = None
    raw_pjl: bool = True
    snmp_community: str | None = field(default=None, repr=False)
    location: str = ""
    capabilities: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PrinterView:
    """A registered printer as an admin sees it (the SNMP community only as present or not)."""

    id: uuid.UUID
    site: str
    name: str
    uri: str
    mode: str | None
    ipp_uri: str | None
    raw_uri: str | None
    pin: str | None
    raw_pjl: bool
    has_snmp: bool
    location: str
    capabilities: dict[str, Any]
    config_version: int
    created_at: datetime
    updated_at: datetime
    stations: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True, slots=True)
class StationConfigDoc:
    """What a station runs: its printer's config (None when no printer is assigned) and ETag."""

    etag: str
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class HeartbeatAnswer:
    """`changed` False: the station's config is current (send nothing but the ETag)."""

    changed: bool
    config: StationConfigDoc


class Registry:
    """Printers, assignments and the config documents stations fetch with their heartbeat."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    # -- printers ----------------------------------------------------------------------------

    def add(self, spec: PrinterSpec, site: str | None = None) -> PrinterView:
        """Register a printer.

        Raises:
            InvalidRequestError: the URIs, mode, pin or capabilities do not make a policy.
            PrinterExistsError: the site has a printer of that name.
            NotFoundError: no such site.
        """
        ctx = self._ctx
        site = site or ctx.site
        try:
            with ctx.write() as db:
                row = self.add_in(db, spec, site)
                view = printer_view(row, ())
        except IntegrityError as exc:
            raise PrinterExistsError("this site has a printer of that name") from exc
        printer_id = view.id
        log.info("printer %s registered in site %s", printer_id, site)
        return view

    def add_in(self, db: Session, spec: PrinterSpec, site: str) -> Printer:
        """Register a printer in the caller's transaction (`add`, adopting a discovered device).

        Raises:
            InvalidRequestError, NotFoundError: as `add`; IntegrityError for a taken name.
        """
        spec = check_spec(spec)
        require_site(db, site)
        now = self._ctx.now()
        row = Printer(
            id=uuid.uuid4(),
            site=site,
            name=spec.name,
            **policy_fields(spec),
            snmp_community=spec.snmp_community,
            location=spec.location,
            capabilities=_capabilities_json(spec.capabilities),
            config_version=1,
            created_at=now,
            updated_at=now,
        )
        db.add(row)
        db.flush()
        self._ctx.audit(db, "printer-added", detail=str(row.id), site=site)
        return row

    def list(self, site: str | None = None) -> list[PrinterView]:
        """The site's printers by name."""
        site = site or self._ctx.site
        with self._ctx.read() as db:
            rows = db.scalars(select(Printer).where(Printer.site == site).order_by(Printer.name))
            return [printer_view(row, _stations(db, row.id)) for row in rows]

    def get(self, printer_id: uuid.UUID, site: str | None = None) -> PrinterView:
        """One printer of the site.

        Raises:
            PrinterNotFoundError: no such printer in this site.
        """
        with self._ctx.read() as db:
            row = find_printer(db, printer_id, site or self._ctx.site)
            return printer_view(row, _stations(db, row.id))

    def find(self, name_or_id: str, site: str | None = None) -> PrinterView:
        """A printer of the site by id or by name (what an admin types).

        Raises:
            PrinterNotFoundError: no such printer in this site.
        """
        site = site or self._ctx.site
        try:
            return self.get(uuid.UUID(name_or_id), site)
        except ValueError:
            pass
        with self._ctx.read() as db:
            row = db.scalar(select(Printer).where(Printer.site == site, Printer.name == name_or_id))
            if row is None:
                raise PrinterNotFoundError("no printer of that name in this site")
            return printer_view(row, _stations(db, row.id))

    def update(
        self, printer_id: uuid.UUID, changes: Mapping[str, Any], site: str | None = None
    ) -> PrinterView:
        """Change some of a printer's fields; its stations get the new config at their next
        heartbeat.

        Raises:
            PrinterNotFoundError, InvalidRequestError, PrinterExistsError.
        """
        unknown = set(changes) - set(PrinterSpec.__dataclass_fields__)
        if unknown:
            raise InvalidRequestError(f"unknown printer fields: {', '.join(sorted(unknown))}")
        for required in ("name", "uri", "raw_pjl", "location", "capabilities"):
            if required in changes and changes[required] is None:
                raise InvalidRequestError(f"a printer's {required} cannot be removed")
        ctx = self._ctx
        site = site or ctx.site
        try:
            with ctx.write() as db:
                row = find_printer(db, printer_id, site)
                spec = check_spec(replace(_spec(row), **dict(changes)))
                for name in PrinterSpec.__dataclass_fields__:
                    value = getattr(spec, name)
                    if name == "capabilities":
                        value = _capabilities_json(value)
                    setattr(row, name, value)
                row.config_version += 1
                row.updated_at = ctx.now()
                # Stations keep their printer_uri column in step (older code reads it).
                for station in db.scalars(_assigned_stations(row.id)):
                    station.printer_uri = row.uri
                db.flush()
                ctx.audit(db, "printer-changed", detail=str(printer_id), site=site)
                view = printer_view(row, _stations(db, row.id))
        except IntegrityError as exc:
            raise PrinterExistsError("this site has a printer of that name") from exc
        log.info("printer %s changed (config version %d)", printer_id, view.config_version)
        return view

    def remove(self, printer_id: uuid.UUID, site: str | None = None) -> None:
        """Remove a printer with its readings, meters and alerts.

        Raises:
            PrinterNotFoundError: no such printer in this site.
            PrinterInUseError: stations are assigned to it.
        """
        ctx = self._ctx
        site = site or ctx.site
        with ctx.write() as db:
            row = find_printer(db, printer_id, site)
            if _stations(db, row.id):
                raise PrinterInUseError(
                    "stations are assigned to this printer; assign them to another first"
                )
            for model in (PrinterReading, PrinterMeter, PrinterAlert):
                for item in db.scalars(select(model).where(model.printer_id == row.id)):
                    db.delete(item)
            for device in db.scalars(
                select(DiscoveredDeviceRow).where(DiscoveredDeviceRow.printer_id == row.id)
            ):
                device.printer_id = None
            db.flush()
            db.delete(row)
            ctx.audit(db, "printer-removed", detail=str(printer_id), site=site)
        log.info("printer %s removed", printer_id)

    def assign(
        self, printer_id: uuid.UUID, station_id: uuid.UUID, site: str | None = None
    ) -> PrinterView:
        """Make `station_id` serve `printer_id` (moving it from any other printer).

        Raises:
            PrinterNotFoundError, StationNotFoundError: not in this site.
        """
        ctx = self._ctx
        site = site or ctx.site
        with ctx.write() as db:
            printer = find_printer(db, printer_id, site)
            station = db.scalar(
                select(Station).where(Station.id == station_id, Station.site == site)
            )
            if station is None:
                raise StationNotFoundError("no such station")
            assignment = db.get(StationAssignment, station_id)
            if assignment is None:
                db.add(
                    StationAssignment(
                        station_id=station_id,
                        site=site,
                        printer_id=printer_id,
                        assigned_at=ctx.now(),
                    )
                )
            else:
                assignment.printer_id = printer_id
                assignment.assigned_at = ctx.now()
            station.printer_uri = printer.uri
            db.flush()
            ctx.audit(
                db, "station-assigned", station_id=station_id, detail=str(printer_id), site=site
            )
            view = printer_view(printer, _stations(db, printer.id))
        log.info("station %s assigned to printer %s", station_id, printer_id)
        return view

    def printer_of(self, station: StationPrincipal) -> uuid.UUID | None:
        """The printer the station serves, if any."""
        with self._ctx.read() as db:
            return printer_id_of(db, station)

    # -- station config and heartbeat --------------------------------------------------------

    def station_config(self, station: StationPrincipal) -> StationConfigDoc:
        """The config document the station should run, with its ETag."""
        with self._ctx.read() as db:
            return _config_doc(db, station)

    def heartbeat(
        self,
        station: StationPrincipal,
        etag: str | None,
        health: Mapping[str, Any] | None,
    ) -> HeartbeatAnswer:
        """Record that the station is alive (and its health, when it sent one); tell it whether
        its config (`etag`) is current.

        `health` None means "as last reported": stations send their report only when it changed.
        """
        ctx = self._ctx
        now = ctx.now()
        health_json = None
        if health is not None:
            health_json = json.dumps(dict(health), separators=(",", ":"), sort_keys=True)
            if len(health_json) > MAX_HEALTH_BYTES:
                raise InvalidRequestError(f"a health report is at most {MAX_HEALTH_BYTES} bytes")
        with ctx.write() as db:
            doc = _config_doc(db, station)
            row = db.get(StationHealth, station.id)
            if row is None:
                row = StationHealth(
                    station_id=station.id,
                    site=station.site,
                    last_seen_at=now,
                    config_etag=etag,
                    health=health_json or "{}",
                    heartbeats=0,
                )
                db.add(row)
            row.last_seen_at = now
            row.config_etag = etag
            row.heartbeats = (row.heartbeats or 0) + 1
            if health_json is not None:
                row.health = health_json
        return HeartbeatAnswer(changed=etag != doc.etag, config=doc)

    def station_health(self, station_id: uuid.UUID, site: str) -> dict[str, Any] | None:
        """The station's last heartbeat (seen, ETag, whether its config is current, health)."""
        with self._ctx.read() as db:
            row = db.scalar(
                select(StationHealth).where(
                    StationHealth.station_id == station_id, StationHealth.site == site
                )
            )
            station = db.scalar(
                select(Station).where(Station.id == station_id, Station.site == site)
            )
            if row is None or station is None:
                return None
            principal = StationPrincipal(
                station.id, station.site, station.name, station.printer_uri
            )
            current = _config_doc(db, principal).etag
            return {
                "last_seen_at": row.last_seen_at,
                "config_etag": row.config_etag,
                "config_current": row.config_etag == current,
                "heartbeats": row.heartbeats,
                "health": json.loads(row.health or "{}"),
            }


def check_spec(spec: PrinterSpec) -> PrinterSpec:
    """Normalise and check a spec as `PrinterPolicy` would (module comment at `MODES`).

    Raises:
        InvalidRequestError: what is wrong, in words.
    """
    name = spec.name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise InvalidRequestError(f"a printer needs a name of 1 to {MAX_NAME_CHARS} characters")
    for key, schemes in _SCHEMES.items():
        value = getattr(spec, key)
        if value is None:
            continue
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname or len(value) > MAX_URI_CHARS:
            raise InvalidRequestError(f"{key} must be a {' or '.join(schemes)}:// URI with a host")
    if spec.mode is not None and spec.mode not in MODES:
        raise InvalidRequestError(f"mode must be one of {', '.join(MODES)}")
    if spec.pin is not None:
        try:
            raw = base64.b64decode(spec.pin, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != _PIN_BYTES:
            raise InvalidRequestError("pin is the base64 SHA-256 of the printer's public key")
    ipps = spec.uri if spec.uri.startswith("ipps://") else None
    if ipps is not None and spec.pin is None:
        raise InvalidRequestError("an ipps:// printer needs the pin of its certificate's key")
    if spec.mode == "ipps-only" and (ipps is None or spec.ipp_uri or spec.raw_uri):
        raise InvalidRequestError(
            "an ipps-only printer has an ipps:// URI and pin, and nothing else"
        )
    if spec.mode == "ipps-then-ipp" and (spec.raw_uri or spec.uri.startswith("socket://")):
        raise InvalidRequestError("RAW 9100 needs mode 'any'")
    if spec.mode is None and (spec.ipp_uri or spec.raw_uri):
        raise InvalidRequestError("fallback URIs need a mode (ipps-then-ipp or any)")
    _capabilities_json(spec.capabilities)
    return replace(spec, name=name, location=spec.location.strip()[:MAX_NAME_CHARS])


def etag_of(document: Mapping[str, Any]) -> str:
    """A strong ETag of a config document: 96 bits of SHA-256 over its canonical JSON."""
    canonical = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    digest = hashlib.sha256(canonical).digest()[:12]
    return '"' + base64.urlsafe_b64encode(digest).decode("ascii") + '"'


def _config_doc(db: Session, station: StationPrincipal) -> StationConfigDoc:
    printer_id = printer_id_of(db, station)
    printer = db.get(Printer, printer_id) if printer_id is not None else None
    document: dict[str, Any] = {"version": CONFIG_VERSION, "printer": None}
    if printer is not None:
        document["printer"] = {
            "id": str(printer.id),
            "name": printer.name,
            **policy_fields(printer),
            "snmp_community": printer.snmp_community,
            "location": printer.location,
        }
    return StationConfigDoc(etag_of(document), document)


def printer_id_of(db: Session, station: StationPrincipal) -> uuid.UUID | None:
    """The printer a station serves (in its own site), if any."""
    return db.scalar(
        select(StationAssignment.printer_id).where(
            StationAssignment.station_id == station.id, StationAssignment.site == station.site
        )
    )


def find_printer(db: Session, printer_id: uuid.UUID, site: str) -> Printer:
    """The printer row of the site (`PrinterNotFoundError` if none)."""
    row = db.scalar(select(Printer).where(Printer.id == printer_id, Printer.site == site))
    if row is None:
        raise PrinterNotFoundError("no such printer")
    return row


def _assigned_stations(printer_id: uuid.UUID) -> Any:
    return (
        select(Station)
        .join(StationAssignment, StationAssignment.station_id == Station.id)
        .where(StationAssignment.printer_id == printer_id)
    )


def _stations(db: Session, printer_id: uuid.UUID) -> tuple[uuid.UUID, ...]:
    ids = db.scalars(
        select(StationAssignment.station_id)
        .where(StationAssignment.printer_id == printer_id)
        .order_by(StationAssignment.assigned_at)
    )
    return tuple(ids)


def _capabilities_json(capabilities: Mapping[str, Any]) -> str:
    try:
        text = json.dumps(dict(capabilities), separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError("capabilities must be a JSON object") from exc
    if len(text) > MAX_CAPABILITIES_BYTES:
        raise InvalidRequestError(f"capabilities are at most {MAX_CAPABILITIES_BYTES} bytes")
    return text


def policy_fields(source: Printer | PrinterSpec | PrinterView) -> dict[str, Any]:
    """The `POLICY_FIELDS` of a printer row, spec or view, by name."""
    return {name: getattr(source, name) for name in POLICY_FIELDS}


def _spec(row: Printer) -> PrinterSpec:
    return PrinterSpec(
        name=row.name,
        **policy_fields(row),
        snmp_community=row.snmp_community,
        location=row.location,
        capabilities=json.loads(row.capabilities or "{}"),
    )


def printer_view(row: Printer, stations: tuple[uuid.UUID, ...] = ()) -> PrinterView:
    """The admin's view of a printer row."""
    return PrinterView(
        id=row.id,
        site=row.site,
        name=row.name,
        **policy_fields(row),
        has_snmp=row.snmp_community is not None,
        location=row.location,
        capabilities=json.loads(row.capabilities or "{}"),
        config_version=row.config_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        stations=stations,
    )
