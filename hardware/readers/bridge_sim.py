"""A simulated reader bridge on a pty: the real `BridgeCardReader` and pyserial run against it.

`SimulatedBridge` plays the RP2040 firmware's side of `bridge_protocol` on the master end of a
pseudo-terminal; the slave end (`port_path`) is opened by the station exactly like
`/dev/ttyACM0`. Tests, the demo and the simulated HIL lab drive it:

    bridge = SimulatedBridge()          # answers HELLO with READY
    reader = BridgeCardReader(bridge.port_path)
    bridge.present(mifare_uid(...))     # a tap (after the reader has opened the port)
    bridge.commands                     # LED / BEEP / PING lines the host sent, decoded
    bridge.unplug()                     # the port disappears, as on a USB unplug

Knobs for fault tests: `ready_version` (answer HELLO with another version), `answer_hello`
(stay silent), `send_raw()` (line noise, bad checksums). Linux/POSIX only (ptys).
"""

from __future__ import annotations

import os
import select
import threading
import tty

from hardware.readers.base import Credential
from hardware.readers.bridge_protocol import (
    BridgeMessage,
    Card,
    Error,
    Hello,
    Ping,
    Pong,
    Ready,
    decode_line,
    encode_line,
)
from hardware.readers.errors import BridgeProtocolError
from hardware.readers.serial_link import LineFramer

__all__ = ["SimulatedBridge"]

FIRMWARE_ID = "pullprint-bridge-sim/1"


class SimulatedBridge:
    """The bridge firmware's side of the protocol, on a pty; a thread answers the host."""

    def __init__(self, *, ready_version: int = 1, answer_hello: bool = True) -> None:
        self.ready_version = ready_version
        self.answer_hello = answer_hello
        self.commands: list[BridgeMessage] = []  # what the host sent, decoded, in order
        self.hellos = 0
        self.bad_lines = 0
        self._hello_seen = threading.Event()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._master, self._slave = os.openpty()
        # Raw: no echo, no CR/LF translation, as a USB CDC port behaves.
        tty.setraw(self._slave)
        self.port_path = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._serve, name="simulated-bridge", daemon=True)
        self._thread.start()

    def wait_for_hello(self, timeout_s: float = 5.0) -> bool:
        """Wait until the host has sent HELLO (so its port is open and our bytes reach it)."""
        return self._hello_seen.wait(timeout_s)

    def present(self, credential: Credential) -> None:
        """Tap a badge: send a CARD line."""
        self.send(Card(credential.technology, credential.bit_length, credential.raw))

    def send(self, message: BridgeMessage, version: int = 1) -> None:
        """Send one protocol message to the host."""
        self.send_raw(encode_line(message, version) + b"\n")

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (noise, half lines, bad checksums)."""
        with self._write_lock:
            os.write(self._master, data)

    def unplug(self) -> None:
        """Make the port disappear, as a USB unplug does: the host's reads fail."""
        self.close()

    def close(self) -> None:
        """Stop answering and close both ends of the pty."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=2)
        with self._write_lock:
            os.close(self._master)
            os.close(self._slave)

    def _serve(self) -> None:
        framer = LineFramer(256)
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.02)
            if not ready:
                continue
            try:
                data = os.read(self._master, 1024)
            except OSError:
                continue  # EIO while no one has the slave open: nothing to read
            for line in framer.feed(data):
                self._answer(line)

    def _answer(self, line: bytes) -> None:
        try:
            message = decode_line(line)
        except BridgeProtocolError:
            self.bad_lines += 1
            self.send(Error("checksum"))
            return
        self.commands.append(message)
        if isinstance(message, Hello):
            self.hellos += 1
            self._hello_seen.set()
            if not self.answer_hello:
                return
            if self.ready_version in message.versions:
                self.send(Ready(self.ready_version, FIRMWARE_ID), self.ready_version)
            elif self.ready_version == 1:
                self.send(Error("version"))
            else:
                # A bridge of another version: answers in its own framing.
                self.send(Ready(self.ready_version, FIRMWARE_ID), self.ready_version)
        elif isinstance(message, Ping):
            self.send(Pong(message.token))
