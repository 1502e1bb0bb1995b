"""User endpoints: submit a document (streamed), list held jobs, delete one.

The submit endpoint reads the body with `request.stream()` and hands it to the domain, which
encrypts and stores it piece by piece in worker threads; the document is never whole in memory.
A body that ends before its Content-Length, or a client that goes away, stores nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.requests import ClientDisconnect

from cloud.api.deps import ServiceDep, UserDep
from cloud.api.schemas import UserJob, UserJobs
from cloud.errors import InvalidRequestError, TruncatedUploadError
from cloud.uploads import DEFAULT_FORMAT

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None  # chunked transfer coding: the end of the stream is the end
    if not raw.isdigit():
        raise InvalidRequestError("Content-Length is not a number")
    return int(raw)


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request body, with a vanished client turned into the domain's truncation error."""
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect as exc:
        raise TruncatedUploadError("the client went away before the document was complete") from exc


@router.post("", status_code=201)
async def submit_job(
    request: Request,
    user: UserDep,
    service: ServiceDep,
    name: Annotated[str, Query(min_length=1, max_length=255)],
    copies: Annotated[int, Query(ge=1, le=999)] = 1,
) -> UserJob:
    """Park the request body as an encrypted job owned by the authenticated user."""
    job = await service.uploads.submit_async(
        user,
        name,
        _body(request),
        document_format=request.headers.get("content-type", DEFAULT_FORMAT),
        copies=copies,
        expected_bytes=_declared_length(request),
    )
    return UserJob.of(job)


@router.get("")
def list_jobs(user: UserDep, service: ServiceDep) -> UserJobs:
    """The caller's held jobs, oldest first."""
    return UserJobs(jobs=[UserJob.of(job) for job in service.jobs.list_held(user.id, user.site)])


@router.delete("/{job_id}", status_code=204)
def delete_job(job_id: uuid.UUID, user: UserDep, service: ServiceDep) -> Response:
    """Delete one of the caller's jobs and destroy its content."""
    service.jobs.delete(user.id, job_id, user.site)
    return Response(status_code=204)
