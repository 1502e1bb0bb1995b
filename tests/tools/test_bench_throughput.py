"""`pullprint bench-throughput` with tiny numbers: a real cloud process, real signed requests."""

from __future__ import annotations

import json

import pytest

from tools.cli import main


def test_bench_throughput_reports_both_rates(capsys: pytest.CaptureFixture[str]) -> None:
    # Each authentication checks that the list is the badge owner's 2 jobs (it raises if not);
    # each submission must get its 201.
    argv = ["bench-throughput", "--seconds", "0.5", "--threads", "2", "--seed-users", "20"]
    argv += ["--seed-jobs", "50", "--own-jobs", "2", "--submit-kb", "4", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["seeded_users"] == 20  # counted before the bench adds its own two users
    assert result["seeded_held_jobs"] == 50
    for phase in ("auth_and_list", "submit"):
        figures = result[phase]
        assert figures["threads"] == 2
        assert figures["requests"] > 0 and figures["per_s"] > 0
        assert figures["p99_ms"] >= figures["p50_ms"] > 0
        assert figures["cloud_cpu_ms_per_request"] > 0
