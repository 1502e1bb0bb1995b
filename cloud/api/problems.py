"""RFC 9457 problem details: the only place that maps `cloud.errors` to HTTP status codes.

Every error response is `application/problem+json` with `type` = `urn:pullprint:problem:<code>`,
`title`, `status`, `detail` and `code`. Details never echo request input: a validation error
names the field and the rule, not the value (which may be a tag or a token).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud.errors import (
    CloudError,
    ConflictError,
    DatabaseUnavailableError,
    DeviceGrantError,
    ForbiddenError,
    GoneError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    InvalidTagError,
    NotFoundError,
    PinLockedError,
    QuotaExceededError,
    TooManyRequestsError,
    UnauthorizedError,
)

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:pullprint:problem:"

# Most specific first: the first class in an error's MRO found here decides.
STATUS_BY_ERROR: dict[type[CloudError], int] = {
    UnauthorizedError: 401,
    ForbiddenError: 403,
    DatabaseUnavailableError: 503,
    InvalidTagError: 422,
    # draft-ietf-httpapi-idempotency-key-header §2.7: a key reused with another payload is 422.
    IdempotencyKeyReusedError: 422,
    # RFC 9110 §15.5.14: the content is larger than the server is willing to hold for this user.
    QuotaExceededError: 413,
    InvalidRequestError: 400,
    NotFoundError: 404,
    ConflictError: 409,
    GoneError: 410,
    # RFC 8628 §3.5: the device access token errors are 400 (as in RFC 6749 §5.2).
    DeviceGrantError: 400,
    TooManyRequestsError: 429,
    PinLockedError: 423,
}

_CODE_BY_STATUS = {
    400: "invalid-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "too-large",
    422: "invalid-request",
    423: "locked",
    429: "rate-limited",
}


def status_for(error: CloudError) -> int:
    """The HTTP status of a domain error (500 for anything unmapped, e.g. storage failures)."""
    for cls in type(error).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return 500


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    extensions: dict[str, int] | None = None,
) -> JSONResponse:
    """Build a problem response (`extensions`: RFC 9457 §3.2 extension members)."""
    body: dict[str, object] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extensions or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _on_cloud_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CloudError)
    status = status_for(exc)
    if status >= 500:
        # The detail of an internal failure may name paths or engines: log it, do not send it.
        log.error("internal error (%s): %s", exc.code, exc.detail)
        return problem(status, exc.code, exc.title, "the cloud could not complete the request")
    headers: dict[str, str] | None = None
    extensions: dict[str, int] | None = None
    if isinstance(exc, QuotaExceededError):
        extensions = {"used_bytes": exc.used_bytes, "quota_bytes": exc.quota_bytes}
    if isinstance(exc, UnauthorizedError):
        headers = {"WWW-Authenticate": exc.challenge}
    elif isinstance(exc, TooManyRequestsError):
        headers = {"Retry-After": str(exc.retry_after_s)}  # RFC 9110 §10.2.3, in seconds
    return problem(status, exc.code, exc.title, exc.detail, headers, extensions=extensions)


def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    """A lost database connection (a restart, a failover) is a 503 with Retry-After: the
    transaction was rolled back, so nothing was acknowledged and a retry is safe."""
    assert isinstance(exc, DBAPIError)
    if isinstance(exc, DataError):
        # The engine refused a value the request carried: a NUL character in a text (PostgreSQL
        # cannot store one; SQLite can), a number out of the column's range. The client's
        # input, not the cloud: a 422 saying so, never the value itself.
        return problem(
            422,
            "invalid-request",
            "Invalid request",
            "a value in the request cannot be stored (a NUL character, or a number out of range)",
        )
    if not isinstance(exc, OperationalError | InterfaceError) and not exc.connection_invalidated:
        raise exc
    log.warning("database unavailable: %s", type(exc.orig).__name__)
    down = DatabaseUnavailableError()
    return problem(
        503,
        down.code,
        down.title,
        "the database is unavailable; retry shortly",
        {"Retry-After": str(down.retry_after_s)},
    )


def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return problem(422, "invalid-request", "Invalid request", "; ".join(parts) or "invalid")


def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _CODE_BY_STATUS.get(status, "http-error")
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem(status, code, title, detail, dict(exc.headers or {}) or None)


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `code` is the stable, machine-readable part.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string"},
    },
}


def _document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Describe the error responses as they are sent: problem documents, for every status.

    FastAPI documents a 422 with its own `HTTPValidationError` body as `application/json`;
    the handlers above answer `application/problem+json` for that and every other error, so the
    document says so (a `default` response covers the statuses a route may answer besides its
    success), and clients generated from it parse errors correctly.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    problem_response = {
        "description": "An error, as RFC 9457 problem details.",
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            responses.pop("422", None)
            responses["default"] = problem_response
    return schema


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error the app returns a problem document, and document it so."""
    app.add_exception_handler(CloudError, _on_cloud_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(DBAPIError, _on_database_error)
