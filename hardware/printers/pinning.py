"""Printer identity for `ipps://`: the SHA-256 pin of the printer's public key, checked in TLS.

A pin is `base64(SHA-256(SubjectPublicKeyInfo DER))` of the printer's certificate, the
`pin-sha256` form of RFC 7469 §2.4 (standard base64, 44 characters). Pinning the key, not the
certificate, lets a printer renew its self-signed certificate on the same key without re-pairing.

Invariant: the connections of `printer_pool(..., pin=...)` check the pin inside `connect()`,
right after the TLS handshake and before urllib3 writes the request line, so a printer that
presents another key has received no byte of the request, let alone of the document. The
connection is then closed and `PrinterPinMismatchError` propagates unchanged (it is not an
OSError, so urllib3 neither retries nor wraps it). Certificate chains and host names are not
checked: printers use self-signed certificates, and the pin is a stronger statement than either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import socket
import ssl
from urllib.parse import urlsplit

from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util import Timeout

from hardware.errors import PrinterError
from hardware.printers.errors import PrinterConnectError, PrinterPinMismatchError

DEFAULT_IPP_PORT = 631  # RFC 8010 §8.2: ipps:// uses the IPP port unless one is given
PIN_BYTES = 32


def spki_pin(certificate_der: bytes) -> str:
    """The pin of a DER certificate: base64 of the SHA-256 of its SubjectPublicKeyInfo."""
    # x509 and serialization (with its SSH formats: about 25 ms and 3 MB to import) only when a
    # printer's pin is fetched, not in every station that merely checks one.
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: PLC0415

    public_key = x509.load_der_x509_certificate(certificate_der).public_key()
    spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def check_pin(pin: str) -> str:
    """Return `pin` if it is a well-formed pin (base64 of 32 bytes); raise ValueError otherwise."""
    try:
        raw = base64.b64decode(pin, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"printer pin is not base64: {pin!r}") from exc
    if len(raw) != PIN_BYTES:
        raise ValueError(f"printer pin is not a SHA-256 (32 bytes): {pin!r}")
    return pin


def fetch_pin(uri: str, *, timeout_s: float = 10.0) -> str:
    """Connect to an `ipps://` printer and return the pin of the key it presents (pairing time).

    The admin should compare it with what the printer's own panel or web page shows before it is
    recorded: on first contact nothing else proves the printer is the printer.

    Raises:
        ValueError: `uri` is not an ipps:// URI.
        PrinterConnectError: the printer could not be reached.
        PrinterError: the TLS handshake failed or no certificate was presented.
    """
    parts = urlsplit(uri)
    if parts.scheme.lower() != "ipps" or not parts.hostname:
        raise ValueError(f"not an ipps:// printer URI: {uri!r}")
    address = (parts.hostname, parts.port or DEFAULT_IPP_PORT)
    context = _unverified_context()
    try:
        raw = socket.create_connection(address, timeout=timeout_s)
    except OSError as exc:
        raise PrinterConnectError("Printer not reachable", detail=type(exc).__name__) from exc
    try:
        with context.wrap_socket(raw, server_hostname=parts.hostname) as tls:
            der = tls.getpeercert(binary_form=True)
    except OSError as exc:  # ssl.SSLError is an OSError
        raise PrinterError("Printer TLS failed", detail=type(exc).__name__) from exc
    finally:
        raw.close()
    if not der:
        raise PrinterError("Printer TLS failed", detail="no certificate presented")
    return spki_pin(der)


def _unverified_context() -> ssl.SSLContext:
    # Chain and name are not verified on purpose (see the module docstring): the pin is. So no CA
    # store is loaded either (create_default_context would parse the system's, for nothing).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _PinnedHTTPSConnection(HTTPSConnection):
    """An HTTPS connection that refuses, after the handshake, a peer whose key is not pinned."""

    expected_pin = ""  # set on the subclass that `printer_pool` makes

    def connect(self) -> None:
        super().connect()
        # An ssl.SSLSocket, or urllib3's SSLTransport for TLS in TLS: both have getpeercert.
        getpeercert = getattr(self.sock, "getpeercert", None)
        der = getpeercert(binary_form=True) if getpeercert is not None else None
        actual = spki_pin(der) if der else "(no certificate)"
        if not hmac.compare_digest(actual.encode(), self.expected_pin.encode()):
            self.close()  # nothing was written: the request line comes after connect()
            raise PrinterPinMismatchError(expected=self.expected_pin, actual=actual)
        # The pin verified the peer; urllib3 would otherwise warn that it is unverified.
        self.is_verified = True


def printer_pool(
    scheme: str, host: str, port: int, *, pin: str | None, timeout_s: float
) -> HTTPConnectionPool:
    """A keep-alive connection pool to one printer (`scheme` "http" or "https").

    HTTPS connections check `pin` after the handshake (see the module docstring); without a pin
    they are encrypted but unauthenticated, which the caller allowed explicitly. urllib3 never
    retries, follows no redirect and uses no proxy: a forwarding proxy would make the proxy, not
    the printer, the TLS peer.

    Raises:
        ValueError: a malformed pin.
    """
    timeout = Timeout(connect=timeout_s, read=timeout_s)
    if scheme != "https":
        return HTTPConnectionPool(host, port, timeout=timeout, retries=False, maxsize=2)
    pool = HTTPSConnectionPool(
        host,
        port,
        timeout=timeout,
        retries=False,
        maxsize=2,
        # Chain and name are not what is checked (see the module docstring): the pin is.
        ssl_context=_unverified_context(),
    )
    if pin is not None:
        expected = check_pin(pin)
        pool.ConnectionCls = type(
            "PinnedHTTPSConnection", (_PinnedHTTPSConnection,), {"expected_pin": expected}
        )
    return pool
