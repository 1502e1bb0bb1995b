"""`pullprint bench`: the first benchmarks (figures printed, never asserted).

1. Latency, over `runs` releases of a 1 MB job, everything on loopback in one process:
   badge tap -> job list on screen, and "Print all" -> first byte at the printer (p50/p99).
2. Streaming a big job (default 200 MB) cloud -> station -> printer, with the cloud and the printer
   in their own processes so the station's memory can be read alone: the rate, and the station's RSS
   growth while it delivers.

DESIGN.md's targets: tap -> list p50 <= 25 ms, p99 <= 60 ms; print -> first byte p50 <= 100 ms;
streaming >= 100 MB/s with station memory growth <= 16 MB.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import requests
from sqlalchemy import Engine, func, insert, select

from cloud.config import generate_secrets, load_config
from cloud.db import Credential as DbCredential
from cloud.db import Job, User
from hardware.display.simulated import SimulatedDisplay
from hardware.readers.formats import h10301
from hardware.readers.simulated import SimulatedCardReader
from station.app import Station, build_station
from station.config import load_config as load_station_config
from station.credentials import credential_tag
from station.pairing import PairingClient, write_site_key
from station.screens import DoneScreen, ErrorScreen, JobListScreen
from station.signing import load_or_create_identity
from station.workflow import Button, State
from tools.pg import PrivatePostgres
from tools.procs import free_tcp_port
from tools.rig import LoopRig, ScreenLog
from tools.s3 import DUMMY_CREDENTIALS, PrivateS3
from tools.submit import submit_stream

BADGE = h10301(12, 3456)
MIB = 1024 * 1024


@dataclass(frozen=True)
class BenchOptions:
    """What to measure."""

    runs: int = 200
    big_mb: int = 200
    seed_users: int = 10_000
    seed_jobs: int = 100_000
    json_output: bool = False
    # "embedded" (SQLite + files) or "postgres" (a private PostgreSQL + moto's S3 server, started
    # here on 127.0.0.1; the latency figures only: streaming through moto would measure moto).
    profile: str = "embedded"
    auth_seconds: float = 5.0
    auth_threads: int = 4


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def _pattern_chunks(total: int, chunk: int = MIB) -> Iterator[bytes]:
    """`total` bytes of incompressible-looking data without holding them all."""
    block = os.urandom(chunk)
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        yield block[:n]
        sent += n


def seed(engine: Engine, users: int, held_jobs: int, site: str) -> tuple[int, int, float]:
    """Fill the database with `users` users (one badge each) and `held_jobs` held jobs.

    Rows go straight in through SQLAlchemy (submitting 100k documents through the API would
    measure uploads, not lookups). Seeded jobs have no content: nobody releases them.
    Returns the users and held jobs the database then holds, and the seconds it took.
    """
    started = time.monotonic()
    now = datetime.now(UTC)
    later = now + timedelta(days=7)
    user_ids = [uuid.uuid4() for _ in range(users)]
    with engine.begin() as db:
        db.execute(
            insert(User),
            [
                {
                    "id": uid,
                    "site": site,
                    "email": f"user{i}@example.org",
                    "display_name": f"User {i}",
                    "token_hash": os.urandom(32).hex(),
                    "created_at": now,
                }
                for i, uid in enumerate(user_ids)
            ],
        )
        db.execute(
            insert(DbCredential),
            [
                {
                    "id": uuid.uuid4(),
                    "site": site,
                    "user_id": uid,
                    "kind": "card",
                    "lookup": os.urandom(32).hex(),
                    "label": "badge",
                    "created_at": now,
                }
                for uid in user_ids
            ],
        )
        for start in range(0, held_jobs, 10_000):
            db.execute(
                insert(Job),
                [
                    {
                        "id": uuid.uuid4(),
                        "site": site,
                        "owner_id": user_ids[n % users],
                        "name": f"document {n}.pdf",
                        "document_format": "application/pdf",
                        "size_bytes": 100_000,
                        "content_bytes": 100_100,
                        "sha256": "0" * 64,
                        "copies": 1,
                        "pages": 2,
                        "state": "held",
                        "wrapped_key": None,
                        "blob_key": None,
                        "submitted_at": now,
                        "expires_at": later,
                        "printed_at": None,
                    }
                    for n in range(start, min(start + 10_000, held_jobs))
                ],
            )
        total_users = db.execute(select(func.count()).select_from(User)).scalar_one()
        total_held = db.execute(
            select(func.count()).select_from(Job).where(Job.state == "held")
        ).scalar_one()
    return total_users, total_held, time.monotonic() - started


@contextmanager
def storage_profile(profile: str) -> Iterator[str]:
    """Point the clouds this process starts (LoopRig, `pullprint cloud serve` children) at the
    profile's storage through PULLPRINT_* variables; yields a description of it."""
    if profile == "embedded":
        yield "SQLite (WAL) + filesystem blobs"
        return
    if profile != "postgres":
        raise ValueError("the profile is embedded or postgres")
    root = Path(tempfile.mkdtemp(prefix="pullprint-bench-pg-"))
    saved = dict(os.environ)
    # Durable, as a production server runs (fsync and synchronous commit on).
    pg = PrivatePostgres(root, durable=True)
    s3 = PrivateS3(root / "s3.log")
    try:
        pg.start()
        s3.start()
        s3.create_bucket("pullprint-bench")
        os.environ.update(DUMMY_CREDENTIALS)
        os.environ.update(
            {
                "PULLPRINT_DATABASE_URL": pg.create_database("bench"),
                "PULLPRINT_BLOB_STORE": "s3",
                "PULLPRINT_S3_BUCKET": "pullprint-bench",
                "PULLPRINT_S3_ENDPOINT_URL": s3.endpoint_url,
                "PULLPRINT_S3_REGION": DUMMY_CREDENTIALS["AWS_DEFAULT_REGION"],
            }
        )
        yield "PostgreSQL (private server, fsync on) + S3 (moto server)"
    finally:
        os.environ.clear()
        os.environ.update(saved)
        s3.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def bench_auth_throughput(rig: LoopRig, seconds: float, threads: int) -> dict[str, Any]:
    """Badge authentications with the job list (POST /station/sessions, signed), as fast as
    `threads` stations can ask, for `seconds`: requests per second and p50/p99."""
    assert rig.station is not None
    client = rig.station.client
    tag = credential_tag(rig.site_key, BADGE)
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        mine: list[float] = []
        while time.monotonic() < deadline:
            started = time.monotonic()
            session = client.open_session(tag)
            mine.append((time.monotonic() - started) * 1000)
            client.end_session(session.session_id)
        with lock:
            latencies.extend(mine)

    began = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for each in pool:
        each.start()
    for each in pool:
        each.join()
    elapsed = time.monotonic() - began
    return {
        "threads": threads,
        "requests": len(latencies),
        "per_s": len(latencies) / elapsed,
        "p50_ms": _percentile(latencies, 50),
        "p99_ms": _percentile(latencies, 99),
    }


def bench_latency(
    runs: int,
    seed_users: int = 0,
    seed_jobs: int = 0,
    auth_seconds: float = 0.0,
    auth_threads: int = 4,
) -> dict[str, Any]:
    """Tap -> list and print-all -> first byte over `runs` releases of a 1 MB job.

    With `seed_users`/`seed_jobs` the database first holds that many other users and held jobs
    (DESIGN.md's target is stated for 10k users and 100k held jobs).
    """
    taps: list[float] = []
    first_bytes: list[float] = []
    completed: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="pullprint-bench-") as tmp,
        LoopRig(
            Path(tmp), printer_processing_s=0.0, keep_documents=False, done_s=0.05, error_s=0.05
        ) as rig,
    ):
        user = rig.enrol("bench@example.org", "Bench User", BADGE)
        assert rig.printer is not None
        assert rig.server is not None
        seed_s, seeded_users, seeded_jobs = 0.0, 0, 0
        if seed_users or seed_jobs:
            service = rig.server.app.state.service
            seeded_users, seeded_jobs, seed_s = seed(
                service.engine, max(seed_users, 1), seed_jobs, service.config.site
            )
        auth = bench_auth_throughput(rig, auth_seconds, auth_threads) if auth_seconds else None
        for _ in range(runs):
            submit_stream(
                rig.cloud_url,
                user.token,
                _pattern_chunks(MIB),
                name="bench.pdf",
                document_format="application/pdf",
                session=rig.http,
            )
            if not rig.wait_idle(30):
                raise RuntimeError("station did not return to idle")
            tapped = rig.tap(BADGE)
            listed = rig.screens.wait_for(JobListScreen, after=tapped, timeout_s=30)
            if listed is None:
                raise RuntimeError("no job list after the tap")
            before = len(rig.printer.received)
            pressed = rig.press(Button.PRINT_ALL)
            done = rig.screens.wait_for((DoneScreen, ErrorScreen), after=pressed, timeout_s=60)
            if done is None or isinstance(done[1], ErrorScreen):
                raise RuntimeError("release failed during the benchmark")
            received = rig.printer.received[before]
            taps.append((listed[0] - tapped) * 1000)
            first_byte_at = received.first_byte_at or received.completed_at
            first_bytes.append((first_byte_at - pressed) * 1000)
            completed.append((done[0] - pressed) * 1000)
    return {
        "runs": runs,
        "seeded_users": seeded_users,
        "seeded_held_jobs": seeded_jobs,
        "seed_s": seed_s,
        "auth_and_list": auth,
        "tap_to_list_ms": {"p50": _percentile(taps, 50), "p99": _percentile(taps, 99)},
        "print_to_first_byte_ms": {
            "p50": _percentile(first_bytes, 50),
            "p99": _percentile(first_bytes, 99),
        },
        "print_to_completed_ms": {
            "p50": _percentile(completed, 50),
            "p99": _percentile(completed, 99),
        },
    }


def _free_port() -> int:
    # tools.bench_throughput imports this name (kept for it; new code uses tools.procs).
    return free_tcp_port()


def _wait_http(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


class _RssSampler(threading.Thread):
    """Samples this process's RSS every 5 ms and keeps the peak."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def _pair_bench_station(
    work: Path, data_dir: Path, cloud_url: str, printer_uri: str, site_key: bytes
) -> str:
    """Pair the bench's station the way an admin does: its request, `pullprint pair --yes`
    against the cloud's data directory, its poll. Returns the station id."""
    spool = work / "spool"
    spool.mkdir(mode=0o700)
    admin_key = work / "admin-site.key"
    admin_key.write_text(site_key.hex() + "\n")
    admin_key.chmod(0o600)
    pairing = PairingClient(cloud_url, load_or_create_identity(spool / "station.key"))
    try:
        code = pairing.start()
        subprocess.run(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "tools.cli",
                "pair",
                code.user_code,
                "--printer",
                "bench",
                "--printer-uri",
                printer_uri,
                "--data-dir",
                str(data_dir),
                "--site-key-file",
                str(admin_key),
                "--yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        grant = pairing.poll(code)
    finally:
        pairing.close()
    write_site_key(grant.site_key, spool / "site.key")
    return grant.station_id


def bench_streaming(size_mb: int) -> dict[str, Any]:
    """Stream one `size_mb` job through a station in this process; cloud and printer elsewhere."""
    size = size_mb * MIB
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="pullprint-bench-") as tmp:
        work = Path(tmp)
        try:
            data_dir = work / "cloud"
            data_dir.mkdir()
            generate_secrets(data_dir / "secrets.toml")
            admin_token = load_config(None, {"PULLPRINT_DATA_DIR": str(data_dir)}).admin_token
            cloud_port = _free_port()
            procs.append(
                subprocess.Popen(  # noqa: S603 - our own interpreter and module
                    [
                        sys.executable,
                        "-m",
                        "tools.cli",
                        "cloud",
                        "serve",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(cloud_port),
                        "--data-dir",
                        str(data_dir),
                    ],
                    text=True,
                )
            )
            printer = subprocess.Popen(
                [sys.executable, "-m", "tools.printer_sim", "--port", "0", "--discard"],
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(printer)
            assert printer.stdout is not None
            printer_uri = printer.stdout.readline().strip()
            cloud_url = f"http://127.0.0.1:{cloud_port}"
            _wait_http(cloud_url + "/healthz")

            http = requests.Session()
            admin = {"Authorization": f"Bearer {admin_token}"}
            site_key = os.urandom(32)
            user = http.post(
                f"{cloud_url}/api/v1/admin/users",
                headers=admin,
                timeout=10,
                json={"email": "big@example.org", "display_name": "Big"},
            ).json()
            http.post(
                f"{cloud_url}/api/v1/admin/users/{user['id']}/cards",
                headers=admin,
                timeout=10,
                json={"tag": credential_tag(site_key, BADGE)},
            )
            station_id = _pair_bench_station(work, data_dir, cloud_url, printer_uri, site_key)

            def submit(total: int, name: str) -> float:
                started = time.monotonic()
                submit_stream(
                    cloud_url,
                    user["api_token"],
                    _pattern_chunks(total),
                    name=name,
                    document_format="application/pdf",
                    timeout_s=600,
                    session=http,
                )
                return time.monotonic() - started

            toml = work / "station.toml"
            toml.write_text(
                f'[station]\nname = "bench"\n[cloud]\nurl = "{cloud_url}"\n'
                f'station_id = "{station_id}"\ntimeout_s = 60\n'
                f'[site]\nkey_file = "{work / "spool" / "site.key"}"\n'
                f'[printer]\nuri = "{printer_uri}"\ntimeout_s = 120\n'
                '[hardware]\nreader = "simulated"\ndisplay = "simulated"\n'
                'display_width = 320\ndisplay_height = 240\ndisplay_mode = "RGB"\n'
                f'[session]\ntimeout_s = 300\ndone_s = 0.1\n[spool]\ndir = "{work / "spool"}"\n'
            )
            screens = ScreenLog()
            reader = SimulatedCardReader()
            station = build_station(
                load_station_config(toml, {}),
                reader=reader,
                display=SimulatedDisplay(320, 240, "RGB", keep_frames=1),
                on_screen=screens.add,
            )
            station.start()
            try:
                # A first, small release pays the one-off costs (fonts, TLS and HTTP pools, crypto
                # back end); the big release after it shows what streaming itself costs.
                submit(MIB, "warm-up.pdf")
                warm = _release_measured(station, reader, screens)
                if printer.stdout.readline() == "":
                    raise RuntimeError("the printer process ended")
                submit_s = submit(size, "big.pdf")
                big = _release_measured(station, reader, screens)
            finally:
                station.stop()
            line = printer.stdout.readline()
            match = re.search(r"bytes=(\d+)", line)
            printed = int(match.group(1)) if match else -1
            peer = _peer_ipptool(work, size, printer_uri)
            if peer is not None:
                printer.stdout.readline()  # the peer's job
            return {
                "peer": "ipptool print-job-and-wait straight to the printer (no cloud, no crypto)"
                if peer is not None
                else "ipptool not installed",
                "peer_mb_per_s": size_mb / peer if peer else None,
                "ratio_ours_to_peer": (size_mb / big.elapsed_s) / (size_mb / peer)
                if peer
                else None,
                "size_mb": size_mb,
                "printer_bytes": printed,
                "submit_mb_per_s": size_mb / submit_s,
                "print_to_completed_s": big.elapsed_s,
                "end_to_end_mb_per_s": size_mb / big.elapsed_s,
                "station_rss_growth_mb": big.growth_bytes / MIB,
                "station_rss_baseline_mb": big.baseline_bytes / MIB,
                "first_release_rss_growth_mb": warm.growth_bytes / MIB,
            }
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _peer_ipptool(work: Path, size: int, printer_uri: str) -> float | None:
    """Seconds CUPS's ipptool takes to print the same number of bytes straight to the printer.

    The peer skips everything PullPrint adds (cloud hop, encryption at rest, verify-then-print),
    so the ratio shows what those cost. None when ipptool is not installed.
    """
    ipptool = shutil.which("ipptool")
    test_file = Path("/usr/share/cups/ipptool/print-job-and-wait.test")
    if ipptool is None or not test_file.exists():
        return None
    document = work / "peer.pdf"
    with document.open("wb") as out:
        for chunk in _pattern_chunks(size):
            out.write(chunk)
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - a fixed tool and arguments of our own
        [ipptool, "-T", "600", "-f", str(document), printer_uri, str(test_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    document.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"ipptool failed: {done.stdout[-500:]}")
    return elapsed


@dataclass(frozen=True)
class _Measured:
    elapsed_s: float
    baseline_bytes: int
    growth_bytes: int


def _release_measured(
    station: Station, reader: SimulatedCardReader, screens: ScreenLog
) -> _Measured:
    """Tap, print all, wait for the result; the elapsed time and the RSS growth meanwhile."""
    if not station.wait_for_state(State.IDLE, 30):
        raise RuntimeError("the station did not return to idle")
    gc.collect()
    sampler = _RssSampler()
    baseline = sampler.peak
    sampler.start()
    tapped = time.monotonic()
    reader.present(BADGE)
    if screens.wait_for(JobListScreen, after=tapped, timeout_s=30) is None:
        sampler.stop()
        raise RuntimeError("no job list after the tap")
    pressed = time.monotonic()
    station.press(Button.PRINT_ALL)
    done = screens.wait_for((DoneScreen, ErrorScreen), after=pressed, timeout_s=600)
    peak = sampler.stop()
    if done is None or isinstance(done[1], ErrorScreen):
        raise RuntimeError(f"release failed: {done[1].lines() if done else 'timeout'}")
    return _Measured(done[0] - pressed, baseline, peak - baseline)


def run_bench(options: BenchOptions) -> int:
    """Run both benchmarks and print their figures."""
    with storage_profile(options.profile) as storage:
        latency = bench_latency(
            options.runs,
            options.seed_users,
            options.seed_jobs,
            options.auth_seconds,
            options.auth_threads,
        )
    streaming = bench_streaming(options.big_mb) if options.profile == "embedded" else None
    result = {
        "profile": options.profile,
        "storage": storage,
        "latency": latency,
        "streaming": streaming,
        "cpus": os.cpu_count(),
    }
    if options.json_output:
        print(json.dumps(result, indent=2))
        return 0
    print(f"PullPrint bench ({os.cpu_count()} CPUs, cloud on loopback, virtual printer)")
    print(f"Storage: {storage}")
    print(
        f"\nLatency over {latency['runs']} releases of a 1 MB job "
        f"(database seeded with {latency['seeded_users']} users and "
        f"{latency['seeded_held_jobs']} held jobs in {latency['seed_s']:.1f} s)"
    )
    print(f"  {'measure':<28} {'p50 ms':>8} {'p99 ms':>8}   target")
    rows = [
        ("tap -> job list", "tap_to_list_ms", "p50 <= 25, p99 <= 60"),
        ("print all -> first byte", "print_to_first_byte_ms", "p50 <= 100"),
        ("print all -> completed", "print_to_completed_ms", ""),
    ]
    for label, key, target in rows:
        print(f"  {label:<28} {latency[key]['p50']:>8.1f} {latency[key]['p99']:>8.1f}   {target}")
    auth = latency["auth_and_list"]
    if auth is not None:
        print(
            f"  badge auth + job list, {auth['threads']} stations at once: "
            f"{auth['per_s']:.0f}/s, p50 {auth['p50_ms']:.1f} ms, p99 {auth['p99_ms']:.1f} ms"
        )
    if streaming is None:
        print("\nStreaming: measured on the embedded profile only (moto's S3 is not a real store)")
        return 0
    print(f"\nStreaming one {streaming['size_mb']} MB job cloud -> station -> printer")
    print(f"  submit (client -> cloud)     {streaming['submit_mb_per_s']:8.1f} MB/s")
    print(
        f"  print all -> completed       {streaming['print_to_completed_s']:8.2f} s  "
        f"= {streaming['end_to_end_mb_per_s']:.1f} MB/s   target >= 100 MB/s"
    )
    print(
        f"  station RSS growth           {streaming['station_rss_growth_mb']:8.1f} MB"
        f"   target <= 16 MB (baseline {streaming['station_rss_baseline_mb']:.0f} MB)"
    )
    print(
        f"  station RSS growth, first release of the process (1 MB job) "
        f"{streaming['first_release_rss_growth_mb']:.1f} MB (one-off costs)"
    )
    print(f"  bytes at the printer         {streaming['printer_bytes']}")
    if streaming["peer_mb_per_s"] is not None:
        print(
            f"  peer: {streaming['peer']}\n"
            f"                               {streaming['peer_mb_per_s']:8.1f} MB/s; "
            f"PullPrint runs at {streaming['ratio_ours_to_peer']:.2f}x the peer's rate"
        )
    else:
        print(f"  peer: {streaming['peer']}")
    return 0
