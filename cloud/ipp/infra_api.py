"""The station's REST route for releasing jobs in "infra" delivery mode.

`POST /api/v1/station/sessions/{session_id}/infra-releases` (signed by the station, like every
station route): the jobs chosen in the session become fetchable by the Output Device registered
for this station's printer (a cloud-aware printer, or the station's own INFRA proxy). Unlike the
station-pull route, the answer carries no data key: the device fetches the document, decrypted by
the cloud, from the Infrastructure Printer (`cloud.ipp.infra`).
"""

from __future__ import annotations

import uuid
from typing import cast

from fastapi import APIRouter, Request
from pydantic import BaseModel

from cloud.api.deps import StationDep
from cloud.api.schemas import CreateReleasesRequest
from cloud.ipp.infra_store import Infra


class InfraReleaseItem(BaseModel):
    """One job made fetchable."""

    release_id: uuid.UUID
    job_id: uuid.UUID
    ipp_job_id: int  # the job-id the Output Device sees


class InfraReleases(BaseModel):
    """The answer: one item per released job."""

    releases: list[InfraReleaseItem]


def infra_release_router() -> APIRouter:
    """The route (mounted by `cloud.ipp.infra.install_infra`)."""
    router = APIRouter(prefix="/api/v1/station", tags=["station"])

    @router.post("/sessions/{session_id}/infra-releases", status_code=201)
    def create_infra_releases(
        session_id: uuid.UUID, body: CreateReleasesRequest, station: StationDep, request: Request
    ) -> InfraReleases:
        """Release the chosen jobs (or all) to the Output Device of this station's printer."""
        infra = cast(Infra, request.app.state.infra.infra)
        made = infra.release(station, session_id, None if body.all else body.job_ids)
        return InfraReleases(
            releases=[
                InfraReleaseItem(
                    release_id=r.release_id, job_id=r.cloud_job_id, ipp_job_id=r.infra_job_id
                )
                for r in made
            ]
        )

    return router
