"""Request dependencies: the service, and the three kinds of bearer authentication.

The dependencies are plain functions, so FastAPI runs them in its thread pool: token checks
touch the database and must not block the event loop.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from cloud.errors import UnauthorizedError
from cloud.identity import StationPrincipal, UserPrincipal
from cloud.service import CloudService


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


def require_admin(service: ServiceDep, token: TokenDep) -> None:
    """Allow only the configured admin token."""
    service.identity.authenticate_admin(token)


def require_user(service: ServiceDep, token: TokenDep) -> UserPrincipal:
    """The authenticated user."""
    return service.identity.authenticate_user(token)


def require_station(service: ServiceDep, token: TokenDep) -> StationPrincipal:
    """The authenticated, unrevoked station."""
    return service.identity.authenticate_station(token)


UserDep = Annotated[UserPrincipal, Depends(require_user)]
StationDep = Annotated[StationPrincipal, Depends(require_station)]
