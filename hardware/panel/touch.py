"""A touchscreen through evdev as a `ButtonPanel`: taps become names through a `HitMap`.

A reader thread waits on the grabbed device, feeds `TouchDecoder`, and reports each tap that lands
in a region of the hit map as that region's name (and every tap, wherever it lands, to `on_tap`).
The station swaps the hit map when the screen changes (`hit_map` is a plain attribute: reading and
replacing a reference is atomic). An unplugged panel is reopened with back-off; the thread ends at
`close()`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hardware.panel.base import ButtonHandler
from hardware.panel.errors import InputDeviceLostError
from hardware.panel.evdev_input import EV_ABS, EvdevSource, InputDeviceLike, check_device_spec
from hardware.panel.evdev_input import open_input_device as _open
from hardware.panel.touch_decoder import (
    ABS_MT_POSITION_X,
    ABS_MT_POSITION_Y,
    ABS_X,
    ABS_Y,
    HitMap,
    Tap,
    TouchCalibration,
    TouchDecoder,
)

__all__ = ["EvdevTouchPanel", "calibration_from_device"]

logger = logging.getLogger(__name__)

_POLL_S = 0.25  # how often the reader thread checks for close()


def calibration_from_device(
    device: object, *, swap_xy: bool = False, invert_x: bool = False, invert_y: bool = False
) -> TouchCalibration:
    """The axis ranges an evdev touch device reports (MT axes preferred over ABS_X/Y).

    Raises:
        ValueError: the device reports no X/Y axes (it is not a touch panel).
    """
    caps = getattr(device, "capabilities", None)
    ranges: dict[int, tuple[int, int]] = {}
    if callable(caps):
        for code, info in caps(absinfo=True).get(EV_ABS, []):
            ranges[code] = (info.min, info.max)
    for x_code, y_code in ((ABS_MT_POSITION_X, ABS_MT_POSITION_Y), (ABS_X, ABS_Y)):
        if x_code in ranges and y_code in ranges:
            (x_min, x_max), (y_min, y_max) = ranges[x_code], ranges[y_code]
            return TouchCalibration(x_min, x_max, y_min, y_max, swap_xy, invert_x, invert_y)
    raise ValueError("the input device reports no X/Y axes")


class EvdevTouchPanel:
    """A `ButtonPanel` on a touchscreen.

    Args:
        device: the input-device name or a `/dev/input/by-id` / `by-path` link (not eventN).
        display_size: the display's (width, height): taps are reported in its pixels.
        hit_map: the on-screen regions; replace `hit_map` when the screen's layout changes.
        calibration: the axis ranges and mounting; None reads the ranges from the device.
        max_move_px: a touch that moves further than this is a slide, not a tap.
        opener: opens the device; defaults to evdev (tests pass a fake).

    Raises:
        InputDeviceLostError: `calibration` is None and the panel is not there to be asked.
    """

    def __init__(
        self,
        device: str,
        display_size: tuple[int, int],
        hit_map: HitMap,
        *,
        calibration: TouchCalibration | None = None,
        max_move_px: int = 20,
        opener: Callable[[], InputDeviceLike] | None = None,
        reopen_min_s: float = 0.25,
        reopen_max_s: float = 5.0,
    ) -> None:
        check_device_spec(device, "touch panel")
        self.hit_map = hit_map
        self.on_button: ButtonHandler | None = None
        self.on_tap: Callable[[Tap], None] | None = None
        open_device = (
            opener if opener is not None else (lambda: _open(device, "touch panel", EV_ABS))
        )
        self._source = EvdevSource(
            f"touch panel {device!r}",
            open_device,
            reopen_min_s=reopen_min_s,
            reopen_max_s=reopen_max_s,
        )
        if calibration is None:
            calibration = calibration_from_device(self._source.device(timeout_s=0))
        self._decoder = TouchDecoder(calibration, display_size, max_move_px=max_move_px)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="touch-panel", daemon=True)
        self._thread.start()

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the current hit map's regions."""
        return self.hit_map.names

    @property
    def connected(self) -> bool:
        """True while the panel is open and grabbed."""
        return self._source.connected

    def close(self) -> None:
        """Stop the reader thread and release the device."""
        self._stop.set()
        self._thread.join(timeout=2 * _POLL_S + 1)
        self._source.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                events = self._source.events(_POLL_S)
            except InputDeviceLostError:
                self._decoder.reset()
                continue  # the source waits out its back-off on the next call
            for tap in self._decoder.feed_all(events):
                self._report(tap)

    def _report(self, tap: Tap) -> None:
        try:
            if self.on_tap is not None:
                self.on_tap(tap)
            name = self.hit_map.hit(tap)
            handler = self.on_button
            if name is not None and handler is not None:
                handler(name)
        except Exception:
            logger.exception("touch handler failed")  # keep the reader thread alive
