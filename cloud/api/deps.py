"""Request dependencies: the service, bearer authentication of users and admins, and signed
station requests (RFC 9421, `cloud.stations`).

The checks that touch the database are plain functions, so FastAPI runs them in its thread pool:
they must not block the event loop. What needs no I/O (the service, the bearer token, the parts of
a signed request) is async, because a trip to the thread pool costs more than the work.

The station endpoints are async: the signature check (`require_station`, async, its database
work in one trip to the thread pool) and the endpoint's own work take two trips instead of four
(service, dependency, endpoint, response validation). The check stays a dependency so that an
unauthenticated request is refused (401) before its body is even validated.

The hottest two, the badge tap and the end of a session, take one trip: a request without a
well-formed signature is refused first (401, before the body is validated: `SignedStationDep`,
which the tap's endpoint calls itself, with `validated_body`, to spare FastAPI's dependency
solving), and the endpoint verifies the signature in the same trip as its own work
(`Sessions.tap`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from cloud.errors import UnauthorizedError
from cloud.http_signatures import parse_signature
from cloud.identity import StationPrincipal, UserPrincipal
from cloud.service import CloudService
from cloud.sites import AdminPrincipal
from cloud.stations import SignedHttpRequest

_Model = TypeVar("_Model", bound=BaseModel)


async def get_service(request: Request) -> CloudService:
    """The service the composition root stored on the app."""
    return cast(CloudService, request.app.state.service)


async def bearer_token(request: Request) -> str:
    """The bearer token of the request (RFC 6750 section 2.1).

    Raises:
        UnauthorizedError: no `Authorization: Bearer` header.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("a bearer token is required")
    return token.strip()


ServiceDep = Annotated[CloudService, Depends(get_service)]
TokenDep = Annotated[str, Depends(bearer_token)]


def require_admin(service: ServiceDep, token: TokenDep) -> AdminPrincipal:
    """The admin of one site: the bootstrap token (default site) or a site admin token."""
    return service.sites.authenticate_admin(token)


def require_user(service: ServiceDep, token: TokenDep) -> UserPrincipal:
    """The authenticated user."""
    return service.identity.authenticate_user(token)


async def request_body(request: Request) -> bytes:
    """The request body as received."""
    return await request.body()


async def signed_request(request: Request) -> SignedHttpRequest:
    """The parts of the request a station's signature covers: the body as received (what its
    Content-Digest covers; FastAPI has already read and cached it), the raw path and query."""
    body = await request.body()
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode()
    return SignedHttpRequest(
        method=request.method,
        raw_path=raw_path.decode("latin-1").partition("?")[0],
        raw_query=scope.get("query_string", b"").decode("latin-1"),
        headers=request.headers,
        body=body,
    )


SignedDep = Annotated[SignedHttpRequest, Depends(signed_request)]


async def signed_station_request(signed: SignedDep) -> SignedHttpRequest:
    """A station request carrying a well-formed signature, not yet verified: the endpoint
    verifies it (`Stations.verify`) in the same trip to the thread pool as its work.

    Raises:
        InvalidSignatureError: no signature, or a malformed one (no I/O needed to tell).
    """
    return replace(signed, parsed=parse_signature(signed.headers))


async def require_station(service: ServiceDep, signed: SignedDep) -> StationPrincipal:
    """The station whose valid, fresh, unreplayed signature this request carries."""
    return await run_in_threadpool(service.stations.authenticate, signed)


AdminDep = Annotated[AdminPrincipal, Depends(require_admin)]
UserDep = Annotated[UserPrincipal, Depends(require_user)]


def validated_body(model: type[_Model], body: bytes) -> _Model:
    """A JSON body validated as FastAPI validates a body parameter, for the one endpoint that
    reads its own (the badge tap): the same 422 problem when it is not valid.

    Raises:
        RequestValidationError: not JSON, or not a valid `model`.
    """
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        errors = [
            {**each, "loc": ("body", *each["loc"])} for each in error.errors(include_url=False)
        ]
        raise RequestValidationError(errors, body=body) from None


def json_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI `requestBody` of an endpoint that validates its body itself."""
    schema = {"application/json": {"schema": model.model_json_schema()}}
    return {"requestBody": {"content": schema, "required": True}}


StationDep = Annotated[StationPrincipal, Depends(require_station)]
SignedStationDep = Annotated[SignedHttpRequest, Depends(signed_station_request)]
