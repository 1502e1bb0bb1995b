"""`pullprint bench-ipp` with tiny numbers: figures come out, both peers really hold the jobs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tools.bench_ipp import small_pdf
from tools.cli import main


@pytest.fixture(autouse=True, scope="module")
def _tools_installed() -> None:
    # Missing tools must fail, not skip (the test command installs cups and cups-ipp-utils).
    missing = [tool for tool in ("cupsd", "lpadmin", "lpstat", "ipptool") if not shutil.which(tool)]
    assert not missing, f"missing {missing}: apt-get install cups cups-ipp-utils"


def _bench_dirs() -> set[Path]:
    return set(Path("/tmp").glob("pullprint-bench-ipp-*"))


def test_small_pdf_is_about_100_kb() -> None:
    document = small_pdf()
    assert document.startswith(b"%PDF-1.4") and document.rstrip().endswith(b"%%EOF")
    assert 100_000 <= len(document) < 130_000


def test_bench_ipp_json_reports_both_peers(capsys: pytest.CaptureFixture[str]) -> None:
    before = _bench_dirs()
    assert main(["bench-ipp", "--jobs", "5", "--big-mb", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)

    for peer in ("ours", "cupsd"):
        figures = result[peer]
        assert figures["jobs"] == 5
        assert figures["jobs_per_s"] > 0 and figures["big_mb_per_s"] > 0
        assert figures["big_bytes"] == 2 * 1024 * 1024
    assert result["jobs_ratio"] > 0 and result["mb_ratio"] > 0
    # Every job of both files is still held: 5 small ones and the big one, on each side
    # (cupsd: `lpstat -o hold`; ours: the user's held jobs through the REST API).
    assert result["cupsd_held"] == 6
    assert result["ours_held"] == 6
    assert _bench_dirs() <= before, "temp dirs left behind"


def test_bench_ipp_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench-ipp", "--jobs", "2", "--big-mb", "1"]) == 0
    out = capsys.readouterr().out
    assert "PullPrint" in out and "cupsd" in out and "MB/s" in out and "j/s" in out
