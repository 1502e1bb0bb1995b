"""A fake evdev input device and key-stroke streams, for the wedge reader, keypad and touch tests.

CI machines have no /dev/uinput, so no real input device can be made. `FakeInputDevice` exposes
the evdev methods the device layers use, with a real pipe behind `fileno()`, so their select()
runs for real and wakes when events are sent. An unplugged device fails its reads with ENODEV,
as the kernel does, and so does releasing its grab.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

from evdev import ecodes

from hardware.readers.wedge_decoder import KeyEvent


def key_stroke(code: int, down_s: float = 0.0, up_s: float | None = None) -> list[KeyEvent]:
    """What a keyboard sends for one key: scan code, key down, sync, key up, sync."""
    up = down_s if up_s is None else up_s
    return [
        KeyEvent(ecodes.EV_MSC, ecodes.MSC_SCAN, 0x70000 + code, down_s),
        KeyEvent(ecodes.EV_KEY, code, 1, down_s),
        KeyEvent(ecodes.EV_SYN, ecodes.SYN_REPORT, 0, down_s),
        KeyEvent(ecodes.EV_KEY, code, 0, up),
        KeyEvent(ecodes.EV_SYN, ecodes.SYN_REPORT, 0, up),
    ]


class FakeEvent:
    """Quacks like evdev.InputEvent."""

    def __init__(self, event: KeyEvent) -> None:
        self.type, self.code, self.value = event.type, event.code, event.value
        self._time_s = event.time_s

    def timestamp(self) -> float:
        return self._time_s


class AbsInfo:
    """The range of one absolute axis, as evdev reports it."""

    def __init__(self, lo: int, hi: int) -> None:
        self.min, self.max = lo, hi


class FakeInputDevice:
    """Quacks like evdev.InputDevice; fileno() is a real pipe, readable when events wait.

    Args:
        axes: absolute axes (code -> (min, max)) that `capabilities()` reports (touch panels).
    """

    def __init__(self, axes: dict[int, tuple[int, int]] | None = None) -> None:
        self._r, self._w = os.pipe()
        self._pending: list[KeyEvent] = []
        self._lock = threading.Lock()
        self._axes = axes or {}
        self.grabbed = False
        self.closed = False
        self.unplugged = False

    def send(self, events: list[KeyEvent]) -> None:
        """Queue events for the next read, and wake the reader's select()."""
        with self._lock:
            self._pending.extend(events)
        os.write(self._w, b"x")

    def unplug(self) -> None:
        """The device is gone: the next read fails (and wakes the reader to find out)."""
        self.unplugged = True
        os.write(self._w, b"x")

    def fileno(self) -> int:
        return self._r

    def capabilities(self, absinfo: bool = True) -> dict[int, list[object]]:
        return {ecodes.EV_ABS: [(code, AbsInfo(*r)) for code, r in self._axes.items()]}

    def read(self) -> Iterator[FakeEvent]:
        if self.unplugged:
            raise OSError(19, "No such device")
        os.read(self._r, 4096)
        with self._lock:
            events, self._pending = self._pending, []
        if not events:
            raise BlockingIOError
        for event in events:
            yield FakeEvent(event)

    @contextlib.contextmanager
    def grab_context(self) -> Iterator[None]:
        self.grabbed = True
        try:
            yield
        finally:
            if self.unplugged:
                raise OSError(19, "No such device")
            self.grabbed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._r)
            os.close(self._w)
