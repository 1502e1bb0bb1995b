"""User endpoints: submit a document (streamed), list held jobs, delete one; the site's job
policy (and its public key, for zero-knowledge sites); delegations.

The submit endpoint reads the body with `request.stream()` and hands it to the domain, which
encrypts and stores it piece by piece in worker threads; the document is never whole in memory.
A body that ends before its Content-Length, or a client that goes away, stores nothing.

A submission may carry an `Idempotency-Key` header (draft-ietf-httpapi-idempotency-key-header):
a retry with the same key and the same request answers with the job the first one created
(200 instead of 201), never a second job; the same key with another request is 422.

In a zero-knowledge site the body is a *sealed job*: `Content-Type:
application/vnd.pullprint.sealed-job`, the container the submitter encrypted
(`cloud.container.Encryptor`), with the real document type in `format`, the container's job id
in `job_id`, the submitter's page count in `pages`, and the data key wrapped to the site key
(`cloud.container.hpke_wrap_key`) in the `PullPrint-Wrapped-Key` header (base64url).
"""

from __future__ import annotations

import binascii
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.requests import ClientDisconnect

from cloud.api.deps import ServiceDep, UserDep
from cloud.api.schemas import (
    DelegationItem,
    DelegationList,
    DelegationRequest,
    SitePolicyView,
    UserJob,
    UserJobs,
    UserSite,
    from_b64url,
)
from cloud.errors import InvalidRequestError, InvalidSealedJobError, TruncatedUploadError
from cloud.uploads import DEFAULT_FORMAT, PrintOptions, SealedJob, held_bytes

SEALED_JOB_TYPE = "application/vnd.pullprint.sealed-job"
WRAPPED_KEY_HEADER = "PullPrint-Wrapped-Key"

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
site_router = APIRouter(prefix="/api/v1", tags=["jobs"])


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


def _sealed(
    request: Request, job_id: uuid.UUID | None, pages: int | None, document_format: str | None
) -> tuple[SealedJob | None, str]:
    """The sealed-job parameters (None for a plaintext body) and the document's real type."""
    content_type = request.headers.get("content-type", DEFAULT_FORMAT)
    if content_type.split(";", 1)[0].strip().lower() != SEALED_JOB_TYPE:
        return None, content_type
    wrapped = request.headers.get(WRAPPED_KEY_HEADER)
    if job_id is None or wrapped is None:
        raise InvalidSealedJobError(
            f"a sealed job needs job_id and the {WRAPPED_KEY_HEADER} header"
        )
    try:
        key = from_b64url(wrapped.strip())
    except (binascii.Error, ValueError):
        raise InvalidSealedJobError("the wrapped key is not base64url") from None
    return SealedJob(job_id, key, pages), document_format or DEFAULT_FORMAT


@router.post("", status_code=201, responses={200: {"description": "an idempotent retry"}})
async def submit_job(  # noqa: PLR0917 - FastAPI passes each parameter by name
    request: Request,
    response: Response,
    user: UserDep,
    service: ServiceDep,
    name: Annotated[str, Query(min_length=1, max_length=255)],
    copies: Annotated[int, Query(ge=1, le=999)] = 1,
    job_id: Annotated[
        uuid.UUID | None, Query(description="sealed jobs: the container's id")
    ] = None,
    pages: Annotated[int | None, Query(ge=1, le=1_000_000, description="sealed jobs")] = None,
    document_format: Annotated[
        str | None, Query(alias="format", max_length=127, description="sealed jobs")
    ] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
    sides: Annotated[
        Literal["one-sided", "two-sided-long-edge", "two-sided-short-edge"] | None,
        Query(description="RFC 8011 §5.2.8"),
    ] = None,
    color_mode: Annotated[
        Literal["auto", "color", "monochrome"] | None,
        Query(alias="color-mode", description="PWG 5100.13 print-color-mode"),
    ] = None,
) -> UserJob:
    """Park the request body as an encrypted job owned by the authenticated user."""
    sealed, media_type = _sealed(request, job_id, pages, document_format)
    job = await service.uploads.submit_async(
        user,
        name,
        _body(request),
        document_format=media_type,
        options=PrintOptions(copies=copies, sides=sides, color_mode=color_mode),
        expected_bytes=_declared_length(request),
        sealed=sealed,
        idempotency_key=idempotency_key,
        seal_on_intake=False,
    )
    if job.replayed:
        response.status_code = 200  # the job an earlier request with this key created
    return UserJob.of(job)


@router.get("")
def list_jobs(
    user: UserDep,
    service: ServiceDep,
    reprintable: Annotated[bool, Query(description="also printed jobs kept for reprint")] = False,
) -> UserJobs:
    """The caller's held jobs, oldest first (then, if asked, those kept for reprint)."""
    views = service.jobs.list_held(user.id, user.site, reprintable=reprintable)
    return UserJobs(jobs=[UserJob.of(job) for job in views])


@router.delete("/{job_id}", status_code=204)
def delete_job(job_id: uuid.UUID, user: UserDep, service: ServiceDep) -> Response:
    """Delete one of the caller's jobs and destroy its content."""
    service.jobs.delete(user.id, job_id, user.site)
    return Response(status_code=204)


@site_router.get("/site")
def get_site(user: UserDep, service: ServiceDep) -> UserSite:
    """The caller's site policy (with the public key to seal jobs to) and their held bytes."""
    policy = service.policies.get(user.site)
    with service.context.read() as db:
        used = held_bytes(db, user.site, user.id)
    return UserSite(policy=SitePolicyView.of(policy), held_bytes=used)


@site_router.get("/delegations")
def list_delegations(user: UserDep, service: ServiceDep) -> DelegationList:
    """Whom the caller lets release their jobs."""
    views = service.delegations.list_granted(user)
    return DelegationList(delegations=[DelegationItem.of(view) for view in views])


@site_router.post("/delegations", status_code=201)
def grant_delegation(body: DelegationRequest, user: UserDep, service: ServiceDep) -> DelegationItem:
    """Let another user of the site release the caller's jobs (idempotent)."""
    return DelegationItem.of(service.delegations.grant(user, body.email))


@site_router.delete("/delegations/{delegate_id}", status_code=204)
def revoke_delegation(delegate_id: uuid.UUID, user: UserDep, service: ServiceDep) -> Response:
    """Withdraw a delegation (idempotent)."""
    service.delegations.revoke(user, delegate_id)
    return Response(status_code=204)
