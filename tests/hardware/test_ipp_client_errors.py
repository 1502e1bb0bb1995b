"""How the IPP client's network trouble becomes printer errors, on urllib3 and real sockets.

Only "no TCP connection" may be a `PrinterConnectError` (a fallback to another transport may
follow it); a TLS failure means something answered on the port, so it must not be one.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from hardware.errors import PrinterUnreachableError
from hardware.printers.errors import PrinterConnectError
from hardware.printers.ipp import IppPrinterTransport
from hardware.printers.ipp_client import is_connect_failure
from hardware.printers.transport import PrintJob
from hardware.printers.virtual import VirtualPrinter

JOB = PrintJob("release-net-1", "alice", "text/plain")


@pytest.fixture
def refusing_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        yield s.getsockname()[1]


class NotTls:
    """A TCP server on the "ipps" port that answers a TLS hello with plain HTTP."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


def test_connection_refused_is_a_connect_error_and_nothing_is_pulled(refusing_port):
    transport = IppPrinterTransport(f"ipp://127.0.0.1:{refusing_port}/ipp/print", timeout_s=1)
    document = iter([b"never sent"])
    with pytest.raises(PrinterConnectError) as info:
        transport.deliver(JOB, document)
    assert (info.value.reason, info.value.detail) == ("Printer not reachable", "NewConnectionError")
    assert next(document, None) == b"never sent"  # the source was not read
    transport.close()


def test_a_failed_tls_handshake_is_unreachable_but_not_a_connect_error():
    server = NotTls()
    try:
        transport = IppPrinterTransport(
            f"ipps://127.0.0.1:{server.port}/ipp/print", pin="A" * 43 + "=", timeout_s=2
        )
        with pytest.raises(PrinterUnreachableError) as info:
            transport.check_ready()
        assert not isinstance(info.value, PrinterConnectError)  # no downgrade to ipp:// or RAW
        assert info.value.detail == "SSLError"
    finally:
        server.close()


def test_only_a_missing_tcp_connection_counts_as_a_connect_failure():
    refused = NewConnectionError(None, "refused")  # type: ignore[arg-type]
    assert is_connect_failure(refused)
    assert is_connect_failure(NameResolutionError("printer.invalid", None, OSError("no name")))  # type: ignore[arg-type]
    assert is_connect_failure(ConnectTimeoutError())
    assert is_connect_failure(MaxRetryError(None, "/ipp/print", refused))  # type: ignore[arg-type]
    for later in (
        SSLError("handshake"),
        ReadTimeoutError(None, "/ipp/print", "read timed out"),  # type: ignore[arg-type]
        ProtocolError("reset"),
        MaxRetryError(None, "/ipp/print", SSLError("handshake")),  # type: ignore[arg-type]
    ):
        assert not is_connect_failure(later), later


@pytest.mark.parametrize("tls", [False, True])
def test_a_delivery_keeps_one_connection_alive_for_all_its_requests(tls):
    with VirtualPrinter(processing_s=0.02, tls=tls) as printer:
        transport = IppPrinterTransport(
            printer.uri, pin=printer.pin if tls else None, timeout_s=5, poll_interval_s=0.02
        )
        transport.deliver(JOB, [b"page one", b"page two"])
        transport.check_ready()
        pool = transport._client._pool
        # Get-Printer-Attributes, Create-Job, Send-Document, Get-Job-Attributes, ... one handshake.
        assert pool.num_requests >= 5
        assert pool.num_connections == 1
        transport.close()
        assert [r.data for r in printer.received] == [b"page onepage two"]
