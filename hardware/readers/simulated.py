"""A simulated card reader, driven by tests, the demo and the keyboard."""

from __future__ import annotations

import queue

from hardware.readers.base import Credential


class SimulatedCardReader:
    """A `CardReader` whose badges are presented by calling `present()`."""

    def __init__(self) -> None:
        self._taps: queue.Queue[Credential] = queue.Queue()
        self.closed = False

    def present(self, credential: Credential) -> None:
        """Tap a badge on the reader."""
        self._taps.put(credential)

    def read(self, timeout_s: float | None = None) -> Credential | None:
        """Return the next tapped badge, or None after `timeout_s`."""
        try:
            return self._taps.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Nothing to release; remember that we were closed."""
        self.closed = True
