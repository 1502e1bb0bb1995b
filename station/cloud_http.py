"""The station's HTTP to the cloud: one urllib3 connection pool, signed requests, typed errors.

Every module of `station` that talks to the cloud (the REST client, pairing, the heartbeat link,
the update client, the INFRA proxy) sends through `CloudHttp`: status codes and RFC 9457 problems
become the `CloudError` tree here (`problem_error`), connection failures `CloudUnreachableError`.

urllib3 2 is used directly, not through `requests`: a station's idle memory budget (DESIGN.md,
RSS <= 45 MB) has no room for requests' own modules and charset_normalizer, and the station needs
none of what requests adds (cookies, redirects, proxies from the environment, charset guessing).

Invariants:

* one pool per cloud origin, keep-alive connections reused across threads (urllib3 pools are
  thread-safe); `maxsize` connections are kept idle, more are opened when needed;
* urllib3 never retries and never follows a redirect: a retry is the caller's decision (only
  idempotent calls may), and a signed request is signed for one target;
* every request has a connect and a read timeout;
* a signed request is signed once per call, so a retry is a new request with a fresh nonce;
* TLS: the certificate chain and host name are verified against the system's trust store
  (OpenSSL's default paths, which `SSL_CERT_FILE` / `SSL_CERT_DIR` override) unless `ca_certs`
  names another bundle; the store is looked up by subject hash in its directory, so only the CAs
  a chain needs are ever parsed (see `_system_trust`). No environment proxy is used.
* no header value (signatures, tokens) and no body is ever logged or put in an error message.
"""

from __future__ import annotations

import functools
import json
import os
import re
import ssl
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import urllib3
from urllib3.exceptions import HTTPError, ProtocolError, ProxyError, SSLError, TimeoutError
from urllib3.util import SKIP_HEADER, Timeout, parse_url
from urllib3.util.ssl_ import create_urllib3_context

from station.errors import (
    CloudError,
    CloudRejectedError,
    CloudUnreachableError,
    ConfigError,
    PinLockedError,
    PinNotSetError,
    RateLimitedError,
    SelfEnrolmentDisabledError,
    SessionExpiredError,
    UnknownCredentialError,
)

Response = urllib3.BaseHTTPResponse
# urllib3 adds these unless told to skip them; the station's small requests do not need them.
LEAN_HEADERS = {"User-Agent": SKIP_HEADER, "Accept-Encoding": SKIP_HEADER}
JSON_HEADERS = {"Content-Type": "application/json"}
GATEWAY_DOWN = (502, 503, 504)
_HASH_LINK = re.compile(r"[0-9a-f]{8}\.[0-9]+")
# Connect, TLS, reset, timeout: the cloud did not answer (requests' ConnectionError and Timeout).
_UNREACHABLE = (TimeoutError, ProtocolError, SSLError, ProxyError)


class Signer(Protocol):
    """Signs one request (`station.signing.SignatureAuth`): the headers to add."""

    def sign(self, method: str, target: str, body: bytes) -> dict[str, str]: ...


class CloudHttp:
    """Sends requests to one cloud origin.

    Args:
        base_url: the cloud, e.g. "https://print.example.org" (a path prefix is kept).
        timeout_s: connect and read timeout of every request (read: between bytes).
        signer: signs each request; None for the unauthenticated pairing calls.
        headers: sent with every request (per-call headers are added to them).
        ca_certs: a CA bundle to verify the cloud against instead of the system's.
        maxsize: idle keep-alive connections kept (one per thread that talks at once).

    Raises:
        ValueError: `base_url` is not an http(s) URL (ConfigError: `ca_certs` is unreadable).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        signer: Signer | None = None,
        headers: Mapping[str, str] | None = None,
        ca_certs: str | None = None,
        maxsize: int = 4,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        url = parse_url(self.base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._prefix = url.path or ""
        self._signer = signer
        self._headers = dict(headers or {})
        self._timeout_s = timeout_s
        options: dict[str, Any] = {}
        if url.scheme == "https":
            options["ssl_context"] = _trust(ca_certs)
        self._pool = urllib3.connection_from_url(
            self.base_url,
            retries=False,
            maxsize=maxsize,
            block=False,
            **options,
        )

    def __repr__(self) -> str:
        return f"CloudHttp({self.base_url!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._pool.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        read_timeout_s: float | None = None,
    ) -> Response:
        """Send one request (signed when there is a signer); the answer, whatever its status.

        `path` is the request target below the base URL, query included, already percent-encoded
        (it is signed as sent). `read_timeout_s` replaces the read timeout for this call (a long
        poll). A streamed answer is read with `chunks` and must be given back with `finish`.

        Raises:
            CloudUnreachableError: no connection, TLS failure, reset, or timeout.
            CloudError: any other failure to send or read.
        """
        target = self._prefix + path
        sent = {**self._headers, **(headers or {})}
        if self._signer is not None:
            sent.update(self._signer.sign(method, target, body))
        read_s = self._timeout_s if read_timeout_s is None else read_timeout_s
        try:
            return self._pool.urlopen(
                method,
                target,
                body=body or None,
                headers=sent,
                redirect=False,
                retries=False,
                preload_content=not stream,
                timeout=Timeout(connect=self._timeout_s, read=read_s),
            )
        except _UNREACHABLE as exc:
            # Only the exception's type: its text may hold the URL, never the headers.
            raise CloudUnreachableError(f"cannot reach the cloud ({type(exc).__name__})") from exc
        except HTTPError as exc:
            raise CloudError(f"{method} request failed ({type(exc).__name__})") from exc


def _trust(ca_certs: str | None) -> ssl.SSLContext:
    """The verifying TLS context for a cloud: the system's CA store, or the given bundle.

    Made once and shared: urllib3 would otherwise build a context and parse the whole system store
    for every new connection (~1.7 MB and ~0.1 s each), and each kept-alive connection would hold
    its own copy.
    """
    if ca_certs is None:
        return _system_trust()
    context = create_urllib3_context()
    try:
        context.load_verify_locations(cafile=ca_certs)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot read the CA file {ca_certs}: {exc}") from exc
    return context


@functools.cache
def _system_trust() -> ssl.SSLContext:
    context = create_urllib3_context()  # CERT_REQUIRED, host names checked, TLS 1.2 at least
    paths = ssl.get_default_verify_paths()  # SSL_CERT_DIR / SSL_CERT_FILE applied
    if paths.capath and paths.openssl_cafile_env not in os.environ and _hashed(paths.capath):
        # OpenSSL finds a CA in a hashed directory (Debian's /etc/ssl/certs) when a chain needs
        # it: the whole bundle, ~1 MB held for good and ~50 ms to parse, is never loaded.
        context.load_verify_locations(capath=paths.capath)
    else:
        context.load_default_certs()
    return context


def _hashed(directory: str) -> bool:
    """Whether `directory` holds OpenSSL's subject-hash links (`1a2b3c4d.0`, c_rehash)."""
    try:
        with os.scandir(directory) as entries:
            return any(_HASH_LINK.fullmatch(entry.name) for entry in entries)
    except OSError:
        return False


def json_bytes(payload: object) -> bytes:
    """A JSON body as requests sent it (no NaN: the cloud's parser refuses it)."""
    return json.dumps(payload, allow_nan=False).encode("utf-8")


def json_of(response: Response) -> Any:
    """The answer's JSON body; ValueError when it is not JSON (or not UTF-8)."""
    try:
        return response.json()
    except HTTPError as exc:  # a streamed body cut off while read
        raise ValueError("the body could not be read") from exc


def chunks(response: Response, size: int) -> Iterator[bytes]:
    """A streamed answer's body, `size` bytes at a time.

    Raises:
        CloudUnreachableError: the stream broke off (reset, timeout, short of its length).
    """
    try:
        yield from response.stream(size)
    except HTTPError as exc:
        raise CloudUnreachableError("the content stream broke off") from exc


def finish(response: Response) -> None:
    """Give an answer back: its connection returns to the pool, or is closed if unread data is
    left on it (the next request must not read this answer's rest)."""
    response.close()
    response.release_conn()


def problem_error(response: Response) -> CloudError:
    """The typed error for a non-success answer (RFC 9457 problem when the body is one)."""
    status = response.status
    code: str | None = None
    detail: str | None = None
    try:
        body = json_of(response)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("code") if isinstance(body.get("code"), str) else None
        detail = body.get("detail") if isinstance(body.get("detail"), str) else None
    if status in GATEWAY_DOWN:
        return CloudUnreachableError(f"the cloud is unavailable (HTTP {status})")
    message = f"HTTP {status} {code or ''}".strip()
    if status == 404 and code in ("unknown-credential", "unknown-passcode"):
        return UnknownCredentialError(message, status=status, code=code, detail=detail)
    if status == 429:
        try:
            wait = max(1, int(response.headers.get("Retry-After", "")))
        except ValueError:
            wait = 60  # RFC 9110 also allows an HTTP date; the cloud sends seconds
        return RateLimitedError(
            message, status=status, code=code, detail=detail, retry_after_s=wait
        )
    if code == "pin-locked":
        return PinLockedError(message, status=status, code=code, detail=detail)
    if code == "pin-not-set":
        return PinNotSetError(message, status=status, code=code, detail=detail)
    if code == "self-enrolment-disabled":
        return SelfEnrolmentDisabledError(message, status=status, code=code, detail=detail)
    if status == 410 or code == "session-expired":
        return SessionExpiredError(message, status=status, code=code, detail=detail)
    return CloudRejectedError(message, status=status, code=code, detail=detail)
