"""RAW 9100 proof of printing: the PJL end-of-job echo, else the SNMP page counter (snmpsim)."""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hardware.printers import pjl
from hardware.printers.errors import DeliveryUnconfirmedError, PrinterConnectError
from hardware.printers.pagecount import SnmpPageCounter
from hardware.printers.raw import RawPrinterTransport
from hardware.printers.transport import PrintJob
from hardware.snmp import CommunityCredentials
from hardware.snmp.client import SnmpTarget
from tests.support.snmpsim import SnmpSimulator

JOB = PrintJob("release-9a7c", "alice", "application/pdf")
COUNTER_OID = "1.3.6.1.2.1.43.10.2.1.4.1.1"  # prtMarkerLifeCount.1.1


class RawListener:
    """A port-9100 printer on 127.0.0.1 for one connection.

    speaks_pjl: answers ECHO at once, USTATUS JOB START after JOB, END (with PAGES) after EOJ,
    like an HP LaserJet with `@PJL USTATUS JOB=ON` (PJL Technical Reference ch. 10).
    silent: reads everything and closes when we half-close, saying nothing.
    `on_job` runs when the job is complete (the "pages come out" moment).
    """

    def __init__(self, *, speaks_pjl: bool, send_end: bool = True, pages: int = 2) -> None:
        self.speaks_pjl, self.send_end, self.pages = speaks_pjl, send_end, pages
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.uri = f"socket://127.0.0.1:{self.listener.getsockname()[1]}"
        self.received = bytearray()
        self.on_job: Callable[[], None] = lambda: None
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.connections += 1
        with conn:
            conn.settimeout(10)
            answered: set[str] = set()
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    self.on_job()
                    return
                self.received += data
                if self.speaks_pjl:
                    self._answer(conn, answered)

    def _answer(self, conn: socket.socket, answered: set[str]) -> None:
        text = self.received.decode("latin-1")
        if (echo := re.search(r"@PJL ECHO ([^\r\n]*)\r\n", text)) and "echo" not in answered:
            answered.add("echo")
            conn.sendall(f"@PJL ECHO {echo.group(1)}\r\n\x0c".encode())
        if (job := re.search(r'@PJL JOB NAME="([^"]*)"', text)) and "start" not in answered:
            answered.add("start")
            conn.sendall(f'@PJL USTATUS JOB\r\nSTART\r\nNAME="{job.group(1)}"\r\n\x0c'.encode())
        eoj = re.search(r'@PJL EOJ NAME="([^"]*)"\r\n\x1b%-12345X', text)
        if eoj and "end" not in answered and self.send_end:
            answered.add("end")
            self.on_job()
            end = f'@PJL USTATUS JOB\r\nEND\r\nNAME="{eoj.group(1)}"\r\nPAGES={self.pages}\r\n'
            conn.sendall(end.encode() + b"\x0c")

    def close(self) -> None:
        if self.connections == 0:  # closing does not wake accept(): connect once instead
            with socket.create_connection(self.listener.getsockname(), timeout=1):
                pass
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def listeners() -> Iterator[Callable[..., RawListener]]:
    made: list[RawListener] = []

    def make(**kwargs) -> RawListener:
        made.append(RawListener(**kwargs))
        return made[-1]

    yield make
    for listener in made:
        listener.close()


def raw(uri: str, **kwargs) -> RawPrinterTransport:
    options = {"timeout_s": 3.0, "pjl_probe_s": 0.3, "counter_poll_s": 0.05} | kwargs
    return RawPrinterTransport(uri, **options)


def test_pjl_end_echo_with_our_name_confirms_the_job(listeners):
    printer = listeners(speaks_pjl=True, pages=3)
    document = os.urandom(200_000)
    chunks = [document[i : i + 65536] for i in range(0, len(document), 65536)]
    result = raw(printer.uri).deliver(JOB, chunks)
    assert result.impressions == 3
    assert result.bytes_sent == len(document)
    sent = bytes(printer.received)
    header = pjl.job_header(JOB.job_name, document_format=JOB.document_format)
    assert sent == header + document + pjl.job_trailer(JOB.job_name)
    assert sent.startswith(b"\x1b%-12345X@PJL\r\n@PJL USTATUS JOB=ON\r\n")
    assert b'@PJL JOB NAME="release-9a7c"\r\n' in header
    assert b"@PJL ENTER LANGUAGE=PDF\r\n" in header
    assert sent.endswith(b'\x1b%-12345X@PJL\r\n@PJL EOJ NAME="release-9a7c"\r\n\x1b%-12345X')


def test_copies_travel_as_pjl_qty(listeners):
    printer = listeners(speaks_pjl=True)
    raw(printer.uri).deliver(PrintJob("release-3x", "bob", "text/plain", copies=3), [b"doc"])
    assert b"@PJL SET QTY=3\r\n" in printer.received
    assert b"ENTER LANGUAGE" not in printer.received  # text/plain is auto-sensed


def test_pjl_printer_that_never_ends_the_job_is_unconfirmed(listeners):
    printer = listeners(speaks_pjl=True, send_end=False)
    with pytest.raises(DeliveryUnconfirmedError) as info:
        raw(printer.uri, job_timeout_s=0.5).deliver(JOB, [b"doc"])
    assert info.value.reason == "Printer did not confirm the job"
    assert info.value.bytes_sent == 3


def test_silent_printer_without_page_counter_is_unconfirmed(listeners):
    printer = listeners(speaks_pjl=False)
    with pytest.raises(DeliveryUnconfirmedError, match="no page counter"):
        raw(printer.uri).deliver(JOB, [b"doc"])
    assert b"doc" in printer.received


def test_refused_connection_is_a_connect_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        with pytest.raises(PrinterConnectError):
            raw(f"socket://127.0.0.1:{s.getsockname()[1]}").deliver(JOB, [b"x"])


# --- the SNMP page counter, served by snmpsim ------------------------------------------------


@pytest.fixture(scope="module")
def counter_agent(tmp_path_factory) -> Iterator[tuple[SnmpSimulator, Path]]:
    """snmpsim serving prtMarkerLifeCount from a file (its `subprocess` variation module), so
    the test sets the printer's page count by writing the file."""
    work = tmp_path_factory.mktemp("snmp-counter")
    count_file = work / "page-count"
    count_file.write_text("41000\n")
    simulator = SnmpSimulator(work / "sim")
    simulator.add_recording(
        "raw-printer",
        f"1.3.6.1.2.1.1.1.0|4|RAW test printer\n{COUNTER_OID}|65:subprocess|cat {count_file}\n",
    )
    with simulator:
        yield simulator, count_file


def counter(agent: SnmpSimulator) -> SnmpPageCounter:
    return SnmpPageCounter(
        SnmpTarget("127.0.0.1", CommunityCredentials("raw-printer"), port=agent.port),
        timeout_s=1.0,
    )


def test_page_counter_delta_confirms_a_job_without_pjl(listeners, counter_agent):
    agent, count_file = counter_agent
    count_file.write_text("41000\n")
    printer = listeners(speaks_pjl=False)
    printer.on_job = lambda: count_file.write_text("41002\n")  # two pages came out
    transport = raw(printer.uri, page_counter=counter(agent), counter_timeout_s=5.0)
    try:
        result = transport.deliver(JOB, [b"%PDF-1.7 two pages"])
    finally:
        transport.close()
    assert result.impressions == 2
    assert result.printer_job_id is None


def test_page_counter_that_does_not_move_leaves_the_job_unconfirmed(listeners, counter_agent):
    agent, count_file = counter_agent
    count_file.write_text("41002\n")
    printer = listeners(speaks_pjl=False)
    transport = raw(printer.uri, page_counter=counter(agent), counter_timeout_s=0.5)
    try:
        with pytest.raises(DeliveryUnconfirmedError, match="page counter stayed at 41002"):
            transport.deliver(JOB, [b"nothing printed"])
    finally:
        transport.close()


# --- PJL read-back parsing -------------------------------------------------------------------


def test_readback_splits_fragmented_messages_and_ignores_noise():
    readback = pjl.PjlReadback()
    assert readback.feed(b"%%[ PostScript noise ]%%\x0c@PJL USTATUS JOB\r\nEN") == []
    [end] = readback.feed(b'D\r\nNAME="release-1"\r\nPAGES=4\r\n\x0c')
    assert (end.job_event, end.name, end.pages) == ("END", "release-1", 4)
    [echo] = readback.feed(b"@PJL ECHO PULLPRINT release-1\r\n\x0c")
    assert echo.is_echo and echo.job_event is None


def test_readback_keeps_bounded_memory():
    readback = pjl.PjlReadback()
    readback.feed(b"x" * 100_000)
    [message] = readback.feed(b'\r\n@PJL USTATUS JOB\r\nSTART\r\nNAME="a"\r\n\x0c')
    assert message.job_event == "START"


def test_job_names_are_made_safe_for_pjl():
    assert pjl.pjl_name('evil"\r\n@PJL RESET') == "evil___@PJL RESET"
    assert len(pjl.pjl_name("r" * 200)) == 80
