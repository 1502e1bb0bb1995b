"""Update endpoints: admins publish signed bundles and set the site policy; stations poll,
download and report.

Admin (bearer admin token, confined to the admin's site):

    POST   /api/v1/admin/updates                 body: a signed bundle (application/x-tar)
    GET    /api/v1/admin/updates                 the site's bundles
    DELETE /api/v1/admin/updates/{version}       withdraw one
    GET    /api/v1/admin/updates/policy          off | notify | automatic (+ pinned version)
    PUT    /api/v1/admin/updates/policy
    GET    /api/v1/admin/updates/stations        each station's last update report

Station (RFC 9421 signed, confined to the station's site):

    GET    /api/v1/station/update                policy + offer (version, size, sha256, bundle)
    GET    /api/v1/station/update/bundles/{id}   the bundle's bytes
    POST   /api/v1/station/update/report         the update part of the station's health
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from cloud.api.deps import AdminDep, ServiceDep, StationDep
from cloud.api.schemas import iso
from cloud.errors import TruncatedUploadError
from cloud.updates import BundleView, StationUpdateReport

admin_router = APIRouter(prefix="/api/v1/admin/updates", tags=["updates"])
station_router = APIRouter(prefix="/api/v1/station/update", tags=["updates"])

PolicyName = Literal["off", "notify", "automatic"]
_VERSION = r"^[0-9A-Za-z.+!_-]{1,64}$"


class UpdateBundleOut(BaseModel):
    """A published bundle."""

    id: str
    version: str
    min_version: str
    created_at: str
    published_at: str
    size: int
    sha256: str

    @classmethod
    def of(cls, view: BundleView) -> UpdateBundleOut:
        """From the domain view."""
        return cls(
            id=str(view.id),
            version=view.version,
            min_version=view.min_version,
            created_at=iso(view.created_at) or "",
            published_at=iso(view.published_at) or "",
            size=view.size_bytes,
            sha256=view.sha256,
        )


class UpdateBundles(BaseModel):
    """GET /api/v1/admin/updates."""

    bundles: list[UpdateBundleOut]


class UpdatePolicyBody(BaseModel):
    """GET/PUT /api/v1/admin/updates/policy."""

    policy: PolicyName
    target_version: str | None = Field(default=None, pattern=_VERSION)


class StationUpdateOut(BaseModel):
    """One station's last update report."""

    station_id: str
    state: str
    current_version: str | None
    available_version: str | None
    step: str | None
    detail: str | None
    last_error: str | None
    reported_at: str


class StationUpdates(BaseModel):
    """GET /api/v1/admin/updates/stations."""

    stations: list[StationUpdateOut]


class OfferedBundle(BaseModel):
    """The bundle a station should run."""

    version: str
    min_version: str
    size: int
    sha256: str
    bundle: str  # the path to GET it from


class UpdateOfferOut(BaseModel):
    """GET /api/v1/station/update."""

    policy: PolicyName
    offer: OfferedBundle | None


class UpdateReportIn(BaseModel):
    """POST /api/v1/station/update/report (short texts: a health summary, never logs)."""

    state: str = Field(min_length=1, max_length=32, pattern=r"^[a-z-]+$")
    current_version: str | None = Field(default=None, pattern=_VERSION)
    available_version: str | None = Field(default=None, pattern=_VERSION)
    step: str | None = Field(default=None, max_length=32)
    detail: str | None = Field(default=None, max_length=1000)
    last_error: str | None = Field(default=None, max_length=1000)


class UpdateReportOut(BaseModel):
    """The report as recorded."""

    state: str


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect as exc:
        raise TruncatedUploadError("the client went away before the bundle was complete") from exc


@admin_router.post("", status_code=201)
async def publish_bundle(request: Request, admin: AdminDep, service: ServiceDep) -> UpdateBundleOut:
    """Store a signed bundle for the admin's site (streamed; nothing kept if it is refused)."""
    declared = request.headers.get("content-length")
    upload = await run_in_threadpool(service.updates.open_upload)
    try:
        async for chunk in _body(request):
            await run_in_threadpool(upload.write, chunk)
        if declared is not None and declared.isdigit() and int(declared) != upload.size:
            raise TruncatedUploadError("the bundle ended before its Content-Length")
    except BaseException:
        upload.abort()
        raise
    view = await run_in_threadpool(service.updates.publish, admin.site, upload)
    return UpdateBundleOut.of(view)


@admin_router.get("")
def list_bundles(admin: AdminDep, service: ServiceDep) -> UpdateBundles:
    """The site's bundles, highest version first."""
    return UpdateBundles(
        bundles=[UpdateBundleOut.of(v) for v in service.updates.published(admin.site)]
    )


@admin_router.get("/policy")
def get_policy(admin: AdminDep, service: ServiceDep) -> UpdatePolicyBody:
    """The site's update policy."""
    view = service.updates.policy(admin.site)
    return UpdatePolicyBody(policy=view.policy, target_version=view.target_version)  # type: ignore[arg-type]


@admin_router.put("/policy")
def set_policy(body: UpdatePolicyBody, admin: AdminDep, service: ServiceDep) -> UpdatePolicyBody:
    """Set the site's update policy (and optionally pin the offered version)."""
    view = service.updates.set_policy(admin.site, body.policy, body.target_version)
    return UpdatePolicyBody(policy=view.policy, target_version=view.target_version)  # type: ignore[arg-type]


@admin_router.get("/stations")
def station_updates(admin: AdminDep, service: ServiceDep) -> StationUpdates:
    """Each of the site's stations' last update report."""
    return StationUpdates(
        stations=[
            StationUpdateOut(
                station_id=str(v.station_id),
                state=v.report.state,
                current_version=v.report.current_version,
                available_version=v.report.available_version,
                step=v.report.step,
                detail=v.report.detail,
                last_error=v.report.last_error,
                reported_at=iso(v.reported_at) or "",
            )
            for v in service.updates.station_statuses(admin.site)
        ]
    )


@admin_router.delete("/{version}", status_code=204)
def withdraw_bundle(version: str, admin: AdminDep, service: ServiceDep) -> Response:
    """Withdraw a bundle: stations are no longer offered it."""
    service.updates.withdraw(admin.site, version)
    return Response(status_code=204)


@station_router.get("")
def get_offer(
    station: StationDep,
    service: ServiceDep,
    current: Annotated[str | None, Query(max_length=64)] = None,
) -> UpdateOfferOut:
    """The site's policy and the version the station should run (`current` is informative)."""
    offer = service.updates.offer(station)
    bundle = offer.bundle
    return UpdateOfferOut(
        policy=offer.policy,  # type: ignore[arg-type]
        offer=None
        if bundle is None
        else OfferedBundle(
            version=bundle.version,
            min_version=bundle.min_version,
            size=bundle.size_bytes,
            sha256=bundle.sha256,
            bundle=f"{station_router.prefix}/bundles/{bundle.id}",
        ),
    )


@station_router.get(
    "/bundles/{bundle_id}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-tar": {}}}},
)
def get_bundle(bundle_id: uuid.UUID, station: StationDep, service: ServiceDep) -> StreamingResponse:
    """Stream one of the site's bundles (refused while the site's policy is off)."""
    stream = service.updates.open_bundle(station, bundle_id)
    return StreamingResponse(
        iter(stream),
        media_type="application/x-tar",
        headers={"Content-Length": str(stream.length)},
    )


@station_router.post("/report")
def post_report(body: UpdateReportIn, station: StationDep, service: ServiceDep) -> UpdateReportOut:
    """Record the update part of the station's health."""
    service.updates.report(
        station,
        StationUpdateReport(
            state=body.state,
            current_version=body.current_version,
            available_version=body.available_version,
            step=body.step,
            detail=body.detail,
            last_error=body.last_error,
        ),
    )
    return UpdateReportOut(state=body.state)
