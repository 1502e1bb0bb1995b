"""Request dependencies: the service, bearer authentication of users and admins, and signed
station requests (RFC 9421, `cloud.stations`).

The checks are plain functions, so FastAPI runs them in its thread pool: they touch the database
and must not block the event loop. Only reading the body is async (`request_body`); FastAPI has
already read and cached it for the endpoint, so awaiting it again costs nothing.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from cloud.errors import UnauthorizedError
from cloud.identity import StationPrincipal, UserPrincipal
from cloud.service import CloudService
from cloud.sites import AdminPrincipal
from cloud.stations import SignedHttpRequest


def get_service(request: Request) -> CloudService:
    """The service the composition root stored on the app."""
    return cast(CloudService, request.app.state.service)


def bearer_token(request: Request) -> str:
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
    """The request body as received (what the station's Content-Digest covers)."""
    return await request.body()


def require_station(
    request: Request, service: ServiceDep, body: Annotated[bytes, Depends(request_body)]
) -> StationPrincipal:
    """The station whose valid, fresh, unreplayed signature this request carries."""
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode()
    return service.stations.authenticate(
        SignedHttpRequest(
            method=request.method,
            raw_path=raw_path.decode("latin-1").partition("?")[0],
            raw_query=scope.get("query_string", b"").decode("latin-1"),
            headers=request.headers,
            body=body,
        )
    )


AdminDep = Annotated[AdminPrincipal, Depends(require_admin)]
UserDep = Annotated[UserPrincipal, Depends(require_user)]
StationDep = Annotated[StationPrincipal, Depends(require_station)]
