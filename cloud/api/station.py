"""Station endpoints: sessions opened by a badge tap, releases, content, outcomes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from cloud.api.deps import (
    ServiceDep,
    SignedStationDep,
    StationDep,
    get_service,
    json_body_schema,
    signed_request,
    signed_station_request,
    validated_body,
)
from cloud.api.identity import PinChallengeResponse
from cloud.api.schemas import (
    CreatedReleases,
    CreateReleasesRequest,
    OpenedSession,
    OpenSessionRequest,
    OutcomeRequest,
    OutcomeResult,
    ReleaseItem,
    StationWake,
    opened_session_json,
)
from cloud.events import wait_for_station
from cloud.sessions import PinChallenge, SessionView
from cloud.states import ReleaseState

router = APIRouter(prefix="/api/v1/station", tags=["station"])

# Below common proxy idle timeouts (60 s), so a long-poll is never cut by the path to the cloud.
MAX_WAIT_S = 50


@router.post(
    "/sessions",
    status_code=201,
    response_model=OpenedSession,
    responses={202: {"model": PinChallengeResponse, "description": "the site asks for a PIN"}},
    openapi_extra=json_body_schema(OpenSessionRequest),
)
async def open_session(request: Request) -> Response:
    """Open a session for the owner of the tapped badge (or email + PIN, or a release
    passcode); list their jobs. Under the site's card + PIN policy a badge alone is answered
    202 with what the station needs to ask for the PIN; it then sends the tag and the PIN tag."""
    # The badge tap, the cloud's hottest request (DESIGN.md: >= 500 a second), does by hand
    # what FastAPI would: no dependencies to solve, and no response model to validate again.
    # The order is the same as the other station endpoints': a missing or malformed signature
    # is refused (401) before the body is validated (422).
    service = await get_service(request)
    signed = await signed_station_request(await signed_request(request))
    body = validated_body(OpenSessionRequest, signed.body)

    def work() -> SessionView | PinChallenge:
        sessions = service.sessions
        if body.tag is not None:
            # The signature check and the tap in one trip (the hottest request).
            return sessions.tap(signed, body.tag, body.pin_tag)[1]
        station = service.stations.authenticate(signed)
        if body.passcode is not None:
            return sessions.open_with_passcode(station, body.passcode)
        assert body.email is not None  # the schema checked
        assert body.pin_tag is not None
        return sessions.open_with_pin(station, body.email, body.pin_tag)

    session = await run_in_threadpool(work)
    if isinstance(session, PinChallenge):
        challenge = PinChallengeResponse(
            pin_required=True, pin_email=session.email, min_pin_digits=session.min_pin_digits
        )
        return JSONResponse(challenge.model_dump(), status_code=202)
    return Response(opened_session_json(session), 201, media_type="application/json")


@router.delete("/sessions/{session_id}", status_code=204)
async def end_session(
    session_id: uuid.UUID, signed: SignedStationDep, service: ServiceDep
) -> Response:
    """End the session (idempotent)."""

    def work() -> None:
        service.sessions.end(service.stations.authenticate(signed), session_id)

    await run_in_threadpool(work)
    return Response(status_code=204)


@router.delete("/sessions/{session_id}/jobs/{job_id}", status_code=204)
async def delete_session_job(
    session_id: uuid.UUID, job_id: uuid.UUID, station: StationDep, service: ServiceDep
) -> Response:
    """The user deletes one of their jobs at the printer."""
    await run_in_threadpool(service.sessions.delete_job, station, session_id, job_id)
    return Response(status_code=204)


@router.post("/sessions/{session_id}/releases", status_code=201)
async def create_releases(
    session_id: uuid.UUID, body: CreateReleasesRequest, station: StationDep, service: ServiceDep
) -> CreatedReleases:
    """Release the chosen jobs (or all held jobs) to this station's printer."""
    chosen = None if body.all else body.job_ids
    grants = await run_in_threadpool(service.releases.create, station, session_id, chosen)
    return CreatedReleases(releases=[ReleaseItem.of(grant) for grant in grants])


@router.get(
    "/releases/{release_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_content(
    release_id: uuid.UUID, station: StationDep, service: ServiceDep
) -> StreamingResponse:
    """Stream the stored container; the station decrypts it with the release's data key."""
    content = service.releases.open_content(station, release_id)
    # A sync iterator: Starlette reads it in a worker thread, off the event loop.
    return StreamingResponse(
        iter(content),
        media_type="application/octet-stream",
        headers={"Content-Length": str(content.length)},
    )


@router.post("/releases/{release_id}/outcome")
async def report_outcome(
    release_id: uuid.UUID, body: OutcomeRequest, station: StationDep, service: ServiceDep
) -> OutcomeResult:
    """Record whether the printer printed the job, or that the release was cancelled before
    anything was sent (idempotent)."""
    result = await run_in_threadpool(
        service.releases.report_outcome,
        station,
        release_id,
        ReleaseState(body.outcome),
        body.reason,
        body.printer_job_id,
    )
    return OutcomeResult(id=str(result.id), state=str(result.state))


@router.get("/wait")
async def wait(
    station: StationDep,
    service: ServiceDep,
    timeout_s: Annotated[int, Query(ge=0, le=MAX_WAIT_S)] = 25,
) -> StationWake:
    """Long-poll: answer as soon as a release is requested for this station (through any
    replica: cloud.events), or after `timeout_s` with nothing.

    Async, so a waiting station holds no worker thread; the database is read in the pool.
    """

    async def pending() -> list[uuid.UUID]:
        return await run_in_threadpool(service.releases.awaiting, station)

    kinds, releases = await wait_for_station(service.events, station.id, pending, timeout_s)
    return StationWake(events=kinds, releases=[str(r) for r in releases])
