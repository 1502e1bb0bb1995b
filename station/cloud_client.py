"""The station's client for the cloud REST API (API.md, the /api/v1/station endpoints).

The only module of `station` that knows HTTP: status codes and RFC 9457 problems are translated
here into the `CloudError` tree, and connection failures into `CloudUnreachableError`.

Invariants:

* every request has a (connect, read) timeout;
* only idempotent calls are retried (GET content, DELETE session/job, POST outcome, which the
  contract makes idempotent); opening a session and creating releases are never retried, not even
  after a connection error, because the cloud may have acted on the first attempt;
* the bearer token, card tags and data keys are never logged and never appear in a repr.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import MaxRetryError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from station.errors import (
    CloudError,
    CloudRejectedError,
    CloudUnreachableError,
    SessionExpiredError,
    UnknownCredentialError,
)
from station.models import JobSummary

logger = logging.getLogger(__name__)

CONTENT_CHUNK_BYTES = 64 * 1024
_GATEWAY_DOWN = (502, 503, 504)
Outcome = Literal["printed", "failed"]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """An open station session: who tapped, and their held jobs."""

    session_id: str
    display_name: str
    expires_at: datetime | None
    jobs: tuple[JobSummary, ...]


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    """One release: a job authorised to print on this station's printer."""

    id: str
    job_id: str
    name: str
    format: str
    copies: int
    size_bytes: int  # the document (plaintext)
    content_bytes: int  # the stored container (ciphertext)
    user_name: str
    data_key: bytes = field(repr=False)
    site: str


class StationCloud(Protocol):
    """What the station runtime needs from the cloud (`CloudClient`, or a fake in tests)."""

    def open_session(self, tag: str) -> SessionInfo: ...

    def end_session(self, session_id: str) -> None: ...

    def delete_job(self, session_id: str, job_id: str) -> None: ...

    def release(self, session_id: str, job_ids: Sequence[str] | None) -> list[ReleaseInfo]: ...

    def stream_content(self, release_id: str) -> AbstractContextManager[Iterator[bytes]]: ...

    def report_outcome(
        self, release_id: str, outcome: Outcome, reason: str | None, printer_job_id: int | None
    ) -> None: ...


class _IdempotentOnlyRetry(Retry):
    """A Retry that never retries a method outside `allowed_methods`, whatever went wrong.

    urllib3 retries connection errors for every method (it assumes the request was not sent);
    we do not rely on that for a POST the cloud might have acted on.
    """

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: Any = None,
    ) -> Self:
        if method is not None and not self._is_method_retryable(method):
            raise MaxRetryError(_pool, url or "", error) from error  # type: ignore[arg-type]
        return super().increment(method, url, response, error, _pool, _stacktrace)


def _retry(methods: frozenset[str], retries: int, backoff_s: float) -> Retry:
    return _IdempotentOnlyRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff_s,
        status_forcelist=(429, *_GATEWAY_DOWN),
        allowed_methods=methods,
        raise_on_status=False,  # the last answer is mapped to a typed error below
        # A long Retry-After would stall the station's worker; our backoff is bounded instead.
        respect_retry_after_header=False,
    )


class CloudClient:
    """The station's REST client.

    Args:
        base_url: the cloud, e.g. "https://print.example.org".
        token: the station's `pps_` bearer token.
        timeout_s: connect and read timeout of every request (read: between bytes).
        session: a `requests.Session` to use (its adapters for `base_url` are replaced).
        retries: how many times an idempotent call is retried.
        backoff_s: urllib3 backoff factor (0.1 s, 0.2 s, 0.4 s, ... between retries).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float,
        session: requests.Session | None = None,
        retries: int = 3,
        backoff_s: float = 0.1,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = (timeout_s, timeout_s)
        self._session = session or requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"
        self._session.headers["Accept"] = "application/json"
        # requests picks the adapter with the longest matching prefix: releases/ carries only the
        # idempotent GET content and POST outcome; everything else retries only GET and DELETE.
        self._session.mount(
            self.base_url + "/",
            HTTPAdapter(max_retries=_retry(frozenset({"GET", "DELETE"}), retries, backoff_s)),
        )
        self._session.mount(
            self.base_url + "/api/v1/station/releases/",
            HTTPAdapter(max_retries=_retry(frozenset({"GET", "POST"}), retries, backoff_s)),
        )

    def __repr__(self) -> str:
        return f"CloudClient({self.base_url!r})"

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    # ---- API ----

    def open_session(self, tag: str) -> SessionInfo:
        """Open a session for a badge tag. Raises UnknownCredentialError for an unknown badge."""
        body = self._json("POST", "/api/v1/station/sessions", {"tag": tag}, expect=201)
        try:
            jobs = tuple(_job(job) for job in body["jobs"])
            info = SessionInfo(
                session_id=str(body["session_id"]),
                display_name=str(body["user"]["display_name"]),
                expires_at=_time(body["expires_at"]) if body.get("expires_at") else None,
                jobs=jobs,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CloudError("malformed session from the cloud") from exc
        logger.debug("session %s opened with %d jobs", info.session_id, len(info.jobs))
        return info

    def end_session(self, session_id: str) -> None:
        """End a session (idempotent)."""
        self._request("DELETE", f"/api/v1/station/sessions/{session_id}", expect=204)

    def delete_job(self, session_id: str, job_id: str) -> None:
        """Delete one of the session user's held jobs."""
        path = f"/api/v1/station/sessions/{session_id}/jobs/{job_id}"
        self._request("DELETE", path, expect=204)

    def release(self, session_id: str, job_ids: Sequence[str] | None) -> list[ReleaseInfo]:
        """Create releases for these jobs (None: all held jobs) on this station's printer."""
        payload: dict[str, object] = {"all": True} if job_ids is None else {"job_ids": [*job_ids]}
        path = f"/api/v1/station/sessions/{session_id}/releases"
        body = self._json("POST", path, payload, expect=201)
        try:
            return [_release(item) for item in body["releases"]]
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise CloudError("malformed releases from the cloud") from exc

    @contextmanager
    def stream_content(self, release_id: str) -> Iterator[Iterator[bytes]]:
        """Stream a release's stored container, 64 KiB at a time.

        Usage: `with client.stream_content(rid) as chunks: for chunk in chunks: ...`.
        Raises CloudUnreachableError if the stream breaks off.
        """
        path = f"/api/v1/station/releases/{release_id}/content"
        response = self._request("GET", path, expect=200, stream=True)
        try:
            yield self._chunks(response)
        finally:
            response.close()

    def report_outcome(
        self,
        release_id: str,
        outcome: Outcome,
        reason: str | None = None,
        printer_job_id: int | None = None,
    ) -> None:
        """Tell the cloud whether a release printed (idempotent: safe to repeat)."""
        payload = {"outcome": outcome, "reason": reason, "printer_job_id": printer_job_id}
        self._json("POST", f"/api/v1/station/releases/{release_id}/outcome", payload, expect=200)

    # ---- HTTP ----

    @staticmethod
    def _chunks(response: requests.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_content(chunk_size=CONTENT_CHUNK_BYTES)
        except requests.RequestException as exc:
            raise CloudUnreachableError("the content stream broke off") from exc

    def _json(self, method: str, path: str, payload: object, *, expect: int) -> Any:
        response = self._request(method, path, expect=expect, json=payload)
        try:
            return response.json()
        except ValueError as exc:
            raise CloudError(f"{method} {path}: the cloud's answer is not JSON") from exc

    def _request(
        self, method: str, path: str, *, expect: int, stream: bool = False, json: object = None
    ) -> requests.Response:
        try:
            response = self._session.request(
                method, self.base_url + path, json=json, timeout=self._timeout, stream=stream
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            # The exception text may contain the URL but never the headers, so no token leaks.
            raise CloudUnreachableError(f"cannot reach the cloud ({type(exc).__name__})") from exc
        except requests.RequestException as exc:
            raise CloudError(f"{method} request failed ({type(exc).__name__})") from exc
        if response.status_code != expect:
            try:
                raise _problem(response)
            finally:
                response.close()
        return response


def _problem(response: requests.Response) -> CloudError:
    """The typed error for a non-success answer (RFC 9457 problem when the body is one)."""
    status = response.status_code
    code: str | None = None
    detail: str | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("code") if isinstance(body.get("code"), str) else None
        detail = body.get("detail") if isinstance(body.get("detail"), str) else None
    if status in _GATEWAY_DOWN:
        return CloudUnreachableError(f"the cloud is unavailable (HTTP {status})")
    message = f"HTTP {status} {code or ''}".strip()
    if status == 404 and code == "unknown-credential":
        return UnknownCredentialError(message, status=status, code=code, detail=detail)
    if status == 410 or code == "session-expired":
        return SessionExpiredError(message, status=status, code=code, detail=detail)
    return CloudRejectedError(message, status=status, code=code, detail=detail)


def _time(text: str) -> datetime:
    # Python 3.11 parses "Z"; shown in the station's local time.
    return datetime.fromisoformat(text).astimezone()


def _job(item: dict[str, Any]) -> JobSummary:
    pages = item.get("pages")
    return JobSummary(
        job_id=str(item["id"]),
        name=str(item["name"]),
        submitted_at=_time(item["submitted_at"]),
        size_bytes=int(item["size_bytes"]),
        pages=int(pages) if pages is not None else None,
        copies=int(item.get("copies", 1)),
    )


def _release(item: dict[str, Any]) -> ReleaseInfo:
    data_key = base64.b64decode(item["data_key"], validate=True)
    if len(data_key) != 32:
        raise ValueError("data key is not 32 bytes")
    return ReleaseInfo(
        id=str(item["id"]),
        job_id=str(item["job_id"]),
        name=str(item["name"]),
        format=str(item["format"]),
        copies=int(item.get("copies", 1)),
        size_bytes=int(item["size_bytes"]),
        content_bytes=int(item["content_bytes"]),
        user_name=str(item["user_name"]),
        data_key=data_key,
        site=str(item["site"]),
    )
