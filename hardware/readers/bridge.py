"""The host side of our reader bridge: a `CardReader` speaking `bridge_protocol` over serial.

Built on `SerialLineLink` (bounded line framing, reopen after unplug). After every (re)open the
reader sends HELLO and waits up to `handshake_timeout_s` for READY, refusing a version it does
not speak; only then are CARD lines taken. LED and beep commands may be sent from any thread.

What is logged: protocol faults (bad checksum, unknown verb, a bridge ERR), never a card's bits.

An unusable tap is reported by `read()` as `CardUnreadableError`: a CARD line that fails its
checksum or is malformed (reason "garbled"), or a card the formats refuse (random UID, bad parity,
a technology we do not know). Other damaged lines (a PONG, noise without CARD in it) are only
logged: they are not taps, and a screen saying "card not read" with no one at the reader would
mislead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from hardware.readers.base import Credential
from hardware.readers.bridge_protocol import (
    SUPPORTED_VERSIONS,
    Beep,
    BridgeMessage,
    Card,
    Error,
    Hello,
    Led,
    Ping,
    Pong,
    Ready,
    decode_line,
    encode_line,
)
from hardware.readers.errors import (
    BridgeProtocolError,
    BridgeVersionError,
    CardFormatError,
    CardUnreadableError,
    ReaderDisconnectedError,
)
from hardware.readers.serial_link import SerialLineLink, SerialPort

__all__ = ["BridgeCardReader"]

logger = logging.getLogger(__name__)


class BridgeCardReader:
    """A `CardReader` for the PullPrint reader bridge (RP2040 + MFRC522/PN532) on USB serial.

    Args:
        url_or_path: the bridge's port (prefer `/dev/serial/by-id/usb-PullPrint_...-if00`) or a
            pyserial URL.
        baudrate: ignored by USB CDC, used if the bridge sits on a real UART.
        handshake_timeout_s: how long to wait for READY after sending HELLO.
        opener: opens the port (tests pass one); defaults to pyserial's `serial_for_url`.
        reopen_min_s, reopen_max_s: the back-off between attempts to reopen a lost port.
    """

    def __init__(
        self,
        url_or_path: str,
        baudrate: int = 115200,
        *,
        handshake_timeout_s: float = 1.0,
        opener: Callable[[], SerialPort] | None = None,
        reopen_min_s: float = 0.25,
        reopen_max_s: float = 5.0,
    ) -> None:
        if handshake_timeout_s <= 0:
            raise ValueError("handshake_timeout_s must be positive")
        self.handshake_timeout_s = handshake_timeout_s
        self.firmware: str | None = None  # the bridge's firmware id, once it answered
        self._ready_generation = 0  # link generation the handshake succeeded on
        self._pongs: set[int] = set()
        self._pong_arrived = threading.Condition()
        self.link = SerialLineLink(
            url_or_path,
            baudrate,
            max_line_bytes=256,  # room to see (and reject) a too-long line rather than lose sync
            opener=opener,
            reopen_min_s=reopen_min_s,
            reopen_max_s=reopen_max_s,
        )

    @property
    def ready(self) -> bool:
        """True once the bridge answered the handshake on the port as it is now open."""
        return self.link.connected and self._ready_generation == self.link.generation

    def read(self, timeout_s: float | None = None) -> Credential | None:
        """Wait up to `timeout_s` (None: forever) for a badge; None if none came in time.

        A (re)connect adds up to `handshake_timeout_s` to the wait.

        Raises:
            CardUnreadableError: a card was tapped and its CARD line or its bits are unusable.
            ReaderDisconnectedError: the bridge is unplugged (it is reopened with back-off).
            BridgeVersionError: the bridge speaks a protocol version we do not.
            BridgeProtocolError: the bridge did not answer the handshake.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            self.link.port(remaining)
            if not self.ready:
                self._handshake()
                continue
            line = self.link.read_line(remaining)
            if line is None:
                return None
            credential = self._receive(line)
            if credential is not None:
                return credential

    def set_led(self, color: str, duration_ms: int = 0) -> None:
        """Set the bridge's LED ("off", "red", "green", "blue", "amber", "white")."""
        self._send(Led(color, duration_ms))

    def beep(self, frequency_hz: int = 2000, duration_ms: int = 100) -> None:
        """Sound the bridge's buzzer."""
        self._send(Beep(frequency_hz, duration_ms))

    def ping(self, token: int, timeout_s: float = 1.0) -> bool:
        """Send PING; True if the PONG came back within `timeout_s`.

        The PONG is taken by whichever thread is in `read()`, so this only answers while
        something is reading (the station's reader thread always is).
        """
        self._send(Ping(token))
        with self._pong_arrived:
            arrived = self._pong_arrived.wait_for(lambda: token in self._pongs, timeout_s)
            self._pongs.discard(token)
            return arrived

    def close(self) -> None:
        """Close the port."""
        self.link.close()

    def _send(self, message: BridgeMessage) -> None:
        if not self.ready:
            raise ReaderDisconnectedError("the reader bridge is not connected")
        self.link.write_line(encode_line(message))

    def _handshake(self) -> None:
        generation = self.link.generation
        self.link.write_line(encode_line(Hello(SUPPORTED_VERSIONS)))
        deadline = time.monotonic() + self.handshake_timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            line = self.link.read_line(remaining)
            if line is None:
                break
            try:
                message = decode_line(line)
            except BridgeProtocolError as exc:
                # A reply in another version's framing is the bridge telling us it differs.
                if isinstance(exc, BridgeVersionError):
                    raise
                logger.debug("reader bridge: line ignored during the handshake: %s", exc)
                continue
            if isinstance(message, Ready):
                if message.version not in SUPPORTED_VERSIONS:
                    raise BridgeVersionError(
                        f"the reader bridge chose protocol version {message.version}; "
                        f"this host speaks {', '.join(map(str, SUPPORTED_VERSIONS))}"
                    )
                self.firmware = message.firmware
                self._ready_generation = generation
                logger.info(
                    "reader bridge ready: %s, protocol %d", message.firmware, message.version
                )
                return
            if isinstance(message, Error) and message.reason == "version":
                raise BridgeVersionError("the reader bridge speaks none of our protocol versions")
            # Anything else (a card tapped as we connected) belongs to the previous session.
            logger.debug("reader bridge: %s ignored before READY", type(message).__name__)
        raise BridgeProtocolError("the reader bridge did not answer the version handshake")

    def _receive(self, line: bytes) -> Credential | None:
        try:
            message = decode_line(line)
        except BridgeVersionError:
            self._ready_generation = 0  # handshake again: the bridge may have been replaced
            raise
        except BridgeProtocolError as exc:
            logger.warning("reader bridge: line dropped: %s", exc)
            if _is_card_line(line):
                raise CardUnreadableError("a card line from the reader bridge was damaged") from exc
            return None
        match message:
            case Card():
                try:
                    return message.to_credential()
                except CardFormatError as exc:
                    logger.warning("reader bridge: badge dropped: %s", exc)
                    raise
            case Pong(token):
                with self._pong_arrived:
                    self._pongs.add(token)
                    self._pong_arrived.notify_all()
            case Ready(version, firmware) if version in SUPPORTED_VERSIONS:
                self.firmware = firmware  # the bridge restarted without leaving the bus
            case Error(reason):
                logger.warning("reader bridge refused a command: %s", reason)
            case _:
                logger.warning("reader bridge sent an unexpected %s", type(message).__name__)
        return None


def _is_card_line(line: bytes) -> bool:
    """Whether a line that failed to decode still reads as a CARD line (verb intact, e.g. a
    corrupted digit or checksum): that is a tap gone wrong, not noise."""
    tokens = line.split(b" ", 2)
    return len(tokens) >= 2 and tokens[0].startswith(b"PP") and tokens[1] == b"CARD"
