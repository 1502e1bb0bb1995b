"""Screens as pixels: every screen renders at each display size, and matches its golden PNG.

Regenerate the golden files after an intended change with:
    PULLPRINT_UPDATE_GOLDEN=1 .venv/bin/pytest tests/station/test_station_render.py
and look at them before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from station.render import render
from station.samples import SAMPLE_JOBS, sample_screens
from station.screens import (
    JobListScreen,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("PULLPRINT_UPDATE_GOLDEN") == "1"

SCREENS = sample_screens()
JOBS = SAMPLE_JOBS
DISPLAYS = [((128, 64), "1"), ((320, 240), "RGB"), ((240, 240), "RGB")]


@pytest.mark.parametrize("high_contrast", [False, True], ids=["standard", "high-contrast"])
@pytest.mark.parametrize(("size", "mode"), DISPLAYS, ids=str)
@pytest.mark.parametrize("name", SCREENS)
def test_render_matches_golden(name, size, mode, high_contrast):
    image = render(SCREENS[name], size, mode, high_contrast=high_contrast)
    assert image.size == size
    assert image.mode == mode
    assert image.convert("L").getextrema()[1] > 0, "blank frame"
    assert len(image.getcolors(maxcolors=1 << 16) or []) > 1, "single-colour frame"
    suffix = "-hc" if high_contrast else ""
    path = GOLDEN / f"{name}-{size[0]}x{size[1]}-{mode}{suffix}.png"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        image.save(path)
        return
    assert path.exists(), f"no golden file {path.name}; run with PULLPRINT_UPDATE_GOLDEN=1"
    with Image.open(path) as golden:
        diff = ImageChops.difference(image.convert("RGB"), golden.convert("RGB")).getbbox()
    assert diff is None, f"{path.name} differs in {diff}; regenerate if intended"


def test_job_list_scrolls_to_keep_the_cursor_visible():
    first = render(JobListScreen("Ana", JOBS, 0), (128, 64), "1")
    last = render(JobListScreen("Ana", JOBS, len(JOBS) - 1), (128, 64), "1")
    # 4 rows fit on a 64 px display: the highlight bar (a white row) must be drawn in both.
    for image in (first, last):
        rows = [image.crop((0, y, 128, y + 1)).getextrema()[0] for y in range(14, 64)]
        assert 1 in rows, "no highlighted row on screen"


def test_high_contrast_uses_large_type_and_no_accent_colours():
    standard = render(SCREENS["error"], (320, 240), "RGB")
    large = render(SCREENS["error"], (320, 240), "RGB", high_contrast=True)
    colours = {c for _, c in large.getcolors(maxcolors=1 << 16) or []}
    assert (190, 30, 45) in {c for _, c in standard.getcolors(maxcolors=1 << 16) or []}
    assert (190, 30, 45) not in colours  # meaning is not carried by red alone

    # Large type: the title bar (first white row block) is taller than the standard one.
    def bar_height(image):
        column = [image.getpixel((2, y)) for y in range(image.height)]
        return next(y for y, px in enumerate(column) if px != column[0])

    assert bar_height(large) > bar_height(standard) * 1.3


def test_pin_screen_never_shows_digits():
    screen = SCREENS["pin"]
    assert not any(ch.isdigit() for ch in screen.lines()[1])


def test_every_screen_has_text_lines_and_a_label():
    for screen in SCREENS.values():
        assert screen.lines()
        assert all(isinstance(line, str) for line in screen.lines())
        assert screen.label.replace("-", "").isalpha()


def test_job_list_lines_mark_cursor_and_selection():
    lines = SCREENS["jobs"].lines()
    assert lines[0] == "Ana Lima: 6 jobs"
    assert lines[4].startswith("> [x] Thesis")
    assert lines[2].startswith("  [x] Boarding pass")
    assert "12 p" in lines[1]
    assert "3 KB" in lines[3]
