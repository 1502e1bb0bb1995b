"""The simulated display records frames and writes PNGs."""

from pathlib import Path

import pytest
from PIL import Image, ImageStat

from hardware.display.simulated import SimulatedDisplay
from hardware.errors import DisplayError


def test_frames_are_kept_and_saved(tmp_path: Path) -> None:
    display = SimulatedDisplay(128, 64, "1", out_dir=tmp_path / "frames")
    display.show(Image.new("RGB", (128, 64), "white"), label="idle screen")
    display.show(Image.new("1", (128, 64), 0), label="job/list")
    assert len(display.frames) == 2
    assert all(frame.mode == "1" for frame in display.frames)
    names = [p.name for p in display.saved]
    assert names == ["frame-001-idle-screen.png", "frame-002-job-list.png"]
    with Image.open(display.saved[0]) as saved:
        assert saved.size == (128, 64)
        assert saved.convert("L").getextrema() == (255, 255)


def test_frame_history_is_bounded() -> None:
    display = SimulatedDisplay(16, 8, "1", keep_frames=3)
    for shade in range(5):
        display.show(Image.new("L", (16, 8), shade * 60))
    assert display.shown == 5
    assert len(display.frames) == 3
    # The oldest two were dropped: what is left are the three brightest fills, in order.
    means = [ImageStat.Stat(f.convert("L")).mean[0] for f in display.frames]
    assert means == sorted(means) and means[0] > 0


def test_wrong_size_frame_is_refused() -> None:
    display = SimulatedDisplay(320, 240, "RGB")
    with pytest.raises(DisplayError, match="display is"):
        display.show(Image.new("RGB", (240, 240)))
    assert not display.frames
