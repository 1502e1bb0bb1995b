"""A simulated card reader, driven by tests, the demo and the keyboard."""

from __future__ import annotations

import queue

from hardware.readers.base import Credential
from hardware.readers.errors import CardUnreadableError, UnreadableReason


class SimulatedCardReader:
    """A `CardReader` tapped by calling `present()` (or `present_unreadable()`)."""

    def __init__(self) -> None:
        self._taps: queue.Queue[Credential | UnreadableReason] = queue.Queue()
        self.closed = False

    def present(self, credential: Credential) -> None:
        """Tap a badge on the reader."""
        self._taps.put(credential)

    def present_unreadable(self, reason: UnreadableReason = "garbled") -> None:
        """Tap a card the reader cannot read: `read()` raises CardUnreadableError for it."""
        self._taps.put(reason)

    def read(self, timeout_s: float | None = None) -> Credential | None:
        """Return the next tapped badge, or None after `timeout_s`.

        Raises:
            CardUnreadableError: the next tap was presented with `present_unreadable`.
        """
        try:
            tap = self._taps.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if isinstance(tap, str):
            raise CardUnreadableError("the simulated card could not be read", tap)
        return tap

    def close(self) -> None:
        """Nothing to release; remember that we were closed."""
        self.closed = True
