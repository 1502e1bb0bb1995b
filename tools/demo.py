"""`pullprint demo`: one real release, submit to paper, on embedded defaults.

Starts the embedded cloud (temporary SQLite + blob directory), the virtual IPP printer and a
simulated station; enrols a demo user and badge; submits two documents (a PDF made here and a text
file); taps the badge; prints all; shows every screen in the terminal and saves each as PNG; prints
the timings. Exit status 0 only if the printer holds byte-identical documents and the cloud no
longer holds their content.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from hardware.readers.formats import h10301
from station.screens import DoneScreen, ErrorScreen, IdleScreen, JobListScreen, Screen
from station.workflow import Button
from tools.rig import LoopRig
from tools.samples import make_pdf, make_text
from tools.submit import submit_stream


@dataclass(frozen=True)
class DemoOptions:
    """What the demo was asked to do."""

    interactive: bool = False
    json_output: bool = False
    out_dir: Path = Path("demo-out")


DEMO_BADGE = h10301(90, 324)
UNKNOWN_BADGE = h10301(90, 999)

DOCUMENTS: list[tuple[str, str, bytes]] = [
    (
        "Quarterly report.pdf",
        "application/pdf",
        make_pdf(
            [
                "PullPrint demo",
                "",
                "This page was parked encrypted in the cloud,",
                "listed at the station after a badge tap,",
                "and released to the printer.",
            ],
            title="Quarterly report",
        ),
    ),
    (
        "notes.txt",
        "text/plain",
        make_text(["PullPrint demo notes", "Print, park, pull: nothing waits in the output tray."]),
    ),
]


def _box(screen: Screen, out: TextIO) -> None:
    lines = screen.lines()
    width = max([len(line) for line in lines] + [len(screen.label) + 12, 30])
    title = f" station: {screen.label} "
    out.write("┌" + title + "─" * (width + 2 - len(title)) + "┐\n")
    for line in lines:
        out.write(f"│ {line:<{width}} │\n")
    out.write("└" + "─" * (width + 2) + "┘\n")
    out.flush()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_demo(options: DemoOptions) -> int:
    """Run the demo; returns the process exit status."""
    out = sys.stderr if options.json_output else sys.stdout
    options.out_dir.mkdir(parents=True, exist_ok=True)
    for old in options.out_dir.glob("frame-*.png"):
        old.unlink()

    def show(screen: Screen, _at: float) -> None:
        if not options.json_output:
            _box(screen, out)

    with tempfile.TemporaryDirectory(prefix="pullprint-demo-") as tmp:
        rig = LoopRig(
            Path(tmp),
            frames_dir=options.out_dir,
            on_screen=show,
            session_timeout_s=120.0 if options.interactive else 30.0,
        )
        with rig:
            user = rig.enrol("ada@example.org", "Ada Lovelace", DEMO_BADGE)
            jobs = []
            for name, fmt, data in DOCUMENTS:
                job = rig_submit(rig, user.token, name, fmt, data)
                jobs.append(job)
                if not options.json_output:
                    out.write(f"submitted {name!r} ({len(data)} bytes) as job {job['id']}\n")
            if options.interactive:
                return _interactive(rig, jobs, out)
            summary = _scripted(rig, jobs)
        summary["screens"] = [str(p) for p in sorted(options.out_dir.glob("frame-*.png"))]
    if options.json_output:
        print(json.dumps(summary, indent=2))
    else:
        _report(summary, out)
    return 0 if summary["ok"] else 1


def rig_submit(rig: LoopRig, token: str, name: str, fmt: str, data: bytes) -> dict[str, Any]:
    """Submit one document through the REST API, in 16 KiB pieces (sent chunked)."""
    pieces = iter([data[i : i + 16384] for i in range(0, len(data), 16384)])
    return submit_stream(
        rig.cloud_url, token, pieces, name=name, document_format=fmt, session=rig.http
    )


def _scripted(rig: LoopRig, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    problems: list[str] = []
    idle = rig.screens.wait_for(IdleScreen, after=0.0, timeout_s=10)
    if idle is None:
        problems.append("the station never showed its idle screen")

    tapped = rig.tap(DEMO_BADGE)
    listed = rig.screens.wait_for((JobListScreen, ErrorScreen), after=tapped, timeout_s=15)
    if listed is None or not isinstance(listed[1], JobListScreen):
        problems.append("the badge tap did not bring up the job list")
    pressed = rig.press(Button.PRINT_ALL)
    finished = rig.screens.wait_for((DoneScreen, ErrorScreen), after=pressed, timeout_s=120)
    if finished is None:
        problems.append("delivery did not finish within 120 s")
    elif isinstance(finished[1], ErrorScreen):
        problems.append("the station reported an error: " + " / ".join(finished[1].lines()))

    assert rig.printer is not None
    received = rig.printer.received
    printed_by_sha = {_sha(doc.data): doc for doc in received}
    documents = []
    for (name, fmt, data), job in zip(DOCUMENTS, jobs, strict=True):
        status = rig.job_status(job["id"])
        sha_in = _sha(data)
        doc = printed_by_sha.get(sha_in)
        documents.append(
            {
                "name": name,
                "format": fmt,
                "size_bytes": len(data),
                "job_id": job["id"],
                "sha256_submitted": sha_in,
                "sha256_printed": _sha(doc.data) if doc else None,
                "printer_job_id": doc.printer_job_id if doc else None,
                "job_state": status["state"],
                "content_held": status["content_held"],
            }
        )
    if len(received) != len(DOCUMENTS):
        problems.append(
            f"the printer received {len(received)} documents, expected {len(DOCUMENTS)}"
        )
    for d in documents:
        if d["sha256_printed"] != d["sha256_submitted"]:
            problems.append(f"{d['name']}: the printer does not hold identical bytes")
        if d["content_held"]:
            problems.append(f"{d['name']}: the cloud still holds its content")

    timings: dict[str, float | None] = {
        "tap_to_list": None,
        "print_to_first_byte": None,
        "print_to_completed": None,
    }
    if listed is not None:
        timings["tap_to_list"] = round((listed[0] - tapped) * 1000, 1)
    if received:
        timings["print_to_first_byte"] = round(
            (min(doc.first_byte_at or doc.completed_at for doc in received) - pressed) * 1000, 1
        )
    if finished is not None:
        timings["print_to_completed"] = round((finished[0] - pressed) * 1000, 1)
    return {
        "ok": not problems,
        "problems": problems,
        "printer": rig.printer.uri,
        "documents": documents,
        "timings_ms": timings,
    }


def _report(summary: dict[str, Any], out: TextIO) -> None:
    out.write("\nResult\n")
    for d in summary["documents"]:
        same = d["sha256_printed"] == d["sha256_submitted"]
        out.write(
            f"  {d['name']:<24} {d['size_bytes']:>7} B  printed identical: "
            f"{'yes' if same else 'NO'}  cloud content: "
            f"{'still held' if d['content_held'] else 'destroyed'}\n"
        )
    out.write("Timings\n")
    for key, value in summary["timings_ms"].items():
        shown = "n/a" if value is None else f"{value:.1f} ms"
        out.write(f"  {key.replace('_', ' '):<22} {shown}\n")
    out.write(f"Screens saved: {len(summary['screens'])} PNG files\n")
    for problem in summary["problems"]:
        out.write(f"PROBLEM: {problem}\n")
    out.write(
        "OK: the printer holds identical bytes and the cloud no longer holds them\n"
        if summary["ok"]
        else "FAILED\n"
    )


_KEYS = {
    "p": Button.PRINT_ALL,
    "P": Button.PRINT_SELECTED,
    "s": Button.SELECT,
    "u": Button.UP,
    "n": Button.DOWN,
    "d": Button.DELETE,
    "c": Button.CANCEL,
}

_HELP = """keys (then Enter): t = tap Ada's badge, x = tap an unknown badge, p = print all,
  u/n = cursor up/down, s = select, P = print selected, d = delete, c = cancel, q = quit"""


def _interactive(rig: LoopRig, jobs: list[dict[str, Any]], out: TextIO) -> int:
    out.write(_HELP + "\n")
    for line in sys.stdin:
        key = line.strip()
        if key == "q":
            break
        if key == "t":
            rig.tap(DEMO_BADGE)
        elif key == "x":
            rig.tap(UNKNOWN_BADGE)
        elif key in _KEYS:
            rig.press(_KEYS[key])
        elif key:
            out.write(_HELP + "\n")
        time.sleep(0.3)  # let the screen settle before the next prompt
    assert rig.printer is not None
    out.write(f"the printer received {len(rig.printer.received)} document(s)\n")
    for job in jobs:
        status = rig.job_status(job["id"])
        out.write(
            f"  {job['name']}: {status['state']}, content "
            f"{'held' if status['content_held'] else 'destroyed'}\n"
        )
    return 0
