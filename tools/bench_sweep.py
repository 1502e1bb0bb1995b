"""`pullprint bench-sweep`: a /24 SNMP sweep on loopback, with the scanner's own limits.

snmpsim serves the shared printer recordings (`../shared/data/snmprec`, repaired in a copy), each
on its own loopback address spread over 127.0.0.0/24, all under one community, as printers sit
on an office network; every other address is silent (nothing listens there), as most hosts of a
real /24 are to SNMP. `hardware.discovery.scan` then sweeps the whole /24 with the concurrency,
rate limit, timeout and retries `pullprint discover` uses, and the bench prints hosts/s, the
total time, how many hosts answered and how many devices the merge made of them. A second run
without the rate limit shows what the limit costs.

Loopback only: nothing is sent anywhere else. Figures, not assertions: run it and read them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

NETWORK = "127.0.0.0/24"
COMMUNITY = "public"


@dataclass(frozen=True)
class SweepFigures:
    """One sweep."""

    label: str
    hosts: int
    printers_served: int
    answered: int
    devices: int
    seconds: float
    concurrency: int
    rate_per_s: float
    timeout_s: float
    retries: int

    @property
    def hosts_per_s(self) -> float:
        """Addresses swept per second."""
        return self.hosts / self.seconds if self.seconds else 0.0


def printer_hosts(count: int, network: str = NETWORK) -> list[str]:
    """`count` addresses spread evenly over `network` (127.0.0.1 is left to other users)."""
    from hardware.discovery.ranges import plan_scan  # noqa: PLC0415

    free = [h for h in plan_scan([network], []).hosts() if h != "127.0.0.1"]
    if not 1 <= count <= len(free):
        raise ValueError(f"between 1 and {len(free)} printers fit in {network}")
    step = len(free) / count
    return [free[int(i * step)] for i in range(count)]


def sweep(
    port: int,
    *,
    network: str,
    label: str,
    served: int,
    concurrency: int,
    rate_per_s: float,
    timeout_s: float,
    retries: int,
) -> SweepFigures:
    """Sweep the /24 once and time it."""
    from hardware.discovery.merge import merge  # noqa: PLC0415 - pysnmp loads when used
    from hardware.discovery.ranges import plan_scan  # noqa: PLC0415
    from hardware.discovery.scan import scan  # noqa: PLC0415
    from hardware.snmp.session import SnmpSession  # noqa: PLC0415

    hosts = plan_scan([network], []).host_count
    with SnmpSession(
        timeout_s=timeout_s, retries=retries, max_in_flight=concurrency, call_timeout_s=3600.0
    ) as session:
        started = time.perf_counter()
        found = session.run(
            lambda client: scan(
                client,
                [network],
                community=COMMUNITY,
                port=port,
                concurrency=concurrency,
                rate_per_s=rate_per_s,
            )
        )
        seconds = time.perf_counter() - started
    devices = merge([], found)
    return SweepFigures(
        label,
        hosts,
        served,
        len(found),
        len(devices),
        seconds,
        concurrency,
        rate_per_s,
        timeout_s,
        retries,
    )


def bench_sweep(args: argparse.Namespace) -> list[SweepFigures]:
    """Start snmpsim with the printers, sweep with the limits, then without the rate limit."""
    from tools.snmpsim import SnmpSimulator, fixed_recording, shared_recordings  # noqa: PLC0415

    recordings = shared_recordings()[: args.printers] if args.printers else shared_recordings()
    hosts = printer_hosts(len(recordings), args.range)
    results = []
    with tempfile.TemporaryDirectory(prefix="pullprint-bench-sweep-") as tmp:
        sim = SnmpSimulator(Path(tmp), hosts=tuple(hosts), start_timeout_s=60.0)
        for host, path in zip(hosts, recordings, strict=True):
            sim.add_host_recording(host, COMMUNITY, fixed_recording(path))
        with sim:
            runs = [("limits", args.rate)]
            if args.rate > 0 and not args.no_unlimited:
                runs.append(("no rate limit", 0.0))
            for label, rate in runs:
                results.append(
                    sweep(
                        sim.port,
                        network=args.range,
                        label=label,
                        served=len(hosts),
                        concurrency=args.concurrency,
                        rate_per_s=rate,
                        timeout_s=args.timeout,
                        retries=args.retries,
                    )
                )
    return results


def _row(f: SweepFigures) -> dict[str, Any]:
    return {**asdict(f), "hosts_per_s": round(f.hosts_per_s, 1), "seconds": round(f.seconds, 2)}


def _cmd_bench_sweep(args: argparse.Namespace) -> int:
    from tools.cli import CliError  # noqa: PLC0415 - tools.cli imports this module

    if args.concurrency < 1 or args.timeout <= 0 or args.retries < 0:
        raise CliError("--concurrency >= 1, --timeout > 0 and --retries >= 0", 2)
    if not args.range.startswith("127."):
        raise CliError("the bench sweeps loopback only (127.0.0.0/8)", 2)
    results = bench_sweep(args)
    if args.json:
        print(json.dumps({"sweeps": [_row(f) for f in results]}, indent=2))
        return 0
    print(f"SNMP sweep of {args.range} on loopback ({results[0].printers_served} printers served)")
    for f in results:
        limits = (
            f"concurrency {f.concurrency}, rate {f.rate_per_s:g}/s, "
            f"timeout {f.timeout_s:g} s, retries {f.retries}"
        )
        print(
            f"  {f.label:<14} {f.hosts} hosts in {f.seconds:6.2f} s = {f.hosts_per_s:6.1f} hosts/s;"
            f" {f.answered} answered, {f.devices} devices  ({limits})"
        )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `bench-sweep` to the command tree."""
    cmd = sub.add_parser("bench-sweep", help="benchmark a /24 SNMP sweep on loopback (snmpsim)")
    cmd.add_argument("--range", default=NETWORK, help="a loopback range (default: a /24)")
    cmd.add_argument("--printers", type=int, default=0, help="recordings served (0: all)")
    cmd.add_argument("--concurrency", type=int, default=32, help="as pullprint discover")
    cmd.add_argument("--rate", type=float, default=50.0, help="hosts/s, as pullprint discover")
    cmd.add_argument("--timeout", type=float, default=1.0, help="SNMP seconds per try")
    cmd.add_argument("--retries", type=int, default=0, help="SNMP resends per host")
    cmd.add_argument("--no-unlimited", action="store_true", help="skip the run without rate limit")
    cmd.add_argument("--json", action="store_true", help="print the figures as JSON")
    cmd.set_defaults(func=_cmd_bench_sweep)
