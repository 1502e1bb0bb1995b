"""`pullprint bench-release` with tiny numbers: both sides really print every job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.cli import main


def _leftovers() -> set[Path]:
    return set(Path("/tmp").glob("pp-bench-cupsd-*"))


def test_bench_release_reports_both_sides(capsys: pytest.CaptureFixture[str]) -> None:
    before = _leftovers()
    # The benchmark itself raises unless the printer received every job from each side.
    assert main(["bench-release", "--jobs", "3", "--kb", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["jobs"] == 3 and result["document_bytes"] >= 8 * 1024
    for side in ("pullprint", "cups"):
        figures = result[side]
        assert figures["jobs"] == 3
        assert figures["submit_per_s"] > 0 and figures["release_per_s"] > 0
    ratio = result["pullprint"]["release_per_s"] / result["cups"]["release_per_s"]
    assert result["ratio_release"] == pytest.approx(ratio, rel=0.05)
    assert _leftovers() == before  # the private cupsd's folder is removed


def test_bench_release_refuses_nonsense(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench-release", "--jobs", "0"]) != 0
    assert "--jobs and --kb must be positive" in capsys.readouterr().err
