"""`pullprint bench-ipp`: IPP submissions to our endpoint and to a private cupsd, one ipptool file.

Both peers run on 127.0.0.1 in one run and get byte-identical work from one generated ipptool file:

1. `jobs` Print-Jobs of a small (~100 KB) PDF with `job-hold-until=indefinite`, listed `jobs` times
   in one file, so ipptool sends them over one keep-alive connection: jobs/s for each and the ratio.
2. One large document (default 100 MB, generated to a temp file): MB/s for each and the ratio.

The peer is Debian's cupsd started privately (its own ServerRoot, `MaxJobs 0`, a raw queue
`hold` on `file:///dev/null` whose jobs stay held, so nothing is ever printed or sent anywhere);
ours is the embedded cloud with a user and an app passcode, credentials in the URI. Figures are
printed, never asserted (IPP-NOTES.md, "CUPS as a peer for benchmarks").

Times are ipptool's wall clock, one process per file: its start-up (a few ms) is in the figures,
and against ours the first request's 401 + retry with Basic credentials (libcups then keeps
sending them on the connection). Beside them, each server's own CPU time per job (ours: this
process's CPU time while ipptool runs; cupsd: its utime + stime from /proc): on a shared or busy
machine wall-clock figures swing with the load, CPU per job much less.

The peers do not do the same work: cupsd writes the spool file and does not fsync it, while the
cloud encrypts every document (AES-256-GCM), hashes it, and acknowledges a job only once the blob
and its directory are fsynced and the row is committed (a job acknowledged survives a crash).

`--tls` runs both over `ipps://`: ours with a managed self-signed certificate, cupsd with the
self-signed certificate it creates for itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tools.cupsd import PrivateCupsd, environment_without_proxies, tool

MIB = 1024 * 1024
EMAIL = "bench@example.org"
SMALL_BYTES = 100_000
QUEUE = "hold"


@dataclass(frozen=True)
class BenchIppOptions:
    """What to measure."""

    jobs: int = 500
    big_mb: int = 100
    json_output: bool = False
    tls: bool = False


@dataclass(frozen=True)
class PeerFigures:
    """One peer's figures."""

    jobs: int
    jobs_s: float
    jobs_per_s: float
    big_bytes: int
    big_s: float
    big_mb_per_s: float
    cpu_ms_per_job: float  # the server's CPU time per small job
    big_cpu_s: float  # the server's CPU time for the large document


def small_pdf(size: int = SMALL_BYTES) -> bytes:
    """A valid one-page PDF of about `size` bytes (random text lines, so it compresses poorly)."""
    from tools.samples import make_pdf  # noqa: PLC0415 - loads only when used

    lines: list[str] = []
    document = make_pdf(lines)
    while len(document) < size:
        lines.extend(os.urandom(40).hex() for _ in range(max(1, (size - len(document)) // 60)))
        document = make_pdf(lines, title="bench")
    return document


def write_big_document(path: Path, size: int) -> None:
    """`size` bytes starting like a PDF, written in 1 MiB blocks (never held whole in memory)."""
    block = os.urandom(MIB)
    with path.open("wb") as out:
        written = 0
        out.write(b"%PDF-1.4\n")
        written += 9
        while written < size:
            n = min(MIB, size - written)
            out.write(block[:n])
            written += n


# First in every file: a request without a document, as CUPS's own backend sends Validate-Job or
# Create-Job before any document. Against ours it draws the 401 that makes libcups send the
# credentials from the URI; without it the first Print-Job carries its whole document
# anonymously, and a large one over ipps:// then stalls libcups on the 401 (see the report).
OPENER = """{
  NAME "Get-Jobs (opens the connection)"
  OPERATION Get-Jobs
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name $user
  ATTR keyword requested-attributes job-id
  ATTR integer limit 1
  STATUS successful-ok
}
"""


def ipptool_file(path: Path, document: Path, repeat: int, job_name: str) -> None:
    """An ipptool file: `OPENER`, then `repeat` held Print-Jobs of `document`, one connection."""
    test = f"""{{
  NAME "Print-Job held {job_name}"
  OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name $user
  ATTR name job-name "{job_name}"
  ATTR mimeMediaType document-format application/pdf
  GROUP job-attributes-tag
  ATTR keyword job-hold-until indefinite
  FILE "{document}"
  STATUS successful-ok
}}
"""
    path.write_text(OPENER + test * repeat)


def run_ipptool(test_file: Path, uri: str, timeout_s: float) -> float:
    """Run ipptool once; the wall-clock seconds it took. Raises if any request failed."""
    started = time.monotonic()
    safe = uri.rsplit("@", maxsplit=1)[-1]  # never show the passcode in the URI
    try:
        done = subprocess.run(  # noqa: S603 - a fixed tool and a file of our own
            [tool("ipptool"), "-q", "-T", str(int(timeout_s)), uri, str(test_file)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=environment_without_proxies(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"ipptool against {safe} took over {timeout_s:.0f} s") from None
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"ipptool against {safe} exited {done.returncode}: "
            f"{(done.stdout + done.stderr)[-1500:]}"
        )
    return elapsed


class HoldingCupsd(PrivateCupsd):
    """The private cupsd with a queue `hold` whose jobs stay held."""

    def __init__(self, root: Path, *, tls: bool = False) -> None:
        super().__init__(root, file_device=True, keep_history=False)
        self.tls = tls

    @property
    def queue_uri(self) -> str:
        """The held queue's IPP URI (ipps: cupsd answers TLS on the same port)."""
        return f"{'ipps' if self.tls else 'ipp'}://127.0.0.1:{self.port}/printers/{QUEUE}"

    def start(self) -> None:
        """Start cupsd and add the queue."""
        # cupsd makes its self-signed certificate here (ServerKeychain) on the first TLS client.
        (self.root / "etc/ssl").mkdir(parents=True, exist_ok=True)
        super().start()
        # A raw queue on /dev/null that holds every job by default too: nothing leaves the host.
        # Right after start-up cupsd sometimes drops the first lpadmin connection: retry.
        for _attempt in range(20):
            added = self.run(
                "lpadmin", "-p", QUEUE, "-E", "-v", "file:///dev/null", "-m", "raw",
                "-o", "job-hold-until-default=indefinite",
            )  # fmt: skip
            if added.returncode == 0:
                return
            time.sleep(0.25)
        raise RuntimeError(f"lpadmin failed: {added.stderr}\n{self.log()}")

    def held_jobs(self) -> int:
        """How many jobs the queue holds (`lpstat -o`)."""
        listed = self.run("lpstat", "-o", QUEUE).stdout
        return len([line for line in listed.splitlines() if line.strip()])


@dataclass
class Cloud:
    """The embedded cloud on loopback with one user and an app passcode."""

    server: Any
    api_token: str
    passcode: str

    @property
    def print_uri(self) -> str:
        """ipp(s)://email:passcode@127.0.0.1:port/ipp/print (`%40` for the @)."""
        user = urllib.parse.quote(EMAIL, safe="")
        scheme = "ipps" if self.server.certificates is not None else "ipp"
        return f"{scheme}://{user}:{self.passcode}@127.0.0.1:{self.server.port}/ipp/print"

    def held_jobs(self) -> int:
        """The user's held jobs, through the REST API."""
        import httpx  # noqa: PLC0415 - the cloud stack loads only when used

        certificates = self.server.certificates
        verify: ssl.SSLContext | bool = True
        if certificates is not None:  # trust exactly the self-signed certificate it serves
            verify = ssl.create_default_context(cafile=certificates.cert_file)
        reply = httpx.get(
            f"{self.server.url}/api/v1/jobs",
            headers={"Authorization": f"Bearer {self.api_token}"},
            timeout=60,
            verify=verify,
        )
        reply.raise_for_status()
        return len(reply.json()["jobs"])


def start_cloud(data_dir: Path, *, tls: bool = False) -> Cloud:
    """Fresh secrets in `data_dir`, the app under uvicorn on 127.0.0.1, a user with a passcode.

    With `tls`, it serves `ipps://` with a managed self-signed certificate.
    """
    from cloud.app import create_app  # noqa: PLC0415 - the cloud stack loads only when used
    from cloud.config import generate_secrets, load_config  # noqa: PLC0415 - as above
    from cloud.server import prepare_tls, start_in_thread  # noqa: PLC0415 - as above

    data_dir.mkdir(parents=True, exist_ok=True)
    generate_secrets(data_dir / "secrets.toml")
    env = {"PULLPRINT_DATA_DIR": str(data_dir)}
    if tls:
        env.update(PULLPRINT_TLS="self-signed", PULLPRINT_TLS_HOSTNAMES="localhost,127.0.0.1")
    config = load_config(None, env)
    app = create_app(config, run_sweeper=False)
    server = start_in_thread(app, certificates=prepare_tls(config))
    try:
        service = app.state.service
        issued = service.identity.create_user(EMAIL, "Bench")
        passcode = service.passcodes.issue(issued.id, "bench-ipp").passcode
    except BaseException:
        server.stop()
        raise
    return Cloud(server=server, api_token=issued.api_token, passcode=passcode)


@dataclass
class BenchIppResult:
    """Both peers' figures, the ratios, and what each peer ended up holding."""

    jobs: int
    small_bytes: int
    big_bytes: int
    ours: PeerFigures
    cupsd: PeerFigures
    jobs_ratio: float
    mb_ratio: float
    ours_held: int
    cupsd_held: int
    cpus: int | None
    tls: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


CpuClock = Callable[[], float]


def own_cpu_s() -> float:
    """CPU seconds of this process, every thread (the embedded cloud's server runs here)."""
    return time.process_time()


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of another process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(
    uri: str, small_file: Path, big_file: Path, jobs: int, big: int, *, cpu: CpuClock
) -> PeerFigures:
    cpu_0 = cpu()
    jobs_s = run_ipptool(small_file, uri, timeout_s=max(60.0, jobs * 2.0))
    cpu_1 = cpu()
    big_s = run_ipptool(big_file, uri, timeout_s=max(120.0, big / MIB * 5))
    cpu_2 = cpu()
    return PeerFigures(
        jobs=jobs,
        jobs_s=jobs_s,
        jobs_per_s=jobs / jobs_s,
        big_bytes=big,
        big_s=big_s,
        big_mb_per_s=big / MIB / big_s,
        cpu_ms_per_job=(cpu_1 - cpu_0) / jobs * 1000,
        big_cpu_s=cpu_2 - cpu_1,
    )


def bench_ipp(options: BenchIppOptions) -> BenchIppResult:
    """Start both peers, run the same ipptool files against each, stop everything."""
    if options.jobs < 1 or options.big_mb < 1:
        raise ValueError("--jobs and --big-mb must be at least 1")
    missing = [tool for tool in ("ipptool", "cupsd", "lpadmin", "lpstat") if not shutil.which(tool)]
    if missing:
        raise RuntimeError(f"missing {missing}: apt-get install cups cups-ipp-utils")
    big = options.big_mb * MIB
    # Not under a private tmp: cupsd reads the documents and runs helpers as user lp.
    root = Path(tempfile.mkdtemp(prefix="pullprint-bench-ipp-", dir="/tmp"))
    cupsd: HoldingCupsd | None = None
    cloud: Cloud | None = None
    try:
        work = root / "work"
        work.mkdir()
        small_doc, big_doc = work / "small.pdf", work / "big.pdf"
        small_doc.write_bytes(small_pdf())
        write_big_document(big_doc, big)
        small_test, big_test = work / "small-jobs.test", work / "big-job.test"
        ipptool_file(small_test, small_doc, options.jobs, "small")
        ipptool_file(big_test, big_doc, 1, "big")
        for path in (root, work, *work.iterdir()):
            path.chmod(0o777 if path.is_dir() else 0o666)

        cupsd = HoldingCupsd(root / "cupsd", tls=options.tls)
        cupsd.start()
        cloud = start_cloud(root / "cloud", tls=options.tls)
        assert cupsd.pid is not None
        cupsd_pid = cupsd.pid
        # Alternate the peers: cupsd first, then ours, so neither gets only a warm cache.
        theirs = _measure(
            cupsd.queue_uri,
            small_test,
            big_test,
            options.jobs,
            big,
            cpu=lambda: process_cpu_s(cupsd_pid),
        )
        ours = _measure(cloud.print_uri, small_test, big_test, options.jobs, big, cpu=own_cpu_s)
        return BenchIppResult(
            jobs=options.jobs,
            small_bytes=small_doc.stat().st_size,
            big_bytes=big,
            ours=ours,
            cupsd=theirs,
            jobs_ratio=ours.jobs_per_s / theirs.jobs_per_s,
            mb_ratio=ours.big_mb_per_s / theirs.big_mb_per_s,
            ours_held=cloud.held_jobs(),
            cupsd_held=cupsd.held_jobs(),
            cpus=os.cpu_count(),
            tls=options.tls,
        )
    finally:
        if cloud is not None:
            cloud.server.stop()
        if cupsd is not None:
            cupsd.stop()
        shutil.rmtree(root, ignore_errors=True)


def print_table(result: BenchIppResult) -> None:
    """The figures as a small table."""
    scheme = "ipps (TLS)" if result.tls else "ipp"
    print(
        f"PullPrint bench-ipp ({result.cpus} CPUs, loopback, {scheme}, ipptool over one "
        f"keep-alive connection, jobs held with job-hold-until=indefinite)"
    )
    ours, theirs = result.ours, result.cupsd
    print(f"  {'':<34} {'PullPrint':>12} {'cupsd':>12} {'ratio':>8}")
    print(
        f"  {f'{result.jobs} Print-Jobs of {result.small_bytes // 1000} KB':<34} "
        f"{ours.jobs_per_s:>8.1f} j/s {theirs.jobs_per_s:>8.1f} j/s "
        f"{result.jobs_ratio:>7.2f}x"
    )
    print(
        f"  {'  server CPU per job':<34} {ours.cpu_ms_per_job:>9.2f} ms "
        f"{theirs.cpu_ms_per_job:>9.2f} ms"
    )
    print(
        f"  {f'one {result.big_bytes // MIB} MB document':<34} "
        f"{ours.big_mb_per_s:>7.1f} MB/s {theirs.big_mb_per_s:>7.1f} MB/s "
        f"{result.mb_ratio:>7.2f}x"
    )
    print(f"  {'  server CPU':<34} {ours.big_cpu_s:>10.2f} s {theirs.big_cpu_s:>10.2f} s")
    print(f"  held jobs afterwards: PullPrint {result.ours_held}, cupsd {result.cupsd_held}")
    print("  (PullPrint encrypts and fsyncs every job before acknowledging it; cupsd does neither)")


def run_bench_ipp(options: BenchIppOptions) -> int:
    """Run the benchmark and print its figures (a table, or one JSON object)."""
    result = bench_ipp(options)
    if options.json_output:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print_table(result)
    return 0


def _cmd_bench_ipp(args: argparse.Namespace) -> int:
    from tools.cli import CliError  # noqa: PLC0415 - tools.cli imports this module

    options = BenchIppOptions(
        jobs=args.jobs, big_mb=args.big_mb, json_output=args.json, tls=args.tls
    )
    try:
        return run_bench_ipp(options)
    except (RuntimeError, ValueError) as exc:
        raise CliError(str(exc)) from exc


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `bench-ipp` to the command tree."""
    bench = sub.add_parser(
        "bench-ipp", help="IPP jobs/s and MB/s: our endpoint vs a private cupsd, same ipptool file"
    )
    bench.add_argument("--jobs", type=int, default=500, help="held Print-Jobs of a ~100 KB PDF")
    bench.add_argument("--big-mb", type=int, default=100, help="size of the large document")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--tls", action="store_true", help="both peers over ipps://")
    bench.set_defaults(func=_cmd_bench_ipp)
