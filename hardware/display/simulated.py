"""A simulated display that keeps every frame and can save each as PNG."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from PIL import Image

from hardware.display.base import DisplayMode
from hardware.errors import DisplayError

# What a display built from a station's config keeps: the frame on screen and a few before it.
# Nothing in a station's process reads older ones (tests that do build their own display), and
# at 320x240 RGB the default 256 would keep up to 59 MB alive in a long-running station.
CONFIGURED_KEEP_FRAMES = 4


class SimulatedDisplay:
    """A `Display` that records frames (and saves `frame-NNN-<label>.png` when `out_dir` is set)."""

    def __init__(
        self,
        width: int = 320,
        height: int = 240,
        mode: DisplayMode = "RGB",
        out_dir: Path | None = None,
        keep_frames: int | None = 256,
    ) -> None:
        """`keep_frames` bounds the history (None: keep all), so long runs do not grow memory."""
        self._size = (width, height)
        self._mode: DisplayMode = mode
        self.out_dir = out_dir
        self.frames: deque[Image.Image] = deque(maxlen=keep_frames)
        self.saved: list[Path] = []
        self.shown = 0  # frames shown in all, kept or not
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)

    @property
    def size(self) -> tuple[int, int]:
        """Width and height in pixels."""
        return self._size

    @property
    def mode(self) -> DisplayMode:
        """Pillow image mode."""
        return self._mode

    def show(self, image: Image.Image, label: str = "frame") -> None:
        """Record a frame; refuse one of the wrong size, as a real panel driver would."""
        if image.size != self._size:
            raise DisplayError(f"frame is {image.size}, display is {self._size}")
        frame = image.convert(self._mode) if image.mode != self._mode else image.copy()
        self.frames.append(frame)
        self.shown += 1
        if self.out_dir is not None:
            safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in label)[:40]
            path = self.out_dir / f"frame-{self.shown:03d}-{safe}.png"
            frame.save(path)
            self.saved.append(path)

    def close(self) -> None:
        """Nothing to release."""
