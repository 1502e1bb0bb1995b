"""Line-framed serial links (USB CDC-ACM, USB-serial, UART) for badge readers and our bridge.

Two layers:

* `LineFramer` (pure): bytes in, complete lines out. A line ends at CR, LF or CRLF; empty lines
  are dropped; a line longer than `max_line_bytes` is discarded whole, up to its terminator, so a
  babbling or misconfigured device can neither grow memory nor have the tail of an overlong line
  taken for a badge. Bytes of a partial line are kept until the rest arrives.
* `SerialLineLink`: a pyserial port (any `serial_for_url` URL or a device path such as
  `/dev/serial/by-id/...`) read and written a line at a time, reopened with back-off after the
  device disappears (USB unplug). `generation` counts successful opens, so a protocol on top (the
  bridge handshake) knows when it has to start over.

Bytes written to a port before it is opened are lost (pyserial flushes the input on open), which
is why the bridge handshakes after each open instead of waiting for a greeting.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import serial

from hardware.readers.reconnect import Reconnector

__all__ = ["LineFramer", "SerialLineLink", "SerialPort", "open_serial_port"]

logger = logging.getLogger(__name__)

_TERMINATORS = b"\r\n"


class SerialPort(Protocol):
    """The part of a pyserial port the link uses (`serial.Serial` and the URL handlers)."""

    @property
    def timeout(self) -> float | None: ...
    @timeout.setter
    def timeout(self, value: float | None) -> None: ...
    @property
    def in_waiting(self) -> int: ...
    def read(self, size: int = 1) -> bytes: ...
    def write(self, b: bytes, /) -> int | None: ...
    def flush(self) -> None: ...
    def cancel_read(self) -> None: ...
    def close(self) -> None: ...


class LineFramer:
    """Splits a byte stream into lines, with a bound on the line length."""

    def __init__(self, max_line_bytes: int = 128) -> None:
        if max_line_bytes <= 0:
            raise ValueError("max_line_bytes must be positive")
        self.max_line_bytes = max_line_bytes
        self._buffer = bytearray()
        self._discarding = False
        self.overlong_lines = 0  # how many lines were dropped for length (for tests and health)

    @property
    def pending(self) -> bool:
        """True while part of a line has arrived and not yet its terminator."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Take some bytes; return the complete, non-empty lines they finished, in order."""
        lines: list[bytes] = []
        start = 0
        for index, byte in enumerate(data):
            if byte in _TERMINATORS:
                self._take(data[start:index])
                if self._discarding:
                    self._discarding = False
                elif self._buffer:
                    lines.append(bytes(self._buffer))
                self._buffer.clear()
                start = index + 1
        self._take(data[start:])
        return lines

    def reset(self) -> None:
        """Forget a partial line (the port was reopened: the rest of it will never come)."""
        self._buffer.clear()
        self._discarding = False

    def _take(self, chunk: bytes) -> None:
        if self._discarding or not chunk:
            return
        if len(self._buffer) + len(chunk) > self.max_line_bytes:
            self._buffer.clear()
            self._discarding = True
            self.overlong_lines += 1
            return
        self._buffer += chunk


def open_serial_port(url_or_path: str, baudrate: int) -> SerialPort:
    """Open a port by pyserial URL (`loop://`, `rfc2217://...`) or device path, exclusively.

    Raises:
        OSError: the device is not there or cannot be opened (`serial.SerialException` is one).
        ValueError: the URL or the settings are invalid.
    """
    # exclusive: a second process (a stray getty, ModemManager probing) must not share the port.
    return serial.serial_for_url(url_or_path, baudrate=baudrate, timeout=0, exclusive=True)


class SerialLineLink:
    """A serial port read and written as lines, reopened after it disappears.

    One thread reads; any thread may write (writes are serialised) or close.

    Args:
        url_or_path: a pyserial URL or device path (prefer `/dev/serial/by-id/...`).
        baudrate: ignored by CDC-ACM devices, used by real UARTs.
        max_line_bytes: longer lines are dropped.
        opener: opens the port; defaults to `open_serial_port` (tests may pass another).
        reopen_min_s, reopen_max_s: the back-off between attempts to reopen a lost port.
    """

    def __init__(
        self,
        url_or_path: str,
        baudrate: int = 9600,
        *,
        max_line_bytes: int = 128,
        opener: Callable[[], SerialPort] | None = None,
        reopen_min_s: float = 0.25,
        reopen_max_s: float = 5.0,
    ) -> None:
        if not url_or_path.strip():
            raise ValueError("the serial port must be named")
        if baudrate <= 0:
            raise ValueError("baudrate must be positive")
        self.framer = LineFramer(max_line_bytes)
        self.generation = 0
        self._lines: list[bytes] = []
        self._write_lock = threading.Lock()
        open_port = (
            opener if opener is not None else lambda: open_serial_port(url_or_path, baudrate)
        )
        self._link: Reconnector[SerialPort] = Reconnector(
            f"serial reader {url_or_path!r}",
            lambda: self._opened(open_port()),
            _close_port,
            min_s=reopen_min_s,
            max_s=reopen_max_s,
        )
        self._link.try_open()

    @property
    def connected(self) -> bool:
        """True while the port is open."""
        return self._link.connected

    def port(self, timeout_s: float | None = None) -> SerialPort:
        """The open port, reopening it within `timeout_s` if the back-off allows.

        Raises:
            ReaderDisconnectedError: the device is missing.
        """
        return self._link.device(timeout_s)

    def read_line(self, timeout_s: float | None = None) -> bytes | None:
        """The next complete line (terminator removed), or None after `timeout_s`.

        Raises:
            ReaderDisconnectedError: the device is missing or was just unplugged.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._lines:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            port = self._link.device(remaining)
            if deadline is not None:
                remaining = max(0.0, deadline - time.monotonic())
            try:
                if port.timeout != remaining:
                    port.timeout = remaining
                data = port.read(1)
                if data:
                    # The rest of what has arrived, without waiting again.
                    waiting = port.in_waiting
                    if waiting:
                        port.timeout = 0
                        data += port.read(waiting)
            except (OSError, ValueError, TypeError) as exc:
                # SerialException is an OSError; pyserial raises TypeError / ValueError from
                # ioctls on a port closed under it. exc's text names the port, not the data.
                self.framer.reset()
                raise self._link.lost(exc) from exc
            self._lines.extend(self.framer.feed(data))
            if not self._lines and deadline is not None and time.monotonic() >= deadline:
                return None
        return self._lines.pop(0)

    def write_line(self, line: bytes) -> None:
        """Send one line; the caller gives it without its terminator.

        Raises:
            ReaderDisconnectedError: the device is missing or the write failed.
        """
        port = self._link.device(0)
        with self._write_lock:
            try:
                port.write(line + b"\n")
                port.flush()
            except (OSError, ValueError, TypeError) as exc:
                raise self._link.lost(exc) from exc

    def close(self) -> None:
        """Close the port and stop reopening it."""
        self._link.close()

    def _opened(self, port: SerialPort) -> SerialPort:
        self.framer.reset()
        self._lines.clear()
        self.generation += 1
        return port


def _close_port(port: SerialPort) -> None:
    # Wake a read blocked in another thread before the descriptor goes away under it.
    with contextlib.suppress(OSError, ValueError, TypeError):
        port.cancel_read()
    port.close()
