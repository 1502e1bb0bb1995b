"""RawPrinterTransport against a small local TCP server standing in for a port-9100 printer."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from hardware.errors import PrinterRejectedError, PrinterUnreachableError
from hardware.printers.errors import DeliveryUnconfirmedError
from hardware.printers.raw import RawPrinterTransport
from hardware.printers.transport import PrintJob

JOB = PrintJob("release-raw", "alice")


class StepCounter:
    """A page counter that has grown by `step` each time it is read after the first."""

    def __init__(self, start: int = 100, step: int = 1) -> None:
        self.value, self.step, self.reads = start - step, step, 0

    def read(self) -> int:
        self.reads += 1
        self.value += self.step
        return self.value

    def close(self) -> None:
        pass


class TcpPrinter:
    """Accepts one connection and runs `behaviour(conn)` on it in a thread."""

    def __init__(self, behaviour: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.uri = f"socket://127.0.0.1:{self.listener.getsockname()[1]}"
        self.received = bytearray()
        self.behaviour = behaviour
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            self.behaviour(conn)

    def read_all(self, conn: socket.socket) -> None:
        while data := conn.recv(65536):
            self.received += data

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def make_printer() -> Iterator[Callable[..., TcpPrinter]]:
    printers: list[TcpPrinter] = []

    def make(behaviour: Callable[[TcpPrinter, socket.socket], None] | None = None) -> TcpPrinter:
        printer = TcpPrinter(lambda conn: (behaviour or TcpPrinter.read_all)(printer, conn))
        printers.append(printer)
        return printer

    yield make
    for printer in printers:
        printer.close()


def test_streams_every_byte_and_returns_after_a_clean_close(make_printer):
    printer = make_printer()
    document = os.urandom(500_000)
    progress: list[int] = []
    chunks = (document[i : i + 65536] for i in range(0, len(document), 65536))
    transport = RawPrinterTransport(
        printer.uri, timeout_s=5, pjl=False, page_counter=StepCounter(step=3)
    )
    result = transport.deliver(JOB, chunks, on_progress=progress.append)
    printer.thread.join(5)
    assert bytes(printer.received) == document  # no PJL: the bytes exactly
    assert result.bytes_sent == len(document)
    assert result.printer_job_id is None
    assert result.impressions == 3  # the page counter's growth
    assert progress[-1] == len(document)


def test_refused_connection_is_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        uri = f"socket://127.0.0.1:{s.getsockname()[1]}"
        with pytest.raises(PrinterUnreachableError) as info:
            RawPrinterTransport(uri, timeout_s=1).deliver(JOB, [b"x"])
    assert info.value.reason == "Printer not reachable"


def test_printer_that_never_closes_is_unconfirmed(make_printer):
    release = threading.Event()

    def hold_open(printer: TcpPrinter, conn: socket.socket) -> None:
        printer.read_all(conn)  # sees our half-close...
        release.wait(5)  # ...but never closes its side

    printer = make_printer(hold_open)
    with pytest.raises(DeliveryUnconfirmedError, match="kept the connection open"):
        RawPrinterTransport(printer.uri, timeout_s=0.3, pjl=False).deliver(JOB, [b"x"])
    release.set()


def test_printer_that_resets_mid_job_is_unreachable(make_printer):
    def reset(printer: TcpPrinter, conn: socket.socket) -> None:
        printer.received += conn.recv(1000)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    printer = make_printer(reset)
    endless = (b"x" * 65536 for _ in range(10_000))
    with pytest.raises(PrinterUnreachableError):
        RawPrinterTransport(printer.uri, timeout_s=2).deliver(JOB, endless)


def test_copies_without_pjl_are_refused_rather_than_silently_dropped():
    with pytest.raises(PrinterRejectedError):
        RawPrinterTransport("socket://127.0.0.1:9", pjl=False).deliver(
            PrintJob("r", "u", copies=2), [b"x"]
        )


def test_default_port_and_bad_uris():
    assert RawPrinterTransport("socket://127.0.0.1")._address == ("127.0.0.1", 9100)
    with pytest.raises(ValueError, match="socket://"):
        RawPrinterTransport("ipp://127.0.0.1:9100")
