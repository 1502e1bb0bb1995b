"""`pullprint bench-throughput`: the cloud's request rates against DESIGN.md's targets.

The cloud runs as `pullprint cloud serve` in its own process (as in production), so the load
generators' Python does not share its interpreter lock; the load comes from threads here:

1. badge authentications + job lists: `threads` stations each loop open session (the signed
   POST /station/sessions that returns the job list) and end it; the database first holds
   `seed_users` users and `seed_jobs` held jobs (DESIGN.md: 10k / 100k), and the badge's owner
   has `own_jobs` held jobs, so every list is a real one;
2. job submissions: `threads` clients submit `submit_kb` KB documents over REST (each is
   encrypted, fsynced and recorded before its 201).

For each: requests per second, p50/p99 latency, and the cloud process's CPU milliseconds per
request (from its own CPU time, which is steadier than the rate on a shared machine).
DESIGN.md's targets on 2 cores: auth + list >= 500/s with p99 <= 50 ms; 100 KB submissions
>= 200/s. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import requests

from cloud.config import generate_secrets, load_config
from cloud.db import make_engine
from station.cloud_client import CloudClient
from station.credentials import credential_tag
from station.signing import SignatureAuth, load_identity
from tools.bench import (
    BADGE,
    _free_port,
    _pair_bench_station,
    _pattern_chunks,
    _percentile,
    _wait_http,
    seed,
)
from tools.submit import submit_stream


def _load(
    seconds: float, threads: int, make_op: Callable[[], Callable[[], None]], cloud: psutil.Process
) -> dict[str, Any]:
    """Run `threads` loops of their own `make_op()` for `seconds`; rates and the cloud's CPU."""
    latencies: list[float] = []
    lock = threading.Lock()
    ops = [make_op() for _ in range(threads)]
    start_gate = threading.Barrier(threads + 1)
    deadline = 0.0

    def worker(op: Callable[[], None]) -> None:
        mine: list[float] = []
        start_gate.wait()
        while time.monotonic() < deadline:
            started = time.monotonic()
            op()
            mine.append((time.monotonic() - started) * 1000)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(op,)) for op in ops]
    for each in pool:
        each.start()
    cpu_before = sum(cloud.cpu_times()[:2])
    began = time.monotonic()
    deadline = began + seconds
    start_gate.wait()
    for each in pool:
        each.join()
    elapsed = time.monotonic() - began
    cpu_s = sum(cloud.cpu_times()[:2]) - cpu_before
    return {
        "threads": threads,
        "requests": len(latencies),
        "per_s": len(latencies) / elapsed,
        "p50_ms": _percentile(latencies, 50),
        "p99_ms": _percentile(latencies, 99),
        "cloud_cpu_ms_per_request": 1000 * cpu_s / max(len(latencies), 1),
    }


def bench_throughput(
    seconds: float,
    threads: int,
    *,
    seed_users: int,
    seed_jobs: int,
    own_jobs: int,
    submit_kb: int,
) -> dict[str, Any]:
    """Start a cloud process, seed it, pair a station, and measure both rates."""
    with tempfile.TemporaryDirectory(prefix="pullprint-bench-tp-") as tmp:
        work = Path(tmp)
        data_dir = work / "cloud"
        data_dir.mkdir()
        generate_secrets(data_dir / "secrets.toml")
        config = load_config(None, {"PULLPRINT_DATA_DIR": str(data_dir)})
        port = _free_port()
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "tools.cli",
                "cloud",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ],
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_http(url + "/healthz")
            engine = make_engine(config.database_url)
            try:
                users, held, seed_s = seed(engine, max(seed_users, 1), seed_jobs, config.site)
                if engine.dialect.name == "sqlite":
                    # A database at rest: 100k rows inserted at once leave a WAL of ~100 MB that
                    # the cloud would otherwise checkpoint in the middle of the measurement.
                    # (outside a transaction: the raw connection runs in autocommit mode)
                    raw = engine.raw_connection()
                    try:
                        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    finally:
                        raw.close()
            finally:
                engine.dispose()
            http = requests.Session()
            admin = {"Authorization": f"Bearer {config.admin_token}"}
            site_key = os.urandom(32)

            def add_user(email: str) -> dict[str, Any]:
                made = http.post(
                    f"{url}/api/v1/admin/users",
                    headers=admin,
                    timeout=10,
                    json={"email": email, "display_name": "Bench"},
                )
                made.raise_for_status()
                return dict(made.json())

            badge_user = add_user("badge@example.org")
            http.post(
                f"{url}/api/v1/admin/users/{badge_user['id']}/cards",
                headers=admin,
                timeout=10,
                json={"tag": credential_tag(site_key, BADGE)},
            ).raise_for_status()
            for n in range(own_jobs):
                submit_stream(
                    url,
                    badge_user["api_token"],
                    _pattern_chunks(submit_kb * 1024),
                    name=f"own {n}.pdf",
                    document_format="application/pdf",
                    session=http,
                )
            station_id = _pair_bench_station(
                work, data_dir, url, "ipp://127.0.0.1:631/ipp/print", site_key
            )
            identity = load_identity(work / "spool" / "station.key")
            tag = credential_tag(site_key, BADGE)
            cloud = psutil.Process(proc.pid)

            def auth_op() -> Callable[[], None]:
                client = CloudClient(url, SignatureAuth(identity, station_id), timeout_s=30)

                def op() -> None:
                    opened = client.open_session(tag)
                    if len(opened.jobs) != own_jobs:
                        raise RuntimeError("the job list is not the badge owner's")
                    client.end_session(opened.session_id)

                return op

            auth = _load(seconds, threads, auth_op, cloud)
            submitter = add_user("submit@example.org")

            def submit_op() -> Callable[[], None]:
                session = requests.Session()

                def op() -> None:
                    submit_stream(
                        url,
                        submitter["api_token"],
                        _pattern_chunks(submit_kb * 1024, submit_kb * 1024),
                        name="bench.pdf",
                        document_format="application/pdf",
                        session=session,
                    )

                return op

            submit = _load(seconds, threads, submit_op, cloud)
        finally:
            proc.terminate()
            proc.wait(30)
    return {
        "cpus": os.cpu_count(),
        "seeded_users": users,
        "seeded_held_jobs": held,
        "seed_s": seed_s,
        "own_jobs": own_jobs,
        "submit_kb": submit_kb,
        "auth_and_list": auth,
        "submit": submit,
    }


def _cmd(args: argparse.Namespace) -> int:
    result = bench_throughput(
        args.seconds,
        args.threads,
        seed_users=args.seed_users,
        seed_jobs=args.seed_jobs,
        own_jobs=args.own_jobs,
        submit_kb=args.submit_kb,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"PullPrint cloud throughput ({result['cpus']} CPUs, cloud in its own process)")
    print(
        f"Database: {result['seeded_users']} users, {result['seeded_held_jobs']} held jobs "
        f"(seeded in {result['seed_s']:.1f} s); the badge's owner has {result['own_jobs']}"
    )
    rows = [
        ("badge auth + job list", result["auth_and_list"], ">= 500/s, p99 <= 50 ms"),
        (f"{result['submit_kb']} KB submissions", result["submit"], ">= 200/s"),
    ]
    print(f"  {'measure':<24} {'per s':>7} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms':>7}   target")
    for label, row, target in rows:
        print(
            f"  {label:<24} {row['per_s']:7.0f} {row['p50_ms']:7.1f} {row['p99_ms']:7.1f} "
            f"{row['cloud_cpu_ms_per_request']:7.2f}   {target}"
        )
    print(f"  ({result['auth_and_list']['threads']} clients at once; cpu ms: the cloud's CPU")
    print("   time per request, all its threads)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `bench-throughput`."""
    cmd = sub.add_parser("bench-throughput", help="the cloud's auth+list and submission rates")
    cmd.add_argument("--seconds", type=float, default=5.0, help="length of each load phase")
    cmd.add_argument("--threads", type=int, default=4, help="clients at once")
    cmd.add_argument("--seed-users", type=int, default=10_000)
    cmd.add_argument("--seed-jobs", type=int, default=100_000)
    cmd.add_argument("--own-jobs", type=int, default=10, help="held jobs of the badge's owner")
    cmd.add_argument("--submit-kb", type=int, default=100, help="size of each submission")
    cmd.add_argument("--json", action="store_true")
    cmd.set_defaults(func=_cmd)
