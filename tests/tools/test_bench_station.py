"""`pullprint bench-station` runs end to end (figures printed; none is asserted: see STYLE)."""

from __future__ import annotations

import json

import pytest

from tools.cli import main


def test_bench_station_measures_a_real_station_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench-station", "--taps", "2", "--idle-s", "0.5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {
        "start_to_ready_s",
        "idle_rss_mb",
        "idle_uss_mb",
        "idle_cpu_percent",
        "idle_window_s",
        "threads",
        "bytecode_precompiled",
        "taps",
        "tap_to_list_ms",
    }
    # Shapes, not speeds: the process existed, used memory, and every tap reached the list.
    assert result["taps"] == 2 and result["idle_rss_mb"] > 0 and result["threads"] >= 4
    assert result["tap_to_list_ms"]["p50"] > 0
