"""Deliver a document over RAW TCP (`socket://host:port`, the JetDirect/AppSocket port 9100).

RAW has no job model: the printer takes whatever bytes arrive. Proof of printing comes one of
two ways, and without one of them `deliver` raises `DeliveryUnconfirmedError`, never returns:

1. PJL (see `hardware.printers.pjl`): the job is wrapped with `@PJL USTATUS JOB=ON` and
   `@PJL JOB NAME="<release id>"`, and the printer's unsolicited `USTATUS JOB END` message with
   our name, read back over the same connection, says the last page is out. An `@PJL ECHO` in
   the header tells within `pjl_probe_s` whether the printer speaks PJL at all.
2. Otherwise the page counter (`PageCounter`, SNMP prtMarkerLifeCount in practice): read before
   the job, and after the printer has closed the connection, until it has grown.

Invariants: the connection is written only after it is made (a refused connection raises
`PrinterConnectError`, nothing sent); every wait has a deadline; document bytes are never logged.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections.abc import Callable, Iterable
from typing import Protocol
from urllib.parse import urlsplit

from hardware.errors import PrinterRejectedError, PrinterUnreachableError
from hardware.printers import pjl
from hardware.printers.errors import DeliveryUnconfirmedError, PrinterConnectError
from hardware.printers.transport import DeliveryResult, PrintJob

logger = logging.getLogger(__name__)

DEFAULT_PORT = 9100
UNREACHABLE = "Printer not reachable"
_READ_BYTES = 4096


class PageCounterError(Exception):
    """The page counter could not be read."""


class PageCounter(Protocol):
    """Reads a printer's lifetime page count (`hardware.printers.pagecount.SnmpPageCounter`)."""

    def read(self) -> int:
        """The count now; raises `PageCounterError` when it cannot be read."""
        ...

    def close(self) -> None:
        """Release what reading needed."""
        ...


class RawPrinterTransport:
    """A `PrinterTransport` for a RAW (port 9100) printer, with PJL or page-counter proof."""

    def __init__(
        self,
        uri: str,
        *,
        timeout_s: float = 30.0,
        pjl: bool = True,
        pjl_probe_s: float = 3.0,
        job_timeout_s: float = 600.0,
        page_counter: PageCounter | None = None,
        counter_timeout_s: float = 60.0,
        counter_poll_s: float = 1.0,
    ) -> None:
        """Prepare a client for `uri`; nothing is sent until `deliver`.

        Args:
            uri: `socket://host[:port]` (port 9100 when omitted).
            timeout_s: connect timeout, the longest wait for any one send, and for the printer
                to close the connection after the last byte when it does not speak PJL.
            pjl: wrap jobs in PJL; False for the rare printer that prints PJL as text.
            pjl_probe_s: how long after connecting the printer has to answer our PJL ECHO
                before it is taken not to speak PJL.
            job_timeout_s: how long a PJL printer has to report the job's END.
            page_counter: the fallback proof; None leaves a non-PJL printer unconfirmable.
            counter_timeout_s: how long, after the connection closed, the counter may take to
                grow.
            counter_poll_s: the pause between counter reads.
        """
        parts = urlsplit(uri)
        if parts.scheme.lower() != "socket" or not parts.hostname:
            raise ValueError(f"not a socket:// printer URI: {uri!r}")
        self.uri = uri
        self._address = (parts.hostname, parts.port or DEFAULT_PORT)
        self._timeout_s = timeout_s
        self._pjl = pjl
        self._pjl_probe_s = pjl_probe_s
        self._job_timeout_s = job_timeout_s
        self._page_counter = page_counter
        self._counter_timeout_s = counter_timeout_s
        self._counter_poll_s = counter_poll_s

    def deliver(
        self,
        job: PrintJob,
        document: Iterable[bytes],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> DeliveryResult:
        """Send the (PJL-wrapped) document and wait for proof that it printed.

        Raises:
            PrinterConnectError: the connection could not be made; nothing was sent.
            PrinterUnreachableError: the printer dropped the connection while we sent.
            PrinterRejectedError: copies > 1 without PJL (RAW alone cannot repeat a job).
            DeliveryUnconfirmedError: everything went out but nothing proved it printed.
        """
        if job.copies > 1 and not self._pjl:
            # Without PJL the printer cannot be told to repeat the job, and resending one-shot
            # streams is impossible: refuse rather than print fewer copies than asked.
            raise PrinterRejectedError("Copies are not supported on this printer", detail="RAW")
        baseline = self._read_counter()  # before the first byte: the job must not be in it
        try:
            conn = socket.create_connection(self._address, timeout=self._timeout_s)
        except OSError as exc:
            logger.warning("printer %s not reachable: %s", self.uri, type(exc).__name__)
            raise PrinterConnectError(UNREACHABLE, detail=type(exc).__name__) from exc
        with conn:
            session = _Session(conn, job.job_name)
            bytes_sent = self._send(session, job, document, on_progress)
            if self._pjl:
                end = session.wait_for_end(self._pjl_probe_s, self._job_timeout_s)
                if end is not None:
                    logger.info("printer %s printed %s (PJL END)", self.uri, job.job_name)
                    return DeliveryResult(None, bytes_sent, end.pages)
                if session.speaks_pjl:
                    raise DeliveryUnconfirmedError(
                        bytes_sent=bytes_sent, detail="PJL printer sent no END for the job"
                    )
            closed = session.close_and_wait(self._timeout_s)
        if not closed:
            raise DeliveryUnconfirmedError(
                bytes_sent=bytes_sent, detail="printer kept the connection open after the job"
            )
        pages = self._counted_pages(baseline, bytes_sent)
        logger.info("printer %s printed %s (%d pages counted)", self.uri, job.job_name, pages)
        return DeliveryResult(None, bytes_sent, pages)

    def close(self) -> None:
        """Release the page counter; each delivery has its own connection."""
        if self._page_counter is not None:
            self._page_counter.close()

    def _send(
        self,
        session: _Session,
        job: PrintJob,
        document: Iterable[bytes],
        on_progress: Callable[[int], None] | None,
    ) -> int:
        bytes_sent = 0
        if self._pjl:
            session.send(
                pjl.job_header(job.job_name, document_format=job.document_format, copies=job.copies)
            )
        for chunk in document:
            if not chunk:
                continue
            try:
                session.send(chunk)
            except PrinterUnreachableError:
                logger.warning("printer %s dropped the job after %d bytes", self.uri, bytes_sent)
                raise
            bytes_sent += len(chunk)
            if on_progress is not None:
                on_progress(bytes_sent)
        if self._pjl:
            session.send(pjl.job_trailer(job.job_name))
        return bytes_sent

    def _read_counter(self) -> int | None:
        if self._page_counter is None:
            return None
        try:
            return self._page_counter.read()
        except PageCounterError as exc:
            logger.warning("printer %s: page counter unreadable: %s", self.uri, exc)
            return None

    def _counted_pages(self, baseline: int | None, bytes_sent: int) -> int:
        """The page counter's growth since `baseline`; raises when it does not grow in time."""
        if baseline is None:
            raise DeliveryUnconfirmedError(
                bytes_sent=bytes_sent,
                detail="no PJL echo and no page counter to read"
                if self._page_counter is None
                else "no PJL echo and the page counter was unreadable before the job",
            )
        deadline = time.monotonic() + self._counter_timeout_s
        while True:
            now = self._read_counter()
            if now is not None and now > baseline:
                return now - baseline
            if time.monotonic() >= deadline:
                raise DeliveryUnconfirmedError(
                    bytes_sent=bytes_sent,
                    detail=f"page counter stayed at {baseline} for {self._counter_timeout_s} s",
                )
            time.sleep(self._counter_poll_s)


class _Session:
    """One RAW connection: sends, and reads the PJL back-channel whenever it can."""

    def __init__(self, conn: socket.socket, job_name: str) -> None:
        self._conn = conn
        self._name = pjl.pjl_name(job_name)
        self._echo = pjl.echo_token(job_name)
        self._readback = pjl.PjlReadback()
        self._opened_at = time.monotonic()
        self._eof = False
        self.speaks_pjl = False
        self.end: pjl.PjlStatus | None = None

    def send(self, data: bytes) -> None:
        try:
            self._conn.sendall(data)
        except OSError as exc:
            raise PrinterUnreachableError(UNREACHABLE, detail=type(exc).__name__) from exc
        self._read(0.0)  # keep the back-channel drained while we send

    def wait_for_end(self, probe_s: float, job_timeout_s: float) -> pjl.PjlStatus | None:
        """Our job's END message, or None: no PJL within `probe_s`, or it never came."""
        probe_deadline = self._opened_at + probe_s
        job_deadline = time.monotonic() + job_timeout_s
        while self.end is None and not self._eof:
            deadline = job_deadline if self.speaks_pjl else min(probe_deadline, job_deadline)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._read(remaining)
        return self.end

    def close_and_wait(self, timeout_s: float) -> bool:
        """Half-close (AppSocket: the job is complete) and wait for the printer to close."""
        try:
            self._conn.shutdown(socket.SHUT_WR)
        except OSError:
            return self._eof
        deadline = time.monotonic() + timeout_s
        while not self._eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._read(remaining)
        return True

    def _read(self, wait_s: float) -> None:
        """Read what the printer has sent, waiting up to `wait_s` for something to arrive."""
        if self._eof:
            return
        try:
            ready, _, _ = select.select([self._conn], [], [], max(0.0, wait_s))
            if not ready:
                return
            data = self._conn.recv(_READ_BYTES)
        except OSError:
            self._eof = True  # reset by the printer: no more read-back
            return
        if not data:
            self._eof = True
            return
        for message in self._readback.feed(data):
            if message.is_echo and self._echo in message.command:
                self.speaks_pjl = True
            elif message.job_event is not None and message.name == self._name:
                self.speaks_pjl = True
                if message.job_event == "END":
                    self.end = message
