"""One IPP exchange over HTTP(S): the session, the pinned TLS key, the streamed body, the errors.

IPP rides on HTTP POSTs of `application/ipp` (RFC 8010 §4, RFC 7472 for TLS on the IPP port).
This module knows how to send one request, with the document streamed after the IPP header as a
chunked body in constant memory, and how to turn network trouble into the printer error tree:

- no TCP connection (refused, unreachable, unknown name, connect timeout): `PrinterConnectError`,
  nothing was sent, a fallback may follow;
- any later trouble (reset, read timeout, TLS failure): `PrinterUnreachableError`;
- the ipps:// key is not the pinned one: `PrinterPinMismatchError`, raised by the pinned adapter
  after the handshake and before the request line, passed through unchanged.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urlsplit, urlunsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from hardware.errors import PrinterError, PrinterRejectedError, PrinterUnreachableError
from hardware.ipp.codec import Attribute, IppMessage, IppParseError, decode_message, encode_message
from hardware.ipp.enums import Operation, StatusCode, Tag
from hardware.printers.errors import PrinterConnectError
from hardware.printers.pinning import DEFAULT_IPP_PORT, PinnedAdapter
from hardware.printers.words import status_in_words

logger = logging.getLogger(__name__)

UNREACHABLE = "Printer not reachable"


class IppClient:
    """Sends IPP requests to one printer URI; see the module docstring for the error rules."""

    def __init__(
        self,
        uri: str,
        *,
        pin: str | None,
        allow_unpinned: bool,
        timeout_s: float,
        session: requests.Session | None,
    ) -> None:
        """Check the URI and pin rules and prepare the session; nothing is sent yet.

        Raises:
            ValueError: not an ipp(s) URI, a malformed pin, a pin on ipp://, or ipps:// without a
                pin and without `allow_unpinned`.
        """
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        if scheme not in ("ipp", "ipps") or not parts.hostname:
            raise ValueError(f"not an ipp:// or ipps:// printer URI: {uri!r}")
        if scheme == "ipp" and pin is not None:
            raise ValueError("a pin needs ipps://: plain ipp:// has no key to check")
        if scheme == "ipps" and pin is None and not allow_unpinned:
            raise ValueError(
                f"ipps:// printer {uri!r} has no pin: pair it (fetch_pin) or allow_unpinned=True"
            )
        self.uri = uri
        self.pinned = pin is not None
        http_scheme = "https" if scheme == "ipps" else "http"
        netloc = parts.netloc if parts.port else f"{parts.netloc}:{DEFAULT_IPP_PORT}"
        self._http_url = urlunsplit((http_scheme, netloc, parts.path or "/", parts.query, ""))
        self._timeout_s = timeout_s
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            session.trust_env = False  # printers are on the local network: no proxy, no netrc
        self._session = session
        if pin is not None:
            # Mounted for this printer's origin only, so a shared session is otherwise unchanged.
            session.mount(f"https://{netloc}/", PinnedAdapter(pin))
        self._request_ids = itertools.count(1)
        self._unreachable_logged = False

    def message(self, operation: Operation, *attributes: Attribute) -> IppMessage:
        """A request to this printer: charset, language, printer-uri, then `attributes`."""
        return IppMessage.request(
            operation,
            next(self._request_ids),
            Attribute.of("printer-uri", Tag.URI, self.uri),
            *attributes,
        )

    def request(self, operation: Operation, *attributes: Attribute) -> bytes:
        """An encoded request from the station itself (requesting-user-name "pullprint")."""
        return encode_message(
            self.message(
                operation,
                Attribute.of("requesting-user-name", Tag.NAME_WITHOUT_LANGUAGE, "pullprint"),
                *attributes,
            )
        )

    def exchange(self, body: bytes | DocumentBody) -> IppMessage:
        """POST one IPP request and decode the answer (errors: see the module docstring)."""
        try:
            response = self._session.post(
                self._http_url,
                data=body if isinstance(body, bytes) else iter(body),
                headers={"Content-Type": "application/ipp"},
                timeout=(self._timeout_s, self._timeout_s),
                # Pinned: the adapter checks the key instead of a chain printers do not have.
                # Unpinned ipps: the caller allowed it explicitly.
                verify=False,
            )
        except requests.RequestException as exc:
            if isinstance(body, DocumentBody) and body.error is not None:
                raise body.error from None  # the document source or on_progress failed, not us
            self._log_unreachable(exc)
            error = PrinterConnectError if is_connect_failure(exc) else PrinterUnreachableError
            raise error(UNREACHABLE, detail=type(exc).__name__) from exc
        if self._unreachable_logged:
            logger.info("printer %s reachable again", self.uri)
            self._unreachable_logged = False
        if response.status_code != 200:
            words = "Printer refused access" if response.status_code in (401, 403) else None
            raise PrinterRejectedError(
                words or "Printer refused the job", detail=f"HTTP {response.status_code}"
            )
        try:
            message, _ = decode_message(response.content)
        except IppParseError as exc:
            raise PrinterError("Printer sent an invalid answer", detail=str(exc)) from exc
        return message

    def close(self) -> None:
        """Close the HTTP session if this client made it."""
        if self._own_session:
            self._session.close()

    def _log_unreachable(self, exc: Exception) -> None:
        # A printer that stays offline is logged once at WARNING, then at DEBUG until it is back.
        if not self._unreachable_logged:
            logger.warning("printer %s not reachable: %s", self.uri, type(exc).__name__)
            self._unreachable_logged = True
        else:
            logger.debug("printer %s still not reachable: %s", self.uri, type(exc).__name__)


def is_connect_failure(exc: requests.RequestException) -> bool:
    """True when no TCP connection was made (refused, unreachable, DNS, connect timeout).

    A failed TLS handshake is not one: something answered on the port, and treating it as
    "cannot connect" would let an attacker who breaks handshakes force a downgrade.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError) or isinstance(
        exc, requests.exceptions.SSLError
    ):
        return False
    cause = exc.args[0] if exc.args else None
    # NewConnectionError and NameResolutionError are ConnectTimeoutError subclasses in urllib3 2.
    return isinstance(cause, MaxRetryError) and isinstance(cause.reason, ConnectTimeoutError)


def rejected(response: IppMessage, *, detail: str | None = None) -> PrinterRejectedError:
    status = response.operation_id_or_status_code
    return PrinterRejectedError(
        status_in_words(status), status_code=status, detail=detail or status_detail(response)
    )


def status_detail(response: IppMessage) -> str:
    message = response.get_str(Tag.OPERATION_ATTRIBUTES, "status-message")
    code = response.status_code
    name = code.name.lower().replace("_", "-") if isinstance(code, StatusCode) else f"0x{code:04x}"
    return f"{name}: {message}" if message else name


class DocumentBody:
    """An HTTP request body: the IPP header, then the document chunks as they come.

    Errors raised by the document source or `on_progress` are kept in `error`, because requests
    would otherwise report them as connection errors and the printer would be blamed.
    """

    def __init__(
        self, header: bytes, document: Iterable[bytes], on_progress: Callable[[int], None] | None
    ) -> None:
        self._header = header
        self._document = document
        self._on_progress = on_progress
        self.bytes_sent = 0
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        yield self._header
        chunks = iter(self._document)
        while True:
            try:
                chunk = next(chunks, None)
            except BaseException as exc:
                self.error = exc
                raise
            if chunk is None:
                return
            if not chunk:
                continue  # an empty HTTP chunk would end the chunked body early
            yield bytes(chunk)
            self.bytes_sent += len(chunk)
            if self._on_progress is not None:
                try:
                    self._on_progress(self.bytes_sent)
                except BaseException as exc:
                    self.error = exc
                    raise
