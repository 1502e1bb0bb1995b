"""`pullprint bench-throughput` with tiny numbers: a real cloud process, real signed requests."""

from __future__ import annotations

import json

import pytest

from tools.cli import main


def test_bench_throughput_reports_every_rate(capsys: pytest.CaptureFixture[str]) -> None:
    # Each authentication checks that the list is the badge owner's 2 jobs (a client process
    # that finds otherwise exits non-zero, and the bench raises); each submission must get its
    # 201. Two cloud workers: their CPU is counted with the parent's.
    argv = ["bench-throughput", "--seconds", "0.5", "--clients", "2", "--seed-users", "20"]
    argv += ["--seed-jobs", "50", "--own-jobs", "2", "--submit-kb", "4", "--workers", "2"]
    argv += ["--rounds", "2", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["seeded_users"] == 20  # counted before the bench adds its own two users
    assert result["seeded_held_jobs"] == 50
    assert result["workers"] == 2
    for phase in ("auth_and_list", "tap_cycle", "submit"):
        figures = result[phase]
        assert figures["clients"] == 2
        assert figures["requests"] > 0 and figures["per_s"] > 0
        assert figures["p99_ms"] >= figures["p50_ms"] > 0
        assert figures["cloud_cpu_ms_per_request"] > 0
        assert figures["client_cpu_ms_per_request"] > 0
        # Two rounds, the lower one reported (the median of an even count).
        assert len(figures["rounds_per_s"]) == 2
        assert figures["per_s"] == min(figures["rounds_per_s"])
