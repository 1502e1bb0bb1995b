"""The printer registry and device data over HTTP (API.md, "Printers and device data").

Admins (site-scoped): register, list, show, change, remove printers; assign stations; list the
discovered devices and register one as a printer. Stations (signed): the heartbeat, device data
uploads, discovery reports.

The heartbeat is the station's keep-alive and must cost next to nothing on the wire (DESIGN.md:
at most 1 MB a month). The station sends the ETag of the config it runs in `If-None-Match` and
a health report only when its health changed (an empty body otherwise); the answer is a bare
`304 Not Modified` with the ETag while the config is current, and the new config otherwise.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud.api.deps import AdminDep, ServiceDep, StationDep, request_body
from cloud.api.schemas import iso
from cloud.devices import (
    AlertReading,
    DeviceData,
    DiscoveredView,
    MeterReading,
    StatusReading,
    SupplyReading,
)
from cloud.errors import InvalidRequestError
from cloud.registry import (
    MAX_NAME_CHARS,
    MAX_URI_CHARS,
    PrinterMode,
    PrinterSpec,
    PrinterView,
    policy_fields,
)

admin_router = APIRouter(prefix="/api/v1/admin", tags=["admin", "printers"])
station_router = APIRouter(prefix="/api/v1/station", tags=["station", "printers"])

# The registry's own limits and modes (it checks them again: other callers than HTTP), so the
# schema refuses what the registry would, with the same bounds.
Mode = PrinterMode
Uri = Annotated[str, Field(min_length=1, max_length=MAX_URI_CHARS)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
Short = Annotated[str, Field(max_length=200)]


# -- shapes ---------------------------------------------------------------------------------------


class PrinterBody(BaseModel):
    """POST /api/v1/admin/printers."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    uri: Uri
    mode: Mode | None = None
    ipp_uri: Uri | None = None
    raw_uri: Uri | None = None
    pin: str | None = Field(default=None, max_length=64)
    raw_pjl: bool = True
    snmp_community: str | None = Field(default=None, max_length=255)
    location: str = Field(default="", max_length=200)
    capabilities: dict[str, Any] = Field(default_factory=dict)


class PrinterPatch(BaseModel):
    """PATCH /api/v1/admin/printers/{printer_id}: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    uri: Uri | None = None
    mode: Mode | None = None
    ipp_uri: Uri | None = None
    raw_uri: Uri | None = None
    pin: str | None = Field(default=None, max_length=64)
    raw_pjl: bool | None = None
    snmp_community: str | None = Field(default=None, max_length=255)
    location: str | None = Field(default=None, max_length=200)
    capabilities: dict[str, Any] | None = None


class AdminPrinter(BaseModel):
    """A registered printer (the SNMP community only as `has_snmp`)."""

    id: str
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
    stations: list[str]
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, view: PrinterView) -> AdminPrinter:
        """From the domain view."""
        return cls(
            id=str(view.id),
            name=view.name,
            **policy_fields(view),
            has_snmp=view.has_snmp,
            location=view.location,
            capabilities=view.capabilities,
            config_version=view.config_version,
            stations=[str(s) for s in view.stations],
            created_at=iso(view.created_at) or "",
            updated_at=iso(view.updated_at) or "",
        )


class AdminPrinters(BaseModel):
    """GET /api/v1/admin/printers."""

    printers: list[AdminPrinter]


class MeterItem(BaseModel):
    """One meter reading."""

    read_at: str
    page_count: int
    source: str | None


class AlertItem(BaseModel):
    """One open alert."""

    severity: str
    words: str
    since: str


class StationHealthItem(BaseModel):
    """A station's last heartbeat."""

    station_id: str
    last_seen_at: str | None
    config_current: bool | None
    health: dict[str, Any] | None


class AdminPrinterDetail(BaseModel):
    """GET /api/v1/admin/printers/{printer_id}: the printer, its latest data and its stations."""

    printer: AdminPrinter
    status: dict[str, Any] | None
    read_at: str | None
    meters: list[MeterItem]
    alerts: list[AlertItem]
    stations: list[StationHealthItem]


class SupplyModel(BaseModel):
    """One supply level."""

    description: str = Field(max_length=200)
    kind: str = Field(max_length=64)
    percent: int | None = Field(default=None, ge=0, le=100)
    level_words: str = Field(max_length=64)
    colour: str | None = Field(default=None, max_length=64)


class StatusModel(BaseModel):
    """A printer's status and supplies."""

    status_words: str = Field(max_length=200)
    problem: str | None = Field(default=None, max_length=200)
    errors: list[Short] = Field(default_factory=list, max_length=32)
    supplies: list[SupplyModel] = Field(default_factory=list, max_length=32)
    console: list[Short] = Field(default_factory=list, max_length=8)
    page_count: int | None = Field(default=None, ge=0)


class MeterModel(BaseModel):
    """A page counter."""

    page_count: int = Field(ge=0)
    source: str | None = Field(default=None, max_length=64)


class AlertModel(BaseModel):
    """An active alert."""

    severity: str = Field(max_length=32)
    words: str = Field(min_length=1, max_length=255)


class DeviceDataUpload(BaseModel):
    """POST /api/v1/station/device-data: any of status, meters, and the complete alert set."""

    model_config = ConfigDict(extra="forbid")

    status: StatusModel | None = None
    meters: MeterModel | None = None
    alerts: list[AlertModel] | None = Field(default=None, max_length=64)


class HealthReport(BaseModel):
    """The body of a heartbeat, when the station's health changed (bounded and typed)."""

    model_config = ConfigDict(extra="forbid")

    state: str | None = Field(default=None, max_length=32)
    printer: str | None = Field(default=None, max_length=200)
    started: int | None = None  # unix seconds of the station's start
    version: str | None = Field(default=None, max_length=32)
    unsettled: int | None = Field(default=None, ge=0)  # releases in the journal


class HeartbeatConfig(BaseModel):
    """The 200 answer of a heartbeat: the config the station should run, and its ETag."""

    etag: str
    config: dict[str, Any]


class DiscoveryReport(BaseModel):
    """Discovered devices, as `pullprint discover --json` prints them."""

    devices: list[dict[str, Any]] = Field(max_length=1024)


class DiscoveryResult(BaseModel):
    """How many devices were new, and how many seen again."""

    new: int
    updated: int


class AdminDiscovered(BaseModel):
    """A discovered device."""

    id: str
    identity: str
    data: dict[str, Any]
    first_seen_at: str
    last_seen_at: str
    printer_id: str | None

    @classmethod
    def of(cls, view: DiscoveredView) -> AdminDiscovered:
        """From the domain view."""
        return cls(
            id=str(view.id),
            identity=view.identity,
            data=view.data,
            first_seen_at=iso(view.first_seen_at) or "",
            last_seen_at=iso(view.last_seen_at) or "",
            printer_id=str(view.printer_id) if view.printer_id else None,
        )


class AdminDiscoveredList(BaseModel):
    """GET /api/v1/admin/discovered."""

    devices: list[AdminDiscovered]


class RegisterDiscovered(BaseModel):
    """POST /api/v1/admin/discovered/{device_id}/register."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    uri: Uri | None = None
    mode: Mode | None = None
    pin: str | None = Field(default=None, max_length=64)
    snmp_community: str | None = Field(default=None, max_length=255)
    location: str | None = Field(default=None, max_length=200)


def detail_of(
    view: PrinterView, data: DeviceData, health: list[tuple[uuid.UUID, dict[str, Any] | None]]
) -> AdminPrinterDetail:
    """The show view of a printer."""
    return AdminPrinterDetail(
        printer=AdminPrinter.of(view),
        status=data.status,
        read_at=iso(data.read_at),
        meters=[
            MeterItem(read_at=iso(at) or "", page_count=n, source=s) for at, n, s in data.meters
        ],
        alerts=[AlertItem(severity=s, words=w, since=iso(at) or "") for s, w, at in data.alerts],
        stations=[
            StationHealthItem(
                station_id=str(station_id),
                last_seen_at=iso(_seen(h)),
                config_current=h["config_current"] if h else None,
                health=h["health"] if h else None,
            )
            for station_id, h in health
        ],
    )


def _seen(health: dict[str, Any] | None) -> datetime | None:
    return health["last_seen_at"] if health else None


# -- admin routes ---------------------------------------------------------------------------------


@admin_router.post("/printers", status_code=201)
def add_printer(body: PrinterBody, admin: AdminDep, service: ServiceDep) -> AdminPrinter:
    """Register a printer in the admin's site."""
    spec = PrinterSpec(**body.model_dump())
    return AdminPrinter.of(service.registry.add(spec, admin.site))


@admin_router.get("/printers")
def list_printers(admin: AdminDep, service: ServiceDep) -> AdminPrinters:
    """The site's printers."""
    return AdminPrinters(printers=[AdminPrinter.of(v) for v in service.registry.list(admin.site)])


@admin_router.get("/printers/{printer_id}")
def show_printer(printer_id: uuid.UUID, admin: AdminDep, service: ServiceDep) -> AdminPrinterDetail:
    """A printer with its latest status and supplies, meter history, open alerts, stations."""
    view = service.registry.get(printer_id, admin.site)
    data = service.devices.data(printer_id, admin.site)
    health = [(s, service.registry.station_health(s, admin.site)) for s in view.stations]
    return detail_of(view, data, health)


@admin_router.patch("/printers/{printer_id}")
def change_printer(
    printer_id: uuid.UUID, body: PrinterPatch, admin: AdminDep, service: ServiceDep
) -> AdminPrinter:
    """Change a printer; its stations pick the new config up with their next heartbeat."""
    changes = body.model_dump(exclude_unset=True)
    return AdminPrinter.of(service.registry.update(printer_id, changes, admin.site))


@admin_router.delete("/printers/{printer_id}", status_code=204)
def remove_printer(printer_id: uuid.UUID, admin: AdminDep, service: ServiceDep) -> Response:
    """Remove a printer no station is assigned to."""
    service.registry.remove(printer_id, admin.site)
    return Response(status_code=204)


@admin_router.put("/printers/{printer_id}/stations/{station_id}")
def assign_station(
    printer_id: uuid.UUID, station_id: uuid.UUID, admin: AdminDep, service: ServiceDep
) -> AdminPrinter:
    """Make a station serve this printer (it gets the config with its next heartbeat)."""
    return AdminPrinter.of(service.registry.assign(printer_id, station_id, admin.site))


@admin_router.get("/discovered")
def list_discovered(admin: AdminDep, service: ServiceDep) -> AdminDiscoveredList:
    """The devices discovery found in the site."""
    views = service.devices.list_discovered(admin.site)
    return AdminDiscoveredList(devices=[AdminDiscovered.of(v) for v in views])


@admin_router.post("/discovered")
def report_discovered_by_admin(
    body: DiscoveryReport, admin: AdminDep, service: ServiceDep
) -> DiscoveryResult:
    """Discovery results from an admin's machine (`pullprint discover --report`)."""
    new, updated = service.devices.report_discovered(body.devices, admin.site)
    return DiscoveryResult(new=new, updated=updated)


@admin_router.post("/discovered/{device_id}/register", status_code=201)
def register_discovered(
    device_id: uuid.UUID, body: RegisterDiscovered, admin: AdminDep, service: ServiceDep
) -> AdminPrinter:
    """Turn a discovered device into a registered printer."""
    extra = body.model_dump(exclude_unset=True, exclude={"name"})
    view = service.devices.register_discovered(device_id, body.name, admin.site, **extra)
    return AdminPrinter.of(view)


# -- station routes -------------------------------------------------------------------------------


@station_router.post(
    "/heartbeat",
    responses={304: {"description": "the station's config is current"}},
    response_model=HeartbeatConfig,
)
def heartbeat(
    station: StationDep,
    service: ServiceDep,
    body: Annotated[bytes, Depends(request_body)],
    if_none_match: Annotated[str | None, Header(max_length=64)] = None,
) -> Response | HeartbeatConfig:
    """Keep-alive with the health report (only when it changed) and the config ETag.

    The body is read raw, so the station needs no Content-Type header: every header it sends is
    paid for on every heartbeat.
    """
    health = None
    if body.strip():
        try:
            health = HealthReport.model_validate_json(body).model_dump(exclude_none=True)
        except ValidationError:
            raise InvalidRequestError("the health report is not a valid JSON object") from None
    answer = service.registry.heartbeat(station, if_none_match, health)
    if not answer.changed:
        return Response(status_code=304, headers={"ETag": answer.config.etag})
    return HeartbeatConfig(etag=answer.config.etag, config=answer.config.document)


@station_router.post("/device-data", status_code=204)
def upload_device_data(
    body: DeviceDataUpload, station: StationDep, service: ServiceDep
) -> Response:
    """Status and supplies, meters, and the complete set of active alerts of the station's
    printer (any of them)."""
    status = None
    if body.status is not None:
        s = body.status
        status = StatusReading(
            status_words=s.status_words,
            problem=s.problem,
            errors=tuple(s.errors),
            supplies=tuple(SupplyReading(**item.model_dump()) for item in s.supplies),
            console=tuple(s.console),
            page_count=s.page_count,
        )
    meters = MeterReading(**body.meters.model_dump()) if body.meters is not None else None
    alerts = (
        [AlertReading(**a.model_dump()) for a in body.alerts] if body.alerts is not None else None
    )
    service.devices.record(station, status=status, meters=meters, alerts=alerts)
    return Response(status_code=204)


@station_router.post("/discovered")
def report_discovered(
    body: DiscoveryReport, station: StationDep, service: ServiceDep
) -> DiscoveryResult:
    """Discovery results from a station (`pullprint discover --report` on the station)."""
    new, updated = service.devices.report_discovered(body.devices, station.site, station.id)
    return DiscoveryResult(new=new, updated=updated)
