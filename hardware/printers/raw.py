"""Deliver a document over RAW TCP (`socket://host:port`, the JetDirect/AppSocket port 9100).

RAW has no job model: the printer takes whatever bytes arrive until the connection closes. In this
first slice, proof of printing is only that the printer took every byte and closed the connection
cleanly after we finished sending; a PJL end-of-job echo and the SNMP page counter, which prove the
pages came out, come later.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from hardware.errors import PrinterRejectedError, PrinterUnreachableError
from hardware.printers.transport import DeliveryResult, PrintJob

logger = logging.getLogger(__name__)

DEFAULT_PORT = 9100
UNREACHABLE = "Printer not reachable"


class RawPrinterTransport:
    """A `PrinterTransport` that streams bytes to a RAW (port 9100) printer."""

    def __init__(self, uri: str, *, timeout_s: float = 30.0) -> None:
        """Prepare a client for `uri`; nothing is sent until `deliver`.

        Args:
            uri: `socket://host[:port]` (port 9100 when omitted).
            timeout_s: connect timeout, and the longest wait for any one send or for the
                printer to close the connection after the last byte.
        """
        parts = urlsplit(uri)
        if parts.scheme != "socket" or not parts.hostname:
            raise ValueError(f"not a socket:// printer URI: {uri!r}")
        self.uri = uri
        self._address = (parts.hostname, parts.port or DEFAULT_PORT)
        self._timeout_s = timeout_s

    def deliver(
        self,
        job: PrintJob,
        document: Iterable[bytes],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> DeliveryResult:
        """Send `document`, half-close, and wait for the printer to close its side.

        `job` is not sent: RAW carries no job attributes until PJL support arrives.

        Raises:
            PrinterUnreachableError: refused, reset, timed out, or closed before the end.
            PrinterRejectedError: the job asks for something RAW cannot do (copies > 1).
        """
        if job.copies > 1:
            # Without PJL the printer cannot be told to repeat the job, and resending one-shot
            # streams is impossible: refuse rather than print fewer copies than asked.
            raise PrinterRejectedError("Copies are not supported on this printer", detail="RAW")
        bytes_sent = 0
        try:
            conn = socket.create_connection(self._address, timeout=self._timeout_s)
        except OSError as exc:
            logger.warning("printer %s not reachable: %s", self.uri, exc)
            raise PrinterUnreachableError(UNREACHABLE, detail=type(exc).__name__) from exc
        with conn:
            for chunk in document:
                if not chunk:
                    continue
                try:
                    conn.sendall(chunk)
                except OSError as exc:
                    logger.warning(
                        "printer %s dropped the job after %d bytes", self.uri, bytes_sent
                    )
                    raise PrinterUnreachableError(UNREACHABLE, detail=type(exc).__name__) from exc
                bytes_sent += len(chunk)
                if on_progress is not None:
                    on_progress(bytes_sent)
            try:
                conn.shutdown(socket.SHUT_WR)  # tells the printer the job is complete
                while conn.recv(4096):
                    pass  # back-channel data (PJL status later) is ignored for now
            except OSError as exc:
                raise PrinterUnreachableError(
                    UNREACHABLE, detail=f"no clean close: {type(exc).__name__}"
                ) from exc
        logger.info("printer %s took %d bytes for %s", self.uri, bytes_sent, job.job_name)
        return DeliveryResult(printer_job_id=None, bytes_sent=bytes_sent)

    def close(self) -> None:
        """Nothing to release: each delivery uses its own connection."""
