"""IPPS with the printer's key pinned: checked after the handshake, before the first byte."""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hardware.errors import PrinterError
from hardware.printers.errors import PrinterPinMismatchError
from hardware.printers.ipp import IppPrinterTransport, printer_ready
from hardware.printers.pinning import check_pin, fetch_pin, spki_pin
from hardware.printers.transport import PrintJob
from hardware.printers.virtual import VirtualPrinter
from hardware.printers.virtual_tls import self_signed_identity

JOB = PrintJob("release-pin-1", "alice", "text/plain")
REASON = "Printer identity changed - ask an admin to re-pair it"


@pytest.fixture
def tls_printer() -> Iterator[VirtualPrinter]:
    with VirtualPrinter(processing_s=0.02, tls=True) as printer:
        yield printer


def client(uri: str, **kwargs) -> IppPrinterTransport:
    return IppPrinterTransport(uri, timeout_s=2.0, poll_interval_s=0.02, **kwargs)


def test_pin_is_base64_sha256_of_the_subject_public_key_info(tls_printer):
    host, port = tls_printer.uri.split("//")[1].split("/")[0].split(":")
    pem = ssl.get_server_certificate((host, int(port)))
    spki = (
        x509.load_pem_x509_certificate(pem.encode())
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    expected = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    assert fetch_pin(tls_printer.uri) == expected == tls_printer.pin
    assert check_pin(expected) == expected


def test_pinned_ipps_delivers(tls_printer):
    result = client(tls_printer.uri, pin=fetch_pin(tls_printer.uri)).deliver(JOB, [b"secret"])
    [received] = tls_printer.received
    assert received.data == b"secret"
    assert result.printer_job_id == received.printer_job_id


def test_wrong_pin_stops_delivery_before_any_request_byte(tls_printer):
    other = self_signed_identity().pin
    transport = client(tls_printer.uri, pin=other)
    pulled: list[int] = []

    def document() -> Iterator[bytes]:
        pulled.append(1)
        yield b"must never leave the station"

    with pytest.raises(PrinterPinMismatchError) as info:
        transport.deliver(JOB, document())
    assert info.value.reason == REASON
    assert info.value.expected == other
    assert info.value.actual == tls_printer.pin
    assert tls_printer.requests_started == 0  # not even a request line
    assert tls_printer.bytes_received == 0
    assert pulled == []  # the document source was never read
    assert tls_printer.received == tls_printer.aborted == []


def test_changed_printer_key_is_refused_and_not_retried(tls_printer):
    paired_pin = tls_printer.pin
    transport = client(tls_printer.uri, pin=paired_pin)
    transport.deliver(JOB, [b"first"])
    transport.close()
    seen = tls_printer.requests_started
    tls_printer.new_key()  # a swapped printer, or an impostor at its address
    transport = client(tls_printer.uri, pin=paired_pin)
    for call in (
        lambda: transport.deliver(JOB, [b"second"]),
        transport.check_ready,
        lambda: transport.job_outcome("release-pin-1"),
    ):
        with pytest.raises(PrinterPinMismatchError):
            call()
    assert tls_printer.requests_started == seen
    assert [r.data for r in tls_printer.received] == [b"first"]
    assert printer_ready(tls_printer.uri, pin=paired_pin) == (False, REASON)
    assert printer_ready(tls_printer.uri, pin=tls_printer.pin) == (True, None)  # re-paired


class TlsListener:
    """A bare TLS server that counts every application byte it receives after the handshake."""

    def __init__(self) -> None:
        self.identity = self_signed_identity()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.uri = f"ipps://127.0.0.1:{self.listener.getsockname()[1]}/ipp/print"
        self.received = 0
        self.handshakes = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        raw, _ = self.listener.accept()
        with self.identity.context.wrap_socket(raw, server_side=True) as conn:
            self.handshakes += 1
            conn.settimeout(5)
            try:
                while data := conn.recv(65536):
                    self.received += len(data)
            except (OSError, ssl.SSLError):
                pass

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


def test_a_tls_peer_with_another_key_receives_zero_bytes():
    listener = TlsListener()
    try:
        with pytest.raises(PrinterPinMismatchError):
            client(listener.uri, pin=self_signed_identity().pin).deliver(JOB, [b"x" * 100_000])
        listener.thread.join(5)
        assert listener.handshakes == 1  # the check ran after a completed handshake...
        assert listener.received == 0  # ...and before a single byte was written
    finally:
        listener.close()


def test_ipps_without_a_pin_is_refused_unless_explicitly_allowed(tls_printer):
    with pytest.raises(ValueError, match="no pin"):
        IppPrinterTransport(tls_printer.uri)
    with pytest.warns(Warning, match="Unverified HTTPS"):
        client(tls_printer.uri, allow_unpinned=True).deliver(JOB, [b"unpinned"])
    assert tls_printer.received[0].data == b"unpinned"


def test_fetch_pin_needs_ipps_and_a_listening_printer():
    with pytest.raises(ValueError, match="ipps"):
        fetch_pin("ipp://127.0.0.1:631/ipp/print")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        with pytest.raises(PrinterError, match="not reachable"):
            fetch_pin(f"ipps://127.0.0.1:{s.getsockname()[1]}/ipp/print", timeout_s=1)


def test_spki_pin_ignores_the_certificate_around_the_key():
    identity = self_signed_identity()
    assert spki_pin(identity.certificate_der) == identity.pin
    assert len(base64.b64decode(identity.pin)) == 32
