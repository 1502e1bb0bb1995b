"""Admin endpoints: enrol users and cards; list and revoke stations; inspect jobs; sweep now.

Stations are not created here: they pair themselves (`cloud.api.pairing`) and an admin approves
with `pullprint pair`, which holds the site key the cloud must never see in the clear.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from cloud.api.deps import ServiceDep, require_admin
from cloud.api.schemas import (
    AddCardRequest,
    AdminJob,
    AdminStation,
    AdminStations,
    CreatedCard,
    CreatedUser,
    CreateUserRequest,
    SweepResult,
)

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@router.post("/users", status_code=201)
def create_user(body: CreateUserRequest, service: ServiceDep) -> CreatedUser:
    """Create a user; the response holds their API token, which is never shown again."""
    issued = service.identity.create_user(body.email, body.display_name)
    return CreatedUser(
        id=str(issued.id),
        email=issued.email,
        display_name=issued.display_name,
        api_token=issued.api_token,
    )


@router.post("/users/{user_id}/cards", status_code=201)
def add_card(user_id: uuid.UUID, body: AddCardRequest, service: ServiceDep) -> CreatedCard:
    """Enrol a badge by the tag a station computed for it."""
    card = service.identity.add_card(user_id, body.tag, body.label)
    return CreatedCard(id=str(card.id), user_id=str(card.user_id), label=card.label)


@router.get("/stations")
def list_stations(service: ServiceDep) -> AdminStations:
    """The site's stations, revoked ones included."""
    return AdminStations(stations=[AdminStation.of(view) for view in service.stations.list()])


@router.get("/stations/{station_id}")
def get_station(station_id: uuid.UUID, service: ServiceDep) -> AdminStation:
    """One station of the site."""
    return AdminStation.of(service.stations.get(station_id))


@router.post("/stations/{station_id}/revoke")
def revoke_station(station_id: uuid.UUID, service: ServiceDep) -> AdminStation:
    """Revoke a station at once: its next request fails with 401 `station-revoked`."""
    return AdminStation.of(service.stations.revoke(station_id))


@router.get("/jobs/{job_id}")
def get_job(job_id: uuid.UUID, service: ServiceDep) -> AdminJob:
    """Any job of the site, in any state, including whether its content is still held."""
    return AdminJob.of(service.jobs.get(job_id))


@router.post("/sweep")
def sweep(service: ServiceDep) -> SweepResult:
    """Expire due jobs and leases now instead of waiting for the background sweeper."""
    report = service.sweep()
    return SweepResult(expired_jobs=report.expired_jobs, expired_leases=report.expired_leases)
