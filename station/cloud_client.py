"""The station's client for the cloud REST API (API.md, the /api/v1/station endpoints).

HTTP itself (the connection pool, signing each request, status codes and RFC 9457 problems
translated into the `CloudError` tree, connection failures into `CloudUnreachableError`) is
`station.cloud_http`; this module is the API on top of it.

Invariants:

* every request is signed by the station's Ed25519 key (RFC 9421, `station.signing`), and every
  attempt afresh: the cloud refuses a reused nonce, so a retry is a new signed request;
* every request has a (connect, read) timeout;
* only idempotent calls are retried (GET content, DELETE session/job, POST outcome, which the
  contract makes idempotent); opening a session and creating releases are never retried, not even
  after a connection error, because the cloud may have acted on the first attempt;
* keys, signatures, card tags and data keys are never logged and never appear in a repr.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud.container import ContainerError, hpke_unwrap_key
from station.cloud_http import (
    GATEWAY_DOWN,
    JSON_HEADERS,
    CloudHttp,
    Response,
    Signer,
    chunks,
    finish,
    json_bytes,
    json_of,
    problem_error,
)
from station.errors import CloudError, CloudUnreachableError, PinRequiredError
from station.models import JobSummary

logger = logging.getLogger(__name__)

CONTENT_CHUNK_BYTES = 64 * 1024
_RETRY_STATUSES = (429, *GATEWAY_DOWN)
Outcome = Literal["printed", "failed"]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """An open station session: who tapped, and their held jobs."""

    session_id: str
    display_name: str
    expires_at: datetime | None
    jobs: tuple[JobSummary, ...]
    release_all: bool = False  # the site's release-all-on-tap policy


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


@dataclass(frozen=True, slots=True)
class EnrolmentOffer:
    """A one-time code for an unknown badge, to show on the station's screen."""

    code: str = field(repr=False)
    ttl_s: int = 600


class StationCloud(Protocol):
    """What the station runtime needs from the cloud (`CloudClient`, or a fake in tests)."""

    def open_session(self, tag: str, pin_tag: str | None = None) -> SessionInfo: ...

    def open_passcode_session(self, passcode: str) -> SessionInfo: ...

    def open_email_session(self, email: str, pin_tag: str) -> SessionInfo: ...

    def offer_enrolment(self, tag: str) -> EnrolmentOffer: ...

    def end_session(self, session_id: str) -> None: ...

    def delete_job(self, session_id: str, job_id: str) -> None: ...

    def release(self, session_id: str, job_ids: Sequence[str] | None) -> list[ReleaseInfo]: ...

    def stream_content(self, release_id: str) -> AbstractContextManager[Iterator[bytes]]: ...

    def report_outcome(
        self, release_id: str, outcome: Outcome, reason: str | None, printer_job_id: int | None
    ) -> None: ...


class CloudClient:
    """The station's REST client.

    Args:
        base_url: the cloud, e.g. "https://print.example.org".
        auth: signs each request (`station.signing.SignatureAuth` for the paired station).
        timeout_s: connect and read timeout of every request (read: between bytes).
        ca_certs: a CA bundle to verify the cloud against instead of the system's trust store.
        retries: how many times an idempotent call is retried (after a connection error, a
            timeout, 429 or 502-504).
        backoff_s: the first pause between retries, doubled each time (0.1 s, 0.2 s, ...).
        site_private_key: the site's X25519 private key, for zero-knowledge sites: releases
            there carry the data key wrapped to the site key, not the data key.
    """

    def __init__(
        self,
        base_url: str,
        auth: Signer,
        *,
        timeout_s: float,
        ca_certs: str | None = None,
        retries: int = 3,
        backoff_s: float = 0.1,
        site_private_key: X25519PrivateKey | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Zero-knowledge sites: the key that unwraps job keys (from the pairing grant).
        self._site_private_key = site_private_key
        self._auth = auth
        self._retries = retries
        self._backoff_s = backoff_s
        self._timeout_s = timeout_s
        self._http = CloudHttp(
            base_url,
            timeout_s=timeout_s,
            signer=auth,
            headers={"Accept": "application/json"},
            ca_certs=ca_certs,
        )

    def __repr__(self) -> str:
        return f"CloudClient({self.base_url!r})"

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    # ---- API ----

    def open_session(self, tag: str, pin_tag: str | None = None) -> SessionInfo:
        """Open a session for a badge tag (and its owner's PIN tag, under card + PIN).

        Raises:
            UnknownCredentialError: an unknown badge, or a wrong PIN.
            PinRequiredError: the site asks for the PIN: call again with `pin_tag`.
            RateLimitedError, PinLockedError: too many wrong PINs.
        """
        payload = {"tag": tag} if pin_tag is None else {"tag": tag, "pin_tag": pin_tag}
        response = self._request(
            "POST", "/api/v1/station/sessions", expect=(201, 202), json=payload
        )
        body = _body(response)
        if response.status == 202:
            try:
                raise PinRequiredError(str(body["pin_email"]), int(body["min_pin_digits"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise CloudError("malformed PIN challenge from the cloud") from exc
        return self._session_info(body)

    def open_passcode_session(self, passcode: str) -> SessionInfo:
        """Open a session for the user whose release passcode was typed on the keypad.

        Raises:
            UnknownCredentialError: no usable passcode matches.
            RateLimitedError: too many wrong passcodes at this station.
        """
        body = self._json("POST", "/api/v1/station/sessions", {"passcode": passcode}, expect=201)
        return self._session_info(body)

    def open_email_session(self, email: str, pin_tag: str) -> SessionInfo:
        """Open a session for the user whose email and PIN (as its keyed tag) were typed.

        Raises:
            UnknownCredentialError: an unknown email, no PIN set, or a wrong PIN (alike).
            RateLimitedError, PinLockedError: too many wrong PINs.
        """
        payload = {"email": email, "pin_tag": pin_tag}
        body = self._json("POST", "/api/v1/station/sessions", payload, expect=201)
        return self._session_info(body)

    def offer_enrolment(self, tag: str) -> EnrolmentOffer:
        """Ask for a one-time enrolment code for an unknown badge.

        Raises:
            SelfEnrolmentDisabledError: the site does not allow it.
            RateLimitedError: too many codes lately.
        """
        body = self._json("POST", "/api/v1/station/enrolments", {"tag": tag}, expect=201)
        try:
            return EnrolmentOffer(code=str(body["code"]), ttl_s=int(body["ttl_s"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CloudError("malformed enrolment code from the cloud") from exc

    def _session_info(self, body: Any) -> SessionInfo:
        try:
            jobs = tuple(_job(job) for job in body["jobs"])
            info = SessionInfo(
                session_id=str(body["session_id"]),
                display_name=str(body["user"]["display_name"]),
                expires_at=_time(body["expires_at"]) if body.get("expires_at") else None,
                jobs=jobs,
                release_all=body.get("release_all") is True,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CloudError("malformed session from the cloud") from exc
        logger.debug("session %s opened with %d jobs", info.session_id, len(info.jobs))
        return info

    def end_session(self, session_id: str) -> None:
        """End a session (idempotent)."""
        self._request("DELETE", f"/api/v1/station/sessions/{session_id}", expect=204, retry=True)

    def delete_job(self, session_id: str, job_id: str) -> None:
        """Delete one of the session user's held jobs."""
        path = f"/api/v1/station/sessions/{session_id}/jobs/{job_id}"
        self._request("DELETE", path, expect=204, retry=True)

    def release(self, session_id: str, job_ids: Sequence[str] | None) -> list[ReleaseInfo]:
        """Create releases for these jobs (None: all held jobs) on this station's printer."""
        payload: dict[str, object] = {"all": True} if job_ids is None else {"job_ids": [*job_ids]}
        path = f"/api/v1/station/sessions/{session_id}/releases"
        return self._grants(self._json("POST", path, payload, expect=201), many=True)

    def _grants(self, body: Any, *, many: bool) -> list[ReleaseInfo]:
        """The releases of a create response (`many`), or the one release of a grant."""
        try:
            items = body["releases"] if many else [body]
            return [_release(item, self._site_private_key) for item in items]
        except ContainerError as exc:
            raise CloudError("a job key does not open with this station's site key") from exc
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise CloudError("malformed releases from the cloud") from exc

    @contextmanager
    def stream_content(self, release_id: str) -> Iterator[Iterator[bytes]]:
        """Stream a release's stored container, 64 KiB at a time.

        Usage: `with client.stream_content(rid) as chunks: for chunk in chunks: ...`.
        Raises CloudUnreachableError if the stream breaks off.
        """
        path = f"/api/v1/station/releases/{release_id}/content"
        response = self._request("GET", path, expect=200, stream=True, retry=True)
        try:
            yield self._chunks(response)
        finally:
            finish(response)

    def report_outcome(
        self,
        release_id: str,
        outcome: Outcome,
        reason: str | None = None,
        printer_job_id: int | None = None,
    ) -> None:
        """Tell the cloud whether a release printed (idempotent: safe to repeat)."""
        payload = {"outcome": outcome, "reason": reason, "printer_job_id": printer_job_id}
        path = f"/api/v1/station/releases/{release_id}/outcome"
        self._json("POST", path, payload, expect=200, retry=True)

    # --- station-entry: the long-poll and the grant of a release made from a phone ---

    def wait(self, timeout_s: int) -> list[str]:
        """Long-poll GET /station/wait: the ids of releases requested for this station and not
        yet fetched, as soon as there are any, or [] after `timeout_s` (at most 50) of nothing.

        Not retried (the caller's loop backs off); the read timeout leaves the cloud its
        `timeout_s` plus this client's own timeout.
        """
        path = f"/api/v1/station/wait?timeout_s={int(timeout_s)}"
        read_s = timeout_s + self._timeout_s
        body = _body(self._request("GET", path, expect=200, read_timeout_s=read_s))
        try:
            return [str(release_id) for release_id in body["releases"]]
        except (KeyError, TypeError) as exc:
            raise CloudError("malformed wake-up from the cloud") from exc

    def release_grant(self, release_id: str) -> ReleaseInfo:
        """The grant of a release this station did not create (one made from a phone).

        Raises:
            CloudRejectedError: no such release for this station (404), or it is no longer
                requested (409).
        """
        path = f"/api/v1/station/releases/{release_id}"
        body = _body(self._request("GET", path, expect=200, retry=True))
        return self._grants(body, many=False)[0]

    # --- end station-entry ---

    def ping(self) -> None:
        """One unretried GET /healthz: raises CloudUnreachableError while the cloud is away.

        The station's outage probe: it has its own back-off, so no retries here.
        """
        finish(self._request("GET", "/healthz", expect=200))

    # ---- HTTP ----

    @staticmethod
    def _chunks(response: Response) -> Iterator[bytes]:
        return chunks(response, CONTENT_CHUNK_BYTES)

    def _json(
        self, method: str, path: str, payload: object, *, expect: int, retry: bool = False
    ) -> Any:
        response = self._request(method, path, expect=expect, json=payload, retry=retry)
        return _body(response)

    def _request(
        self,
        method: str,
        path: str,
        *,
        expect: int | tuple[int, ...],
        stream: bool = False,
        json: object = None,
        retry: bool = False,
        read_timeout_s: float | None = None,
    ) -> Response:
        """One call: JSON in, retried (only if `retry`) after a connection failure, 429 or
        502-504; the answer when its status is expected, else the problem as a CloudError.
        `read_timeout_s` lengthens the read timeout of this call (a long poll)."""
        body = b"" if json is None else json_bytes(json)
        headers = JSON_HEADERS if json is not None else None
        expected = expect if isinstance(expect, tuple) else (expect,)
        attempts = 1 + (self._retries if retry else 0)
        for attempt in range(attempts):
            last = attempt + 1 == attempts
            if attempt:
                time.sleep(self._backoff_s * 2 ** (attempt - 1))
            try:
                # Signed by `_http`, per attempt (a fresh nonce each time).
                response = self._http.request(
                    method,
                    path,
                    body=body,
                    headers=headers,
                    stream=stream,
                    read_timeout_s=read_timeout_s,
                )
            except CloudUnreachableError:
                if not last:
                    continue
                raise
            if response.status in _RETRY_STATUSES and not last:
                finish(response)
                continue
            if response.status not in expected:
                try:
                    raise problem_error(response)
                finally:
                    finish(response)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")


def _body(response: Response) -> Any:
    try:
        return json_of(response)
    except ValueError as exc:
        raise CloudError("the cloud's answer is not JSON") from exc


def _time(text: str) -> datetime:
    # Python 3.11 parses "Z"; shown in the station's local time.
    return datetime.fromisoformat(text).astimezone()


def _job(item: dict[str, Any]) -> JobSummary:
    pages = item.get("pages")
    owner = item.get("owner_name")
    name = str(item["name"])
    return JobSummary(
        job_id=str(item["id"]),
        # A job another user delegated releasing of is labelled with its owner.
        name=f"{owner}: {name}" if owner else name,
        submitted_at=_time(item["submitted_at"]),
        size_bytes=int(item["size_bytes"]),
        pages=int(pages) if pages is not None else None,
        copies=int(item.get("copies", 1)),
        reprint=item.get("state") == "printed",
    )


def _release(item: dict[str, Any], site_private_key: X25519PrivateKey | None) -> ReleaseInfo:
    if item.get("key_wrap", "master") == "hpke":
        # Zero-knowledge: only this station (holding the site private key) can open the job key.
        if site_private_key is None:
            raise CloudError("a zero-knowledge job, but this station has no site private key")
        wrapped = base64.b64decode(item["wrapped_key"], validate=True)
        data_key = hpke_unwrap_key(
            site_private_key, wrapped, uuid.UUID(str(item["job_id"])), str(item["site"])
        )
    else:
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
