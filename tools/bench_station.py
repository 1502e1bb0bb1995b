"""`pullprint bench-station`: the station's footprint, measured on the real service process.

The station runs as it does under systemd: `pullprint station run --config ...` in its own
process, announcing itself on `NOTIFY_SOCKET` (a datagram socket the bench binds). Its reader is a
bridge on a pty (the real serial path: pyserial, the PP1 handshake, the CARD line), its display
the simulated one behind the real rendering path (every screen is drawn with Pillow at
320x240), the cloud and the printer run in the bench's process on loopback. Figures, printed,
never asserted:

* start to ready: process spawn -> `READY=1` (imports, config, parts opened, idle screen drawn),
  with our modules' bytecode compiled first, as pip leaves it on a station (see `_precompile`);
* idle RSS (and USS) of the station process after it settled;
* idle CPU: the station's CPU time over `--idle-s` seconds of doing nothing, as % of one core;
* tap -> list: a CARD line written to the pty -> `STATUS=<job list>` (sent once the job list
  frame has been rendered and shown), p50 / p99 over `--taps` taps.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardware.readers.formats import mifare_uid
from station.screens import IdleScreen, JobListScreen
from tools.samples import make_pdf

if TYPE_CHECKING:
    from tools.rig import LoopRig

BADGE = mifare_uid(bytes.fromhex("04A1B2C3D4E5F6"))
LIST_LABEL = JobListScreen("", ()).label  # what the station puts in STATUS= for the job list
IDLE_LABEL = IdleScreen().label


class _Notify:
    """The systemd side of sd_notify: a datagram socket, read with a deadline."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def wait_for(self, prefix: str, timeout_s: float) -> float:
        """The monotonic time a message with a line starting with `prefix` arrived."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            if any(line.startswith(prefix) for line in data.splitlines()):
                return time.monotonic()
        raise RuntimeError(f"the station never sent {prefix!r}")

    def drain(self) -> None:
        self.sock.setblocking(False)
        try:
            while self.sock.recv(4096):
                pass
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)

    def close(self) -> None:
        self.sock.close()


def _percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(sorted(values), n=100, method="inclusive")[q - 1]


def _precompile() -> bool:
    """Give our packages the bytecode a station has; False if their folders are read-only.

    pip compiles every module when it installs the station's wheel (first boot and updates),
    and the service then only reads the .pyc (PYTHONDONTWRITEBYTECODE=1: /opt is read-only). A
    source checkout run with PYTHONDONTWRITEBYTECODE=1 (as dev shells and CI set it) has no .pyc,
    so without this every start would include compiling some 80 modules: 0.3 s here, several
    seconds on a loaded machine, and a figure no station ever shows. Up-to-date files are skipped.
    """
    import compileall  # noqa: PLC0415 - only the bench needs it

    import cloud  # noqa: PLC0415
    import hardware  # noqa: PLC0415
    import station  # noqa: PLC0415
    import tools  # noqa: PLC0415

    ok = True
    for package in (cloud, hardware, station, tools):
        for folder in package.__path__:
            ok = bool(compileall.compile_dir(folder, quiet=2)) and ok
    return ok


def bench_station(taps: int = 20, idle_s: float = 10.0) -> dict[str, Any]:
    """Measure one station process; see the module docstring."""
    # Imported here: `pullprint` builds its parser from every command module, and a station
    # installed without the test and bench extras (no pyserial, no psutil) must still start.
    from tools.rig import LoopRig  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="pullprint-bench-station-") as tmp:
        work = Path(tmp)
        with LoopRig(work / "rig", keep_documents=False, session_timeout_s=0.3) as rig:
            # The rig paired a station and wrote its config; its in-process station steps aside
            # for the one under test, which uses the same keys, spool and config.
            assert rig.station is not None
            user = rig.enrol("bench@example.org", "Bench User", BADGE)
            rig.http.post(
                f"{rig.cloud_url}/api/v1/jobs",
                params={"name": "bench.pdf"},
                data=make_pdf(["bench"]),
                headers={
                    "Authorization": f"Bearer {user.token}",
                    "Content-Type": "application/pdf",
                },
                timeout=30,
            ).raise_for_status()
            rig.station.stop()
            rig.station = None
            return _measure(rig, work, taps, idle_s)


def _measure(rig: LoopRig, work: Path, taps: int, idle_s: float) -> dict[str, Any]:
    from hardware.readers.bridge_sim import SimulatedBridge  # noqa: PLC0415 - see bench_station

    bridge = SimulatedBridge()
    config = rig.work_dir / "station.toml"
    text = config.read_text().replace('reader = "simulated"', 'reader = "bridge"')
    config.write_text(text + f'[reader]\nport = "{bridge.port_path}"\nhandshake_timeout_s = 2.0\n')
    precompiled = _precompile()
    notify = _Notify(work / "notify.sock")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULLPRINT_")}
    env["NOTIFY_SOCKET"] = str(notify.path)
    log = (work / "station.log").open("wb")
    spawned = time.monotonic()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "tools.cli", "station", "run", "--config", str(config)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        ready_at = notify.wait_for("READY=1", 60)
        if not bridge.wait_for_hello(10):
            raise RuntimeError("the station never opened its reader")
        import psutil  # noqa: PLC0415 - the bench extra; a station installs without it

        station = psutil.Process(process.pid)
        time.sleep(1.0)  # let start-up work (journal, first frames, handshake) finish
        notify.drain()
        cpu_before = station.cpu_times()
        wall_before = time.monotonic()
        time.sleep(idle_s)
        cpu_after = station.cpu_times()
        wall = time.monotonic() - wall_before
        busy = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
        memory = station.memory_full_info()
        latencies: list[float] = []
        for _ in range(taps):
            notify.drain()
            tapped = time.monotonic()
            bridge.present(BADGE)
            listed = notify.wait_for(f"STATUS={LIST_LABEL}", 30)
            latencies.append((listed - tapped) * 1000)
            notify.wait_for(f"STATUS={IDLE_LABEL}", 30)  # the session times out
        return {
            "start_to_ready_s": ready_at - spawned,
            "idle_rss_mb": memory.rss / 2**20,
            "idle_uss_mb": memory.uss / 2**20,
            "idle_cpu_percent": 100 * busy / wall,
            "idle_window_s": wall,
            "threads": station.num_threads(),
            "bytecode_precompiled": precompiled,
            "taps": taps,
            "tap_to_list_ms": {
                "p50": _percentile(latencies, 50),
                "p99": _percentile(latencies, 99),
            },
        }
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
        notify.close()
        bridge.close()


def _cmd_bench_station(args: argparse.Namespace) -> int:
    result = bench_station(taps=args.taps, idle_s=args.idle_s)
    if args.json:
        print(json.dumps(result))
        return 0
    print("station footprint (one `pullprint station run` process, bridge reader on a pty)")
    bytecode = "" if result["bytecode_precompiled"] else " (modules compiled at start: read-only)"
    print(f"  start -> ready (READY=1):   {result['start_to_ready_s']:.2f} s{bytecode}")
    rss, uss = result["idle_rss_mb"], result["idle_uss_mb"]
    print(f"  idle RSS / USS:             {rss:.1f} / {uss:.1f} MB")
    print(
        f"  idle CPU:                   {result['idle_cpu_percent']:.2f} % of one core "
        f"over {result['idle_window_s']:.0f} s ({result['threads']} threads)"
    )
    taps = result["tap_to_list_ms"]
    print(
        f"  tap -> job list on screen:  p50 {taps['p50']:.1f} ms, p99 {taps['p99']:.1f} ms "
        f"({result['taps']} taps)"
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `bench-station` to the command tree."""
    bench = sub.add_parser(
        "bench-station", help="station footprint: idle RSS and CPU, start to ready, tap -> list"
    )
    bench.add_argument("--taps", type=int, default=20, help="taps to time")
    bench.add_argument("--idle-s", type=float, default=10.0, help="idle window for the CPU figure")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.set_defaults(func=_cmd_bench_station)
