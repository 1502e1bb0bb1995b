"""Debian's ipptool conformance files against the real cloud on 127.0.0.1 (IPP-NOTES.md).

Each file runs as `ipptool -tv -T 30 -f testfile.pdf URI FILE` in a directory holding a copy of the
file and the documents it prints, generated on the spot (`samples`). Credentials go in the URI
(`ipp://email:passcode@host:port/...`), which ipptool turns into HTTP Basic after the 401.

ipp-1.1.test (included by ipp-2.0.test and ipp-everywhere.test) waits for its first job to
complete and then expects a completed job: in pull printing a job completes when its owner
releases it at a printer, so a `ReleasingUser` plays the user at a printer meanwhile.
print-job-hold.test runs without one: it releases its own held job with Release-Job.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cloud.ipp.conftest import IppWorld, ReleasingUser, environment_without_proxies
from tests.cloud.ipp.samples import add_placeholders, make_basic_documents, make_raster_documents

IPPTOOL_DIR = Path("/usr/share/cups/ipptool")
# What the queue advertises in pwg-raster-document-resolution/type-supported (cloud.ipp.printer).
RASTER_RESOLUTIONS = (150, 300)
RASTER_TYPES = ("black-1", "sgray-8", "srgb-8")


@pytest.fixture(autouse=True, scope="module")
def _peers_installed() -> None:
    # The test command installs them (tools/quickstart.sh): missing means a broken set-up, which
    # must fail loudly rather than pass as skipped.
    missing = [tool for tool in ("ipptool", "gs") if shutil.which(tool) is None]
    assert not missing, f"missing {missing}: apt-get install cups-ipp-utils ghostscript"


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ipptool")
    make_basic_documents(directory)
    make_raster_documents(directory, RASTER_RESOLUTIONS, RASTER_TYPES)
    for name in ("ipp-1.1.test", "ipp-2.0.test", "ipp-everywhere.test", "print-job-hold.test"):
        shutil.copy(IPPTOOL_DIR / name, directory / name)
    add_placeholders(directory, directory / "ipp-everywhere.test")
    return directory


def run_ipptool(
    world: IppWorld, directory: Path, test_file: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ipptool",
            "-tv",
            "-T",
            "30",
            "-f",
            "testfile.pdf",
            world.uri_with_credentials(),
            test_file,
        ],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=240,
        env=environment_without_proxies(),
        check=False,
    )


_RESULT = re.compile(r"^\s{4}(\S.*?)\s+\[(PASS|FAIL|SKIP)\]$")
_RASTER = re.compile(r"@ (\d+)dpi, ([a-z0-9-]+)(, (deflate|gzip))?$")


def results(stdout: str) -> dict[str, list[str]]:
    """Test name -> outcomes (a name may repeat), from ipptool -t output."""
    out: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        found = _RESULT.match(line)
        if found:
            out.setdefault(found.group(1), []).append(found.group(2))
    return out


def assert_passed(result: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    """Exit status 0, no [FAIL], and no file-level error (ipptool then still exits 0)."""
    lines = result.stdout.splitlines()
    failed = [line.strip() for line in lines if line.rstrip().endswith("[FAIL]")]
    shown = "\n".join(lines[-400:]) + "\n" + result.stderr
    assert result.returncode == 0, f"ipptool exited {result.returncode}: {failed}\n{shown}"
    assert not failed, f"ipptool tests failed: {failed}\n{shown}"
    assert "ipptool:" not in result.stdout + result.stderr, f"ipptool error\n{shown}"
    return results(result.stdout)


@pytest.mark.parametrize("test_file", ["ipp-1.1.test", "ipp-2.0.test", "ipp-everywhere.test"])
def test_conformance_file_passes(ipp_world: IppWorld, documents: Path, test_file: str) -> None:
    with ReleasingUser(ipp_world) as at_printer:
        result = run_ipptool(ipp_world, documents, test_file)
    outcomes = assert_passed(result)
    assert at_printer.printed, "the releasing user printed nothing"
    assert outcomes["Get-Job-Attributes Until Job Complete"] == ["PASS"]
    if test_file == "ipp-everywhere.test":
        raster = {name: o for name, o in outcomes.items() if _RASTER.search(name)}
        names = re.findall(r'NAME "(Print [^"]+)"', (documents / test_file).read_text())
        assert set(raster) == set(names)  # every sample test ran or was skipped
        for name, outcome in raster.items():
            found = _RASTER.search(name)
            assert found is not None
            dpi, kind, compressed = int(found.group(1)), found.group(2), found.group(3)
            sent = dpi in RASTER_RESOLUTIONS and kind in RASTER_TYPES and not compressed
            assert outcome == (["PASS"] if sent else ["SKIP"]), name


def test_print_job_hold_passes(ipp_world: IppWorld, documents: Path) -> None:
    result = run_ipptool(ipp_world, documents, "print-job-hold.test")
    assert_passed(result)
    # The job is parked in the user's held list, with what Print-Job said about it.
    held = ipp_world.service.jobs.list_held(ipp_world.user.id)
    assert [job.name for job in held] == ["testfile.pdf"]
    assert held[0].document_format == "application/pdf"
