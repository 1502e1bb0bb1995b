"""One IPP exchange over HTTP(S): the connection pool, the pinned TLS key, the streamed body, the
errors.

IPP rides on HTTP POSTs of `application/ipp` (RFC 8010 §4, RFC 7472 for TLS on the IPP port).
This module knows how to send one request, with the document streamed after the IPP header as a
chunked body in constant memory, and how to turn network trouble into the printer error tree:

- no TCP connection (refused, unreachable, unknown name, connect timeout): `PrinterConnectError`,
  nothing was sent, a fallback may follow;
- any later trouble (reset, read timeout, TLS failure): `PrinterUnreachableError`;
- the ipps:// key is not the pinned one: `PrinterPinMismatchError`, raised by the pinned
  connection after the handshake and before the request line, passed through unchanged.

urllib3 2 is used directly (a keep-alive pool per printer, `pinning.printer_pool`): requests would
add several megabytes to the station's idle memory for nothing the station uses.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urlsplit, urlunsplit

from urllib3.exceptions import ConnectTimeoutError, HTTPError, MaxRetryError

from hardware.errors import PrinterError, PrinterRejectedError, PrinterUnreachableError
from hardware.ipp.codec import Attribute, IppMessage, IppParseError, decode_message, encode_message
from hardware.ipp.enums import Operation, StatusCode, Tag
from hardware.printers.errors import PrinterConnectError
from hardware.printers.pinning import DEFAULT_IPP_PORT, printer_pool
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
    ) -> None:
        """Check the URI and pin rules and prepare the connection pool; nothing is sent yet.

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
        self._target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        # Printers are on the local network: no proxy from the environment, no netrc.
        self._pool = printer_pool(
            http_scheme,
            parts.hostname,
            parts.port or DEFAULT_IPP_PORT,
            pin=pin,
            timeout_s=timeout_s,
        )
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
        payload = body if isinstance(body, bytes) else iter(body)
        try:
            # Pinned: the connection checks the key instead of a chain printers do not have.
            # Unpinned ipps: the caller allowed it explicitly.
            response = self._pool.urlopen(
                "POST",
                self._target,
                body=payload,
                headers={"Content-Type": "application/ipp"},
                # The document in constant memory (RFC 8011 §4.3.1).
                chunked=not isinstance(payload, bytes),
                redirect=False,
                retries=False,
            )
        except HTTPError as exc:
            if isinstance(body, DocumentBody) and body.error is not None:
                raise body.error from None  # the document source or on_progress failed, not us
            self._log_unreachable(exc)
            error = PrinterConnectError if is_connect_failure(exc) else PrinterUnreachableError
            raise error(UNREACHABLE, detail=type(exc).__name__) from exc
        if self._unreachable_logged:
            logger.info("printer %s reachable again", self.uri)
            self._unreachable_logged = False
        if response.status != 200:
            words = "Printer refused access" if response.status in (401, 403) else None
            raise PrinterRejectedError(
                words or "Printer refused the job", detail=f"HTTP {response.status}"
            )
        try:
            message, _ = decode_message(response.data)
        except IppParseError as exc:
            raise PrinterError("Printer sent an invalid answer", detail=str(exc)) from exc
        return message

    def close(self) -> None:
        """Close the pooled connections."""
        self._pool.close()

    def _log_unreachable(self, exc: Exception) -> None:
        # A printer that stays offline is logged once at WARNING, then at DEBUG until it is back.
        if not self._unreachable_logged:
            logger.warning("printer %s not reachable: %s", self.uri, type(exc).__name__)
            self._unreachable_logged = True
        else:
            logger.debug("printer %s still not reachable: %s", self.uri, type(exc).__name__)


def is_connect_failure(exc: HTTPError) -> bool:
    """True when no TCP connection was made (refused, unreachable, DNS, connect timeout).

    A failed TLS handshake is not one (urllib3 raises SSLError, or ReadTimeoutError for a
    handshake that stalls): something answered on the port, and treating it as "cannot connect"
    would let an attacker who breaks handshakes force a downgrade.
    """
    # MaxRetryError only if retries are ever turned on; it names the last failure.
    reason = exc.reason if isinstance(exc, MaxRetryError) else exc
    # NewConnectionError and NameResolutionError are ConnectTimeoutError subclasses in urllib3 2.
    return isinstance(reason, ConnectTimeoutError)


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

    Errors raised by the document source or `on_progress` are kept in `error`, because urllib3
    would report an OSError among them as a connection error and the printer would be blamed.
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
