"""transport_for_uri chooses the transport by scheme."""

from __future__ import annotations

import pytest

from hardware.printers.ipp import IppPrinterTransport
from hardware.printers.raw import RawPrinterTransport
from hardware.printers.registry import transport_for_uri


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("ipp://127.0.0.1:631/ipp/print", IppPrinterTransport),
        ("IPP://127.0.0.1/ipp/print", IppPrinterTransport),
        ("socket://127.0.0.1:9100", RawPrinterTransport),
        ("socket://127.0.0.1", RawPrinterTransport),
    ],
)
def test_scheme_picks_the_transport(uri, kind):
    transport = transport_for_uri(uri, timeout_s=3)
    assert isinstance(transport, kind)
    assert transport.uri == uri
    transport.close()


PIN = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # base64 of a SHA-256


def test_ipps_needs_a_pin_or_an_explicit_allowance():
    uri = "ipps://127.0.0.1/ipp/print"
    with pytest.raises(ValueError, match="no pin"):
        transport_for_uri(uri)
    pinned = transport_for_uri(uri, pin=PIN)
    assert isinstance(pinned, IppPrinterTransport)
    assert pinned.pinned
    assert not transport_for_uri(uri, allow_unpinned=True).pinned


def test_a_pin_is_refused_where_there_is_no_tls():
    with pytest.raises(ValueError, match="ipps"):
        transport_for_uri("ipp://127.0.0.1/ipp/print", pin=PIN)
    with pytest.raises(ValueError, match="base64"):
        transport_for_uri("ipps://127.0.0.1/ipp/print", pin="not a pin!")


@pytest.mark.parametrize("uri", ["lpd://127.0.0.1/queue", "127.0.0.1:9100", "virtual://x"])
def test_unknown_scheme_is_a_clear_value_error(uri):
    with pytest.raises(ValueError, match="unsupported printer URI scheme"):
        transport_for_uri(uri)


def test_uri_without_host_is_a_value_error():
    with pytest.raises(ValueError):
        transport_for_uri("ipp:///ipp/print")
