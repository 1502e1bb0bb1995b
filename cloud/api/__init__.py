"""The REST API v1 (API.md): routers over `cloud.service`, errors as RFC 9457 problems."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from cloud.api import admin, devices, identity, jobs, pairing, remote, reports, station, updates
from cloud.api.problems import install_problem_handlers
from cloud.api.schemas import Health

__all__ = ["install_api"]

_health = APIRouter(tags=["health"])


@_health.get("/healthz")
def healthz() -> Health:
    """Liveness: the process is serving requests."""
    return Health(status="ok")


def install_api(app: FastAPI) -> None:
    """Mount every router and the problem handlers on `app`."""
    install_problem_handlers(app)
    # Routes are matched in order: the station's (a badge tap, the hottest path) first.
    app.include_router(station.router)
    app.include_router(_health)
    app.include_router(admin.router)
    app.include_router(reports.router)
    app.include_router(jobs.router)
    app.include_router(jobs.site_router)
    app.include_router(pairing.router)
    app.include_router(devices.admin_router)
    app.include_router(devices.station_router)
    app.include_router(updates.admin_router)
    app.include_router(updates.station_router)
    app.include_router(identity.router)
    app.include_router(remote.router)
