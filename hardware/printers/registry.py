"""Choose a printer transport by URI scheme, in one place (like pyserial's `serial_for_url`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from hardware.printers.ipp import IppPrinterTransport
from hardware.printers.raw import RawPrinterTransport
from hardware.printers.transport import PrinterTransport

SCHEMES = ("ipp", "ipps", "socket")


def transport_for_uri(
    uri: str,
    *,
    timeout_s: float = 30.0,
    pin: str | None = None,
    allow_unpinned: bool = False,
) -> PrinterTransport:
    """Build the transport for `uri`: ipp:// and ipps:// speak IPP, socket:// speaks RAW.

    `pin` (ipps:// only) is the printer's key pin recorded at pairing; ipps:// without one is
    refused unless `allow_unpinned`. For several ways to one printer, see `FallbackTransport`.

    Raises:
        ValueError: the scheme is not one of `SCHEMES`, the URI has no host, or the pin rules of
            `IppPrinterTransport` are broken.
    """
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("ipp", "ipps"):
        return IppPrinterTransport(uri, pin=pin, allow_unpinned=allow_unpinned, timeout_s=timeout_s)
    if scheme == "socket":
        return RawPrinterTransport(uri, timeout_s=timeout_s)
    raise ValueError(
        f"unsupported printer URI scheme {scheme or '(none)'!r} in {uri!r}: "
        f"expected one of {', '.join(s + '://' for s in SCHEMES)}"
    )
