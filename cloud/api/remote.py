"""Releases made away from the station: a signed-in user's phone releases jobs to the printer
whose QR code (`pullprint:p/<printer id>`, tools/labels.py) it scanned, and the station serving
that printer, woken by its long-poll (`GET /api/v1/station/wait`), fetches each release's grant.

The phone's answer carries no keys: a data key goes only to the station, in a signed request.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel

from cloud.api.deps import ServiceDep, StationDep, UserDep
from cloud.api.schemas import CreateReleasesRequest, ReleaseItem

router = APIRouter(tags=["releases"])


class RemoteReleaseItem(BaseModel):
    """One job released from a phone (what the phone may know of it: no key)."""

    id: str
    job_id: str
    name: str
    state: str


class RemoteReleases(BaseModel):
    """201 from POST /api/v1/me/printers/{printer_id}/releases."""

    printer_id: str
    station_id: str
    releases: list[RemoteReleaseItem]


@router.post("/api/v1/me/printers/{printer_id}/releases", status_code=201)
def release_to_printer(
    printer_id: uuid.UUID, body: CreateReleasesRequest, user: UserDep, service: ServiceDep
) -> RemoteReleases:
    """Release the chosen jobs (or all held jobs the user may release) to the station serving
    this printer; 404 for a printer not in the user's site, 409 when no station serves it."""
    made = service.releases.create_for_printer(user, printer_id, None if body.all else body.job_ids)
    return RemoteReleases(
        printer_id=str(made.printer_id),
        station_id=str(made.station_id),
        releases=[
            RemoteReleaseItem(
                id=str(grant.id), job_id=str(grant.job_id), name=grant.name, state=grant.state
            )
            for grant in made.grants
        ],
    )


@router.get("/api/v1/station/releases/{release_id}")
def get_release(release_id: uuid.UUID, station: StationDep, service: ServiceDep) -> ReleaseItem:
    """The grant of a release this station did not create (made from a phone), while it is
    still requested: the same item as the station's own create-releases response."""
    return ReleaseItem.of(service.releases.grant(station, release_id))
