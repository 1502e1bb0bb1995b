"""Serial / USB CDC-ACM badge readers that print one badge per line.

Many desktop readers (RFIDeas, Elatec TWN4, generic 125 kHz and 13.56 MHz modules) can be set to
a virtual COM port instead of keyboard emulation: each badge arrives as a line of text, in the
format the reader was configured for. `SerialCardReader` reads those lines through a
`SerialLineLink` (bounded, tolerant of partial lines and noise, reopened after an unplug) and
undoes the format with `parse_reader_text`.

A line that does not parse (line noise, a reader's banner, a random-UID card) is logged without
its text (it may be a card number) and reported by `read()` as `CardUnreadableError`, one per
line; the lines after it stay in the link's buffer for the next `read()`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from hardware.readers.base import Credential
from hardware.readers.errors import CardFormatError, CardUnreadableError
from hardware.readers.serial_link import SerialLineLink, SerialPort
from hardware.readers.text import ReaderFormat, parse_reader_text

__all__ = ["SerialCardReader"]

logger = logging.getLogger(__name__)


class SerialCardReader:
    """A `CardReader` for a reader that prints each badge as a line on a serial port.

    Args:
        url_or_path: a device path (prefer `/dev/serial/by-id/...`) or a pyserial URL.
        baudrate: the reader's speed (CDC-ACM devices ignore it).
        fmt: how the reader prints badges.
        max_line_bytes: longer lines are dropped whole.
        opener: opens the port (tests pass one); defaults to pyserial's `serial_for_url`.
        reopen_min_s, reopen_max_s: the back-off between attempts to reopen a lost port.
    """

    def __init__(
        self,
        url_or_path: str,
        baudrate: int = 9600,
        fmt: ReaderFormat | None = None,
        *,
        max_line_bytes: int = 128,
        opener: Callable[[], SerialPort] | None = None,
        reopen_min_s: float = 0.25,
        reopen_max_s: float = 5.0,
    ) -> None:
        self.fmt = fmt if fmt is not None else ReaderFormat()
        self.link = SerialLineLink(
            url_or_path,
            baudrate,
            max_line_bytes=max_line_bytes,
            opener=opener,
            reopen_min_s=reopen_min_s,
            reopen_max_s=reopen_max_s,
        )

    @property
    def connected(self) -> bool:
        """True while the port is open."""
        return self.link.connected

    def read(self, timeout_s: float | None = None) -> Credential | None:
        """Wait up to `timeout_s` (None: forever) for a badge; None if none came in time.

        Raises:
            CardUnreadableError: a line arrived that is not a badge in this format.
            ReaderDisconnectedError: the reader is unplugged (it is reopened with back-off).
        """
        line = self.link.read_line(timeout_s)
        return None if line is None else self._parse(line)

    def close(self) -> None:
        """Close the port."""
        self.link.close()

    def _parse(self, line: bytes) -> Credential:
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            logger.warning("serial reader: dropped a line that is not ASCII (line noise?)")
            raise CardUnreadableError("the reader sent a line that is not text") from None
        try:
            return parse_reader_text(text, self.fmt)
        except CardFormatError as exc:
            # exc never contains the text; the text itself may be a card number.
            logger.warning("serial reader: dropped a line that is not a badge: %s", exc)
            raise
