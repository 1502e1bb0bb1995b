"""SNMP range scans: snmpsim on 127.0.0.1 answers, other loopback addresses stay silent.

Only 127.0.0.0/8 is scanned; `allow_network` is never passed. The concurrency and rate limits are
checked with a stand-in for `read_printer` that records when each host was started.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from hardware.discovery import NetworkNotAllowedError, RangeError, ScanResult
from hardware.discovery import scan as scan_module
from hardware.discovery.scan import RateLimiter, scan
from hardware.snmp.client import SnmpClient, SnmpTarget
from hardware.snmp.errors import SnmpTimeoutError
from hardware.snmp.report import PrinterReport
from tests.support.snmpsim import SHARED_SNMPREC, SnmpSimulator, fixed_recording

HP = "jetdirect_m252dw"


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpSimulator]:
    sim = SnmpSimulator(tmp_path_factory.mktemp("discovery-snmpsim"))
    sim.add_recording(HP, fixed_recording(SHARED_SNMPREC / f"{HP}.snmprec"))
    with sim:
        yield sim


def _run_scan(
    sim: SnmpSimulator,
    ranges: list[str],
    exclude: Sequence[str] = (),
    *,
    community: str,
    rate_per_s: float = 50.0,
) -> list[ScanResult]:
    async def go() -> list[ScanResult]:
        async with SnmpClient(timeout_s=0.3, retries=0) as client:
            return await scan(
                client,
                ranges,
                exclude,
                port=sim.port,
                community=community,
                rate_per_s=rate_per_s,
            )

    return asyncio.run(go())


def test_scan_finds_the_simulator_and_skips_silent_addresses(simulator: SnmpSimulator) -> None:
    started = time.monotonic()
    results = _run_scan(simulator, ["127.0.0.1-4"], community=HP, rate_per_s=0)
    elapsed = time.monotonic() - started
    assert [r.address for r in results] == ["127.0.0.1"]
    report = results[0].report
    assert report.serial_number == "VNB3J99999"
    assert report.model is not None and "M252dw" in report.model
    assert elapsed < 10  # the three silent hosts time out side by side


def test_excluded_addresses_are_not_asked(simulator: SnmpSimulator) -> None:
    assert _run_scan(simulator, ["127.0.0.0/30"], ["127.0.0.1"], community=HP) == []


def test_wrong_community_is_silence(simulator: SnmpSimulator) -> None:
    assert _run_scan(simulator, ["127.0.0.1"], community="no-such-community") == []


def test_non_loopback_ranges_refused_before_sending() -> None:
    class Unused(SnmpClient):
        async def get(self, target, oids):  # type: ignore[no-untyped-def]
            raise AssertionError("nothing may be sent")

    async def go(ranges: list[str]) -> None:
        await scan(Unused(), ranges)

    with pytest.raises(NetworkNotAllowedError):
        asyncio.run(go(["192.168.1.0/24"]))
    with pytest.raises(RangeError):
        asyncio.run(go(["127.0.0.0/8"]))


def _fake_reads(
    monkeypatch: pytest.MonkeyPatch, answering: set[str], delay_s: float
) -> list[tuple[float, int]]:
    """Replace read_printer; returns the list of (start time, in flight) per call."""
    log: list[tuple[float, int]] = []
    in_flight = 0

    async def fake(client: SnmpClient, target: SnmpTarget) -> PrinterReport:
        nonlocal in_flight
        in_flight += 1
        log.append((time.monotonic(), in_flight))
        try:
            await asyncio.sleep(delay_s)
        finally:
            in_flight -= 1
        if target.host not in answering:
            raise SnmpTimeoutError(f"{target}: silent")
        return PrinterReport(serial_number=target.host)

    monkeypatch.setattr(scan_module, "read_printer", fake)
    return log


def test_concurrency_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    log = _fake_reads(monkeypatch, {"127.0.1.5", "127.0.1.200"}, delay_s=0.01)

    async def go() -> list[ScanResult]:
        return await scan(SnmpClient(), ["127.0.1.0/24"], concurrency=4, rate_per_s=0)

    results = asyncio.run(go())
    assert len(log) == 254
    assert max(n for _, n in log) == 4
    assert [r.address for r in results] == ["127.0.1.5", "127.0.1.200"]


def test_rate_is_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    log = _fake_reads(monkeypatch, set(), delay_s=0.0)

    async def go() -> None:
        await scan(SnmpClient(), ["127.0.2.1-11"], concurrency=8, rate_per_s=50)

    asyncio.run(go())
    starts = [t for t, _ in log]
    assert len(starts) == 11
    assert starts[-1] - starts[0] >= 10 / 50 * 0.9


def test_rate_limiter_without_limit_does_not_wait() -> None:
    async def go() -> float:
        limiter = RateLimiter(0)
        started = time.monotonic()
        for _ in range(100):
            await limiter.wait()
        return time.monotonic() - started

    assert asyncio.run(go()) < 0.1


def test_recording_path_exists() -> None:
    assert Path(SHARED_SNMPREC / f"{HP}.snmprec").is_file()
