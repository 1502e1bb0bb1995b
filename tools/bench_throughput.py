"""`pullprint bench-throughput`: the cloud's request rates against DESIGN.md's targets.

The cloud runs as `pullprint cloud serve` in its own process (as in production). The load comes
from `clients` client processes (forked, so no client shares an interpreter lock with another;
each keeps one HTTP/1.1 connection and sends one request at a time, signing it as a station
does), on the same machine, so the clients' CPU counts against the cloud's:

1. badge authentications + job lists (DESIGN.md's measure): each client loops the signed
   `POST /station/sessions` that authenticates the badge's tag and answers with its owner's job
   list; the database first holds `seed_users` users and `seed_jobs` held jobs (DESIGN.md: 10k
   / 100k), and the badge's owner has `own_jobs` held jobs, so every list is a real one. The
   sessions are left to expire, as a station's would after a timeout;
2. tap cycles: the same, each session then ended (`DELETE`), as a station does when the user
   leaves: two signed requests per cycle;
3. job submissions: each client submits `submit_kb` KB documents over REST (each is encrypted,
   fsynced and recorded before its 201).

For each: requests (or cycles) per second, p50/p99 latency, and the cloud process's CPU
milliseconds per request (from its own CPU time, which is steadier than the rate on a shared
machine). DESIGN.md's targets on 2 cores: auth + list >= 500/s with p99 <= 50 ms; 100 KB
submissions >= 200/s. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import queue
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import requests

from cloud.config import generate_secrets, load_config
from cloud.db import make_engine
from station.credentials import credential_tag
from station.signing import load_identity, signature_headers
from tools.bench import (
    BADGE,
    _free_port,
    _pair_bench_station,
    _pattern_chunks,
    _percentile,
    _wait_http,
    seed,
    storage_profile,
)
from tools.submit import submit_stream


@dataclass(frozen=True, slots=True)
class _Target:
    """What a client process needs: where the cloud is and who it acts as."""

    host: str
    port: int
    station_key: Path
    station_id: str
    tag: str
    own_jobs: int
    token: str
    submit_kb: int


def _client(kind: str, target: _Target, start_at: float, seconds: float, out: Any) -> None:
    """One client process: loop `kind` requests from `start_at` for `seconds`; latencies (ms)
    go to `out`. Runs forked: only the standard library's HTTP client, one connection."""
    conn = http.client.HTTPConnection(target.host, target.port, timeout=30)
    identity = load_identity(target.station_key)
    body = json.dumps({"tag": target.tag}).encode()
    document = bytes(range(256)) * (target.submit_kb * 4)
    latencies: list[float] = []

    def request(method: str, path: str, payload: bytes, headers: dict[str, str]) -> bytes:
        conn.request(method, path, payload, headers)
        response = conn.getresponse()
        answer = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {answer[:200]!r}")
        return answer

    def signed(method: str, path: str, payload: bytes) -> bytes:
        headers = signature_headers(identity, target.station_id, method, path, payload)
        headers["Content-Type"] = "application/json"
        return request(method, path, payload, headers)

    def open_session() -> str:
        opened = json.loads(signed("POST", "/api/v1/station/sessions", body))
        if len(opened["jobs"]) != target.own_jobs:
            raise RuntimeError("the job list is not the badge owner's")
        return str(opened["session_id"])

    def submit() -> None:
        request(
            "POST",
            "/api/v1/jobs?name=bench.pdf&copies=1",
            document,
            {"Authorization": f"Bearer {target.token}", "Content-Type": "application/pdf"},
        )

    while time.time() < start_at:
        time.sleep(0.001)
    cpu_start = time.process_time()
    deadline = start_at + seconds
    while time.time() < deadline:
        started = time.perf_counter()
        if kind == "auth":
            open_session()
        elif kind == "cycle":
            session_id = open_session()
            signed("DELETE", f"/api/v1/station/sessions/{session_id}", b"")
        else:
            submit()
        latencies.append((time.perf_counter() - started) * 1000)
    conn.close()
    out.put((latencies, time.process_time() - cpu_start))


def _cpu_s(cloud: psutil.Process) -> tuple[float, float]:
    """User and system CPU seconds of the cloud process and its workers."""
    times = [each.cpu_times() for each in [cloud, *cloud.children(recursive=True)]]
    return sum(t.user for t in times), sum(t.system for t in times)


def _load(
    kind: str, target: _Target, seconds: float, clients: int, cloud: psutil.Process
) -> dict[str, Any]:
    """Run `clients` processes of `kind` requests for `seconds`; rates and the cloud's CPU."""
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    start_at = time.time() + 0.5  # every process forked and connected before the clock starts
    procs = [
        context.Process(target=_client, args=(kind, target, start_at, seconds, out))
        for _ in range(clients)
    ]
    for proc in procs:
        proc.start()
    while time.time() < start_at:
        time.sleep(0.001)
    cpu_before = _cpu_s(cloud)
    latencies: list[float] = []
    client_cpu_s = 0.0
    reported = 0
    give_up = time.monotonic() + seconds + 60
    while reported < len(procs):
        try:
            got, cpu = out.get(timeout=1.0)
            latencies.extend(got)
            client_cpu_s += cpu
            reported += 1
        except queue.Empty:
            failed = [proc.exitcode for proc in procs if proc.exitcode not in (None, 0)]
            if failed or time.monotonic() > give_up:
                for proc in procs:
                    proc.kill()
                raise RuntimeError(f"a {kind} client failed (exit codes {failed})") from None
    cpu_after = _cpu_s(cloud)
    user_s, system_s = (after - before for after, before in zip(cpu_after, cpu_before, strict=True))
    cpu_s = user_s + system_s
    for proc in procs:
        proc.join(10)
        if proc.exitcode != 0:
            raise RuntimeError(f"a {kind} client failed (exit code {proc.exitcode})")
    elapsed = seconds  # every client stops at the same deadline
    return {
        "clients": clients,
        "requests": len(latencies),
        "per_s": len(latencies) / elapsed,
        "p50_ms": _percentile(latencies, 50),
        "p99_ms": _percentile(latencies, 99),
        "cloud_cpu_ms_per_request": 1000 * cpu_s / max(len(latencies), 1),
        "cloud_system_cpu_share": system_s / cpu_s if cpu_s else 0.0,
        "client_cpu_ms_per_request": 1000 * client_cpu_s / max(len(latencies), 1),
    }


def bench_throughput(
    seconds: float,
    clients: int,
    *,
    seed_users: int,
    seed_jobs: int,
    own_jobs: int,
    submit_kb: int,
    workers: int = 1,
    rounds: int = 1,
) -> dict[str, Any]:
    """Start a cloud (`workers` processes), seed it, pair a station, and measure the rates.

    With `rounds` > 1 the three measures take turns that many times (so a drift of the
    machine's speed touches each alike) and each reports its median round by rate, with every
    round's rate in `rounds_per_s`."""
    with tempfile.TemporaryDirectory(prefix="pullprint-bench-tp-") as tmp:
        work = Path(tmp)
        data_dir = work / "cloud"
        data_dir.mkdir()
        generate_secrets(data_dir / "secrets.toml")
        # The storage profile's PULLPRINT_* variables (`storage_profile`), as the child sees them.
        environment = {k: v for k, v in os.environ.items() if k.startswith("PULLPRINT_")}
        config = load_config(None, {**environment, "PULLPRINT_DATA_DIR": str(data_dir)})
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
                "--workers",
                str(workers),
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
            cloud = psutil.Process(proc.pid)
            measured: dict[str, list[dict[str, Any]]] = {"auth": [], "cycle": [], "submit": []}
            for n in range(rounds):
                # A submitter per round: every round's jobs stay held, within one user's quota.
                submitter = add_user(f"submit{n}@example.org")
                target = _Target(
                    host="127.0.0.1",
                    port=port,
                    station_key=work / "spool" / "station.key",
                    station_id=station_id,
                    tag=credential_tag(site_key, BADGE),
                    own_jobs=own_jobs,
                    token=submitter["api_token"],
                    submit_kb=submit_kb,
                )
                for kind, runs in measured.items():
                    runs.append(_load(kind, target, seconds, clients, cloud))
            auth, cycle, submit = (_median_round(runs) for runs in measured.values())
        finally:
            proc.terminate()
            proc.wait(30)
    return {
        "cpus": os.cpu_count(),
        "workers": workers,
        "seeded_users": users,
        "seeded_held_jobs": held,
        "seed_s": seed_s,
        "own_jobs": own_jobs,
        "submit_kb": submit_kb,
        "auth_and_list": auth,
        "tap_cycle": cycle,
        "submit": submit,
    }


def _median_round(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The round of median rate (the lower middle one of an even count), with every rate."""
    ranked = sorted(runs, key=lambda run: float(run["per_s"]))
    return {**ranked[(len(ranked) - 1) // 2], "rounds_per_s": [run["per_s"] for run in runs]}


def _cmd(args: argparse.Namespace) -> int:
    with storage_profile(args.profile) as storage:
        result = _run(args)
    result["storage"] = storage
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"PullPrint cloud throughput ({result['cpus']} CPUs; the cloud in its own "
        f"{result['workers']} worker process(es); {storage})"
    )
    return _print(result)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    return bench_throughput(
        args.seconds,
        args.clients,
        seed_users=args.seed_users,
        seed_jobs=args.seed_jobs,
        own_jobs=args.own_jobs,
        submit_kb=args.submit_kb,
        workers=args.workers,
        rounds=args.rounds,
    )


def _print(result: dict[str, Any]) -> int:
    print(
        f"Database: {result['seeded_users']} users, {result['seeded_held_jobs']} held jobs "
        f"(seeded in {result['seed_s']:.1f} s); the badge's owner has {result['own_jobs']}"
    )
    rows = [
        ("badge auth + job list", result["auth_and_list"], ">= 500/s, p99 <= 50 ms"),
        ("tap cycle (open + end)", result["tap_cycle"], ""),
        (f"{result['submit_kb']} KB submissions", result["submit"], ">= 200/s"),
    ]
    print(
        f"  {'measure':<24} {'per s':>7} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms':>7} {'client':>7}"
        "   target"
    )
    for label, row, target in rows:
        print(
            f"  {label:<24} {row['per_s']:7.0f} {row['p50_ms']:7.1f} {row['p99_ms']:7.1f} "
            f"{row['cloud_cpu_ms_per_request']:7.2f} {row['client_cpu_ms_per_request']:7.2f}"
            f"   {target}"
        )
    rates = result["auth_and_list"]["rounds_per_s"]
    if len(rates) > 1:
        each = ", ".join(f"{rate:.0f}" for rate in rates)
        print(f"  (the median of {len(rates)} rounds; auth + list rounds: {each} per s)")
    print(f"  ({result['auth_and_list']['clients']} client processes at once; cpu ms: the cloud's")
    print("   CPU time per request or cycle, all its threads; client: the load generators' own,")
    print("   which share this machine's cores with the cloud)")
    return 0


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `bench-throughput`."""
    cmd = sub.add_parser("bench-throughput", help="the cloud's auth+list and submission rates")
    cmd.add_argument("--seconds", type=float, default=5.0, help="length of each load phase")
    cmd.add_argument("--clients", type=int, default=4, help="client processes at once")
    cmd.add_argument(
        "--rounds",
        type=_at_least_one,
        default=1,
        help="turns of the three measures; the median is shown",
    )
    cmd.add_argument("--seed-users", type=int, default=10_000)
    cmd.add_argument("--seed-jobs", type=int, default=100_000)
    cmd.add_argument("--own-jobs", type=int, default=10, help="held jobs of the badge's owner")
    cmd.add_argument("--submit-kb", type=int, default=100, help="size of each submission")
    cmd.add_argument(
        "--workers", type=int, default=1, help="the cloud's worker processes (cloud serve)"
    )
    cmd.add_argument(
        "--profile",
        choices=["embedded", "postgres"],
        default="embedded",
        help="SQLite + files, or a private PostgreSQL + S3 (moto) started for the run",
    )
    cmd.add_argument("--json", action="store_true")
    cmd.set_defaults(func=_cmd)
