"""`pullprint bench-sweep` on a small loopback range: each served printer answers on its own
address with its own recording (snmpsim's per-endpoint selection, `tools.snmpsim_responder`), so
the sweep finds every one as a distinct device. Figures are printed, never asserted."""

from __future__ import annotations

import json

import pytest

from tools.bench_sweep import printer_hosts
from tools.cli import main


def test_printers_are_spread_over_the_range_and_skip_127_0_0_1() -> None:
    hosts = printer_hosts(3, "127.0.0.0/29")
    assert hosts == ["127.0.0.2", "127.0.0.3", "127.0.0.5"]
    assert len(set(printer_hosts(253))) == 253
    with pytest.raises(ValueError, match="between 1 and 5"):
        printer_hosts(6, "127.0.0.0/29")


def test_small_sweep_finds_each_served_printer(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench-sweep", "--range", "127.0.0.0/29", "--printers", "3", "--timeout", "0.3"]
    assert main([*args, "--no-unlimited", "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)["sweeps"]
    assert (run["hosts"], run["printers_served"], run["answered"], run["devices"]) == (6, 3, 3, 3)
    assert main(["bench-sweep", "--range", "10.0.0.0/29"]) == 2  # loopback only
