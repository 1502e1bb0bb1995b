"""`pullprint bench-release`: jobs submitted, held and released, PullPrint against CUPS.

The same N documents go through both, on this machine, in one run, to the same printer (the
virtual IPP printer of the rig):

* **PullPrint**: submitted over the REST API (one keep-alive session, encrypted at rest), then
  released by one badge tap and "print all" at the simulated station, which fetches, verifies
  and prints each job; the clock stops when the station shows "done" (every job printed).
* **CUPS**: a private cupsd with a raw queue to the same printer; each document submitted held
  with `lp -H hold`, then released with `lp -i ID -H resume`, and the clock stops when the
  queue is empty (`lpstat -o`).

Printed: jobs per second for submitting and for releasing, each side, and PullPrint's figure
divided by CUPS's. The lp figures include starting one `lp` process per job, which is how people
use it; `pullprint bench-ipp` compares the raw protocol paths instead.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tools.bench_ipp import small_pdf
from tools.cupsd import PrivateCupsd

if TYPE_CHECKING:
    from tools.rig import LoopRig

QUEUE = "bench"


@dataclass(frozen=True, slots=True)
class Side:
    """One system's figures."""

    submit_s: float
    release_s: float
    jobs: int

    @property
    def submit_per_s(self) -> float:
        """Jobs submitted per second."""
        return self.jobs / self.submit_s

    @property
    def release_per_s(self) -> float:
        """Jobs released (and printed) per second."""
        return self.jobs / self.release_s


@dataclass(frozen=True, slots=True)
class Result:
    """Both sides and their ratios (PullPrint / CUPS; above 1 means PullPrint is faster)."""

    jobs: int
    document_bytes: int
    pullprint: Side
    cups: Side

    def as_dict(self) -> dict[str, object]:
        """For `--json`."""
        out: dict[str, object] = {"jobs": self.jobs, "document_bytes": self.document_bytes}
        for name, side in (("pullprint", self.pullprint), ("cups", self.cups)):
            out[name] = {
                **asdict(side),
                "submit_per_s": round(side.submit_per_s, 1),
                "release_per_s": round(side.release_per_s, 1),
            }
        out["ratio_submit"] = round(self.pullprint.submit_per_s / self.cups.submit_per_s, 2)
        out["ratio_release"] = round(self.pullprint.release_per_s / self.cups.release_per_s, 2)
        return out


def _pullprint_side(work: Path, jobs: int, document: bytes) -> tuple[Side, str, LoopRig]:
    """Run PullPrint's half; returns the figures, the printer's URI and the rig (still open)."""
    from hardware.readers.formats import h10301  # noqa: PLC0415 - heavy imports only when run
    from station.screens import DoneScreen, ErrorScreen, JobListScreen  # noqa: PLC0415
    from station.workflow import Button  # noqa: PLC0415
    from tools.rig import LoopRig  # noqa: PLC0415

    badge = h10301(42, 4242)
    rig = LoopRig(work / "rig", done_s=0.2, error_s=0.2).start()
    user = rig.enrol("bench@example.org", "Bench", badge)
    headers = {"Authorization": f"Bearer {user.token}", "Content-Type": "application/pdf"}
    started = time.perf_counter()
    for number in range(jobs):
        response = rig.http.post(
            f"{rig.cloud_url}/api/v1/jobs",
            params={"name": f"doc-{number}.pdf"},
            data=document,
            headers=headers,
            timeout=60,
        )
        if response.status_code != 201:
            raise RuntimeError(f"submit failed: {response.status_code} {response.text[:200]}")
    submit_s = time.perf_counter() - started

    tapped = rig.tap(badge)
    listed = rig.screens.wait_for((JobListScreen, ErrorScreen), after=tapped, timeout_s=30)
    if listed is None or not isinstance(listed[1], JobListScreen):
        raise RuntimeError(f"the station did not list the jobs: {listed}")
    if len(listed[1].jobs) != jobs:
        raise RuntimeError(f"the station listed {len(listed[1].jobs)} of {jobs} jobs")
    pressed = rig.press(Button.PRINT_ALL)
    finished = rig.screens.wait_for((DoneScreen, ErrorScreen), after=pressed, timeout_s=600)
    if finished is None or not isinstance(finished[1], DoneScreen):
        raise RuntimeError(f"the release did not finish: {finished}")
    release_s = finished[0] - tapped
    assert rig.printer is not None
    printed = len(rig.printer.received)
    if printed != jobs:
        raise RuntimeError(f"the printer completed {printed} of {jobs} jobs")
    return Side(submit_s, release_s, jobs), rig.printer.uri, rig


def _cups_side(jobs: int, document: bytes, printer_uri: str) -> Side:
    """Run CUPS's half against the same printer."""
    root = Path(tempfile.mkdtemp(prefix="pp-bench-cupsd-", dir="/tmp"))  # readable by user lp
    cupsd = PrivateCupsd(root, keep_history=False)
    path = root / "doc.pdf"
    path.write_bytes(document)
    path.chmod(0o644)
    try:
        cupsd.start()
        added = cupsd.run("lpadmin", "-p", QUEUE, "-E", "-v", printer_uri, "-m", "raw")
        if added.returncode != 0:
            raise RuntimeError(f"lpadmin failed: {added.stderr}")
        ids = []
        started = time.perf_counter()
        for _ in range(jobs):
            done = cupsd.run("lp", "-d", QUEUE, "-H", "hold", "-o", "raw", str(path))
            if done.returncode != 0:
                raise RuntimeError(f"lp failed: {done.stderr}")
            # "request id is bench-12 (1 file(s))"
            ids.append(done.stdout.split("request id is ", 1)[1].split()[0])
        submit_s = time.perf_counter() - started

        started = time.perf_counter()
        for job in ids:
            done = cupsd.run("lp", "-i", job, "-H", "resume")
            if done.returncode != 0:
                raise RuntimeError(f"lp -H resume failed: {done.stderr}")
        deadline = time.monotonic() + 600
        while cupsd.run("lpstat", "-o", QUEUE).stdout.strip():
            if time.monotonic() > deadline:
                raise RuntimeError("CUPS did not finish the jobs in 10 minutes")
            time.sleep(0.02)
        release_s = time.perf_counter() - started
    finally:
        cupsd.stop()
        shutil.rmtree(root, ignore_errors=True)
    return Side(submit_s, release_s, jobs)


def bench_release(jobs: int, document_kb: int) -> Result:
    """Run both sides; raise RuntimeError with the reason when either cannot complete."""
    missing = [t for t in ("cupsd", "lp", "lpadmin", "lpstat") if shutil.which(t) is None]
    if missing:
        raise RuntimeError(f"missing {missing}: apt-get install --no-install-recommends cups")
    document = small_pdf(document_kb * 1024)
    with tempfile.TemporaryDirectory(prefix="pp-bench-release-") as tmp:
        work = Path(tmp)
        ours, printer_uri, rig = _pullprint_side(work, jobs, document)
        try:
            assert rig.printer is not None
            printed_before = len(rig.printer.received)
            theirs = _cups_side(jobs, document, printer_uri)
            printed = len(rig.printer.received) - printed_before
            if printed != jobs:
                raise RuntimeError(f"CUPS delivered {printed} of {jobs} jobs to the printer")
        finally:
            rig.close()
    return Result(jobs, len(document), ours, theirs)


def print_table(result: Result) -> None:
    """The figures, one line per measure."""
    figures = result.as_dict()
    print(f"{result.jobs} jobs of {result.document_bytes} bytes, same printer, same machine")
    print(f"{'':24}{'PullPrint':>12}{'CUPS':>12}{'ratio':>8}")
    print(
        f"{'submit (jobs/s)':24}{result.pullprint.submit_per_s:12.1f}"
        f"{result.cups.submit_per_s:12.1f}{figures['ratio_submit']:8}"
    )
    print(
        f"{'release+print (jobs/s)':24}{result.pullprint.release_per_s:12.1f}"
        f"{result.cups.release_per_s:12.1f}{figures['ratio_release']:8}"
    )


def _cmd(args: argparse.Namespace) -> int:
    from tools.cli import CliError  # noqa: PLC0415 - avoids an import cycle at load time

    if args.jobs < 1 or args.kb < 1:
        raise CliError("--jobs and --kb must be positive")
    try:
        result = bench_release(args.jobs, args.kb)
    except RuntimeError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print_table(result)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `pullprint bench-release`."""
    parser = sub.add_parser(
        "bench-release", help="submit, hold and release N jobs: PullPrint against CUPS"
    )
    parser.add_argument("--jobs", type=int, default=100, help="documents per side")
    parser.add_argument("--kb", type=int, default=100, help="size of each document in KiB")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=_cmd)
