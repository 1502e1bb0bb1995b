"""Touch decoding: Linux input events in, taps in display pixels out; and a hit map for names.

Pure, like the keyboard decoders, and tested on synthetic event streams. It understands the two
ways touchscreens report (linux Documentation/input/multi-touch-protocol.rst, event-codes.rst):

* single-touch (resistive panels, ADS7846): ABS_X / ABS_Y and BTN_TOUCH;
* multi-touch type B (capacitive panels, FT5x06, Goodix): ABS_MT_SLOT, ABS_MT_TRACKING_ID,
  ABS_MT_POSITION_X / _Y, usually with BTN_TOUCH and ABS_X / ABS_Y emulation as well.

Rules:

* only the first finger counts (MT slot 0); once MT positions are seen, the ABS_X/Y emulation is
  ignored;
* positions persist between touches: the kernel sends an axis only when its value changes, so
  a second tap on the same spot carries no position at all;
* the finger is down while BTN_TOUCH is 1, or, on panels that never send BTN_TOUCH, while slot 0
  has a tracking id (>= 0);
* events take effect at each SYN_REPORT, as the kernel groups them; after a SYN_DROPPED the rest of
  the touch is ignored (its events were lost, so no tap is guessed);
* a tap is reported when the finger lifts, at the point where it came down, if it moved no more
  than `max_move_px` display pixels meanwhile (a slide off a button cancels it, as on a phone);
* raw panel coordinates are scaled to the display by `TouchCalibration` (axis ranges, swapped or
  inverted axes for a panel mounted rotated).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from hardware.readers.wedge_decoder import KeyEvent

__all__ = ["HitMap", "Tap", "TouchCalibration", "TouchDecoder"]

EV_SYN, EV_KEY, EV_ABS = 0x00, 0x01, 0x03
SYN_REPORT, SYN_DROPPED = 0, 3
BTN_TOUCH = 0x14A
ABS_X, ABS_Y = 0x00, 0x01
ABS_MT_SLOT, ABS_MT_POSITION_X, ABS_MT_POSITION_Y, ABS_MT_TRACKING_ID = 0x2F, 0x35, 0x36, 0x39


class Tap(NamedTuple):
    """A tap at display pixel (x, y), origin top-left."""

    x: int
    y: int


@dataclass(frozen=True, slots=True)
class TouchCalibration:
    """The panel's raw axis ranges (from its absinfo) and how it is mounted on the display."""

    x_min: int
    x_max: int
    y_min: int
    y_max: int
    swap_xy: bool = False
    invert_x: bool = False
    invert_y: bool = False

    def __post_init__(self) -> None:
        if self.x_max <= self.x_min or self.y_max <= self.y_min:
            raise ValueError("a touch axis needs max > min")

    def to_display(self, raw_x: int, raw_y: int, size: tuple[int, int]) -> Tap:
        """Map raw panel coordinates to a pixel of a display of `size`, clamped to it."""
        fx = min(1.0, max(0.0, (raw_x - self.x_min) / (self.x_max - self.x_min)))
        fy = min(1.0, max(0.0, (raw_y - self.y_min) / (self.y_max - self.y_min)))
        if self.swap_xy:
            fx, fy = fy, fx
        if self.invert_x:
            fx = 1.0 - fx
        if self.invert_y:
            fy = 1.0 - fy
        width, height = size
        return Tap(round(fx * (width - 1)), round(fy * (height - 1)))


class TouchDecoder:
    """Turns touch events into taps; keeps the state of the touch in progress between calls."""

    def __init__(
        self,
        calibration: TouchCalibration,
        display_size: tuple[int, int],
        *,
        max_move_px: int = 20,
    ) -> None:
        if display_size[0] <= 0 or display_size[1] <= 0:
            raise ValueError("the display size must be positive")
        self.calibration = calibration
        self.display_size = display_size
        self.max_move_px = max_move_px
        self._slot = 0
        self._mt_seen = False
        self._btn_seen = False
        self._raw: list[int | None] = [None, None]  # x, y of the first finger, raw units
        self._touching = False  # as of the events since the last SYN_REPORT
        self._down = False  # as of the last SYN_REPORT
        self._start: Tap | None = None
        self._spoilt = False
        self._dropping = False

    def feed(self, event: KeyEvent) -> Tap | None:
        """Take one event; return the tap it completed, if any."""
        if event.type == EV_SYN:
            if event.code == SYN_DROPPED:
                self._dropping = True
                return None
            if event.code == SYN_REPORT:
                if self._dropping:
                    self._dropping = False
                    self._spoilt = self._down or self._touching
                    return None
                return self._commit()
            return None
        if self._dropping:
            return None
        if event.type == EV_KEY and event.code == BTN_TOUCH:
            self._btn_seen = True
            self._touching = event.value != 0
        elif event.type == EV_ABS:
            self._abs(event.code, event.value)
        return None

    def feed_all(self, events: Iterable[KeyEvent]) -> list[Tap]:
        """Take several events; return the taps they completed."""
        return [tap for tap in map(self.feed, events) if tap is not None]

    def reset(self) -> None:
        """Forget the touch in progress (after the device was reopened)."""
        self._slot = 0
        self._raw = [None, None]
        self._touching = self._down = self._spoilt = self._dropping = False
        self._start = None

    def _abs(self, code: int, value: int) -> None:
        if code == ABS_MT_SLOT:
            self._slot = value
        elif code in (ABS_MT_POSITION_X, ABS_MT_POSITION_Y):
            self._mt_seen = True
            if self._slot == 0:
                self._raw[code - ABS_MT_POSITION_X] = value
        elif code == ABS_MT_TRACKING_ID:
            if self._slot == 0 and not self._btn_seen:
                self._touching = value >= 0
        elif code in (ABS_X, ABS_Y) and not self._mt_seen:
            self._raw[code - ABS_X] = value

    def _position(self) -> Tap | None:
        raw_x, raw_y = self._raw
        if raw_x is None or raw_y is None:
            return None
        return self.calibration.to_display(raw_x, raw_y, self.display_size)

    def _commit(self) -> Tap | None:
        was_down, self._down = self._down, self._touching
        here = self._position()
        if self._down and not was_down:
            self._start = here  # None when the panel sends the position a frame later
            return None
        if self._down:
            if self._start is None:
                self._start = here
            elif here is not None and self._moved(self._start, here):
                self._spoilt = True
            return None
        if not was_down:
            return None
        start, spoilt = self._start, self._spoilt
        self._start, self._spoilt = None, False
        if spoilt or start is None or (here is not None and self._moved(start, here)):
            return None
        return start

    def _moved(self, a: Tap, b: Tap) -> bool:
        return max(abs(a.x - b.x), abs(a.y - b.y)) > self.max_move_px


class HitMap:
    """Named rectangles on the screen; a tap hits the first one that contains it.

    A region is (name, (left, top, right, bottom)) in display pixels, right and bottom exclusive
    (Pillow's box convention, so a layout can hand over the boxes it drew).
    """

    def __init__(self, regions: Sequence[tuple[str, tuple[int, int, int, int]]]) -> None:
        for name, (left, top, right, bottom) in regions:
            if not name or right <= left or bottom <= top:
                raise ValueError(f"region {name!r} must be named and have a positive area")
        self.regions = tuple(regions)

    @property
    def names(self) -> tuple[str, ...]:
        """The region names, without repeats, in order."""
        return tuple(dict.fromkeys(name for name, _ in self.regions))

    def hit(self, tap: Tap) -> str | None:
        """The name of the region `tap` falls in, or None (a tap between buttons does nothing)."""
        for name, (left, top, right, bottom) in self.regions:
            if left <= tap.x < right and top <= tap.y < bottom:
                return name
        return None
