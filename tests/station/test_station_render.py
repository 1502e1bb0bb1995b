"""Screens as pixels: every screen renders at each display size, and matches its golden PNG.

Regenerate the golden files after an intended change with:
    PULLPRINT_UPDATE_GOLDEN=1 .venv/bin/pytest tests/station/test_station_render.py
and look at them before committing.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from station.models import JobSummary
from station.render import render
from station.screens import (
    DeliveringScreen,
    DeliveryItem,
    DoneScreen,
    ErrorScreen,
    IdleScreen,
    JobListScreen,
    NoJobsScreen,
    OfflineScreen,
    ReadingScreen,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("PULLPRINT_UPDATE_GOLDEN") == "1"

JOBS = tuple(
    JobSummary(f"j{i}", name, datetime(2026, 5, 9, 9 + i, 5), size, pages)
    for i, (name, size, pages) in enumerate(
        [
            ("Quarterly report final v3.pdf", 1_234_567, 12),
            ("Boarding pass", 80_000, 1),
            ("notes.txt", 3_000, None),
            ("Thesis chapter 2 — draft with comments", 5_500_000, 48),
            ("Invoice 2026-117", 40_000, 2),
            ("Menu", 9_000, 1),
        ]
    )
)

SCREENS = {
    "idle": IdleScreen("Floor 2 East"),
    "reading": ReadingScreen(),
    "jobs": JobListScreen("Ana Lima", JOBS, 3, frozenset({"j1", "j3"})),
    "jobs-top": JobListScreen("Ana Lima", JOBS[:2], 0, frozenset()),
    "delivering": DeliveringScreen(
        (
            DeliveryItem("Quarterly report final v3.pdf", "printed", 100),
            DeliveryItem("Boarding pass", "sending", 42),
            DeliveryItem("notes.txt"),
        )
    ),
    "done": DoneScreen(2),
    "error": ErrorScreen("Not printed", "Out of paper — your job is still held"),
    "error-long": ErrorScreen("Something went wrong", "word " * 80),
    "no-jobs": NoJobsScreen("Ana Lima"),
    "offline": OfflineScreen(),
}
DISPLAYS = [((128, 64), "1"), ((320, 240), "RGB"), ((240, 240), "RGB")]


@pytest.mark.parametrize(("size", "mode"), DISPLAYS, ids=str)
@pytest.mark.parametrize("name", SCREENS)
def test_render_matches_golden(name, size, mode):
    image = render(SCREENS[name], size, mode)
    assert image.size == size
    assert image.mode == mode
    assert image.convert("L").getextrema()[1] > 0, "blank frame"
    assert len(image.getcolors(maxcolors=1 << 16) or []) > 1, "single-colour frame"
    path = GOLDEN / f"{name}-{size[0]}x{size[1]}-{mode}.png"
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
