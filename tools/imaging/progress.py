"""A one-line progress bar for flashing: percent, bytes, rate and time left, redrawn in place.

Drawn on a text stream (stderr) at most every `interval_s`, so a fast copy of small chunks does not
spend its time printing. Work counts both writing and reading back; the rate shown is the write
rate, the figure people compare with their card's rating.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

_MIB = 1 << 20


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """Shows how far a flash has got; call `update` often, `finish` once."""

    def __init__(
        self,
        stream: TextIO,
        total_bytes: int,
        *,
        width: int = 24,
        interval_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._total = max(total_bytes, 1)
        self._width = width
        self._interval_s = interval_s
        self._clock = clock
        self._started = clock()
        self._drawn_at = float("-inf")
        self._written = 0
        self._verified = 0

    def line(self) -> str:
        """The current line, without the carriage return."""
        elapsed = max(self._clock() - self._started, 1e-6)
        # Writing and reading back each count as half of the work.
        fraction = min((self._written + self._verified) / (2 * self._total), 1.0)
        filled = int(fraction * self._width)
        bar = "#" * filled + "-" * (self._width - filled)
        rate = self._written / elapsed / _MIB
        left = elapsed * (1 - fraction) / fraction if fraction > 0 else None
        return (
            f"[{bar}] {fraction * 100:3.0f}%  "
            f"{self._written / _MIB:.1f}/{self._total / _MIB:.1f} MiB written, "
            f"{self._verified / _MIB:.1f} verified  {rate:.1f} MiB/s  "
            f"{_clock(left) + ' left' if left is not None else '--:-- left'}"
        )

    def update(self, written_bytes: int, verified_bytes: int) -> None:
        """Record progress; redraw if the last drawing is old enough."""
        self._written, self._verified = written_bytes, verified_bytes
        now = self._clock()
        if now - self._drawn_at >= self._interval_s:
            self._drawn_at = now
            self._stream.write("\r" + self.line() + "\x1b[K")  # erase what a longer line left
            self._stream.flush()

    def finish(self) -> None:
        """Draw the final state and end the line, so later messages start on a fresh one."""
        self._stream.write("\r" + self.line() + "\x1b[K\n")
        self._stream.flush()
