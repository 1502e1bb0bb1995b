"""The INFRA test files of Debian's `ippsample-data` run with ipptool against `/ipp/infra`.

The package is downloaded and unpacked at test time (`apt-get download` + `dpkg -x`), never
installed: installing the broken `ippsample` package would remove cups (IPP-NOTES.md). ipptool
presents the output device token as the Basic password after the 401 challenge.

What applies, and why not all of each file:

* `get-jobs-fetchable.test` applies as a whole and passes;
* `rfc3995-3996.test` is written for a printer that also takes jobs and can be disabled: its
  subscription tests pass (Create-Printer-Subscriptions with notify-user-data,
  Get-Subscription-Attributes, Get-Subscriptions, Renew-Subscription, Cancel-Subscription,
  Get-Notifications for a canceled subscription), while Disable-Printer / Enable-Printer (there
  is no printer to stop: the queue never stops), Print-Job (clients print at /ipp/print, not at
  the Infrastructure Printer) and the two Get-Notifications checks that wait for the events
  those would have caused cannot apply;
* `pwg5100.18.test` has one test: every operation of the PWG reference server in
  operations-supported. ipptool applies WITH-VALUE to the attribute whenever it is present, so
  even the lines marked optional (`?`) must match: it passes only for a printer advertising
  Print-URI, Pause-Printer, Shutdown-Printer and the other client and administrative
  operations, which the Infrastructure Printer does not implement and so does not claim. The
  test checks that every INFRA operation the file requires is advertised and that only the
  client-side and administrative operations are missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud.ipp.infra import INFRA_PATH
from cloud.ipp.infra_store import Infra
from hardware.ipp.codec import Attribute, IppMessage, decode_message, encode_message
from hardware.ipp.enums import Operation, Tag
from tests.cloud.conftest import make_config, pair_station
from tests.cloud.ipp.conftest import IppWorld, start_world
from tools.cupsd import environment_without_proxies

PACKAGE = "ippsample-data"
# Operations of the INFRA model that pwg5100.18.test requires, and that must be advertised.
INFRA_OPERATIONS = {
    0x0009, 0x000A, 0x000B, 0x0016, 0x0018, 0x0019, 0x001A, 0x001B, 0x001C,
    0x003F, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047, 0x0048, 0x0049,
}  # fmt: skip
_RESULT = re.compile(r"^\s{4}(\S.*?)\s+\[(PASS|FAIL|SKIP)\]$")
_MISSING_OP = re.compile(r'EXPECTED: operations-supported WITH-VALUE "0x([0-9A-Fa-f]{4})"')


@pytest.fixture(scope="module")
def infra_tests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("ipptool", "apt-get", "dpkg"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: tools/quickstart.sh test installs cups-ipp-utils")
    where = tmp_path_factory.mktemp("ippsample-data")
    download = ["apt-get", "download", PACKAGE]
    got = subprocess.run(download, cwd=where, capture_output=True, text=True, check=False)
    if got.returncode != 0:  # a fresh machine has no package lists yet
        subprocess.run(["apt-get", "update"], capture_output=True, check=False, timeout=300)
        got = subprocess.run(download, cwd=where, capture_output=True, text=True, check=False)
    assert got.returncode == 0, f"apt-get download {PACKAGE} failed: {got.stderr}"
    [deb] = where.glob(f"{PACKAGE}_*.deb")
    subprocess.run(["dpkg", "-x", str(deb), str(where / "root")], check=True)
    tests = where / "root/usr/share/cups/ipptool"
    assert (tests / "pwg5100.18.test").is_file()
    (tests / "testfile.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")  # named by -f; never printed
    return tests


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[IppWorld, str]]:
    """A cloud with a registered token device and one job fetchable by it."""
    started = start_world(make_config(tmp_path / "data"))
    try:
        station = pair_station(started.service, "Floor 1")
        infra: Infra = started.server.app.state.infra.infra
        started.server.app.state.infra.operations.notify_wait_s = 2.0  # keeps the run short
        token = infra.issue_token(station.principal.site, station.principal.id).token
        register = IppMessage.request(
            Operation.REGISTER_OUTPUT_DEVICE,
            1,
            Attribute.of("system-uri", Tag.URI, _uri(started)),
            Attribute.of("output-device-uuid", Tag.URI, f"urn:uuid:{uuid.uuid4()}"),
        )
        reply = httpx.post(
            f"{started.server.url}{INFRA_PATH}",
            content=encode_message(register),
            headers={"Content-Type": "application/ipp", "Authorization": f"Bearer {token}"},
        )
        assert decode_message(reply.content)[0].is_success
        started.call(
            Operation.PRINT_JOB,
            Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, "application/pdf"),
            data=b"%PDF-1.4\n%%EOF\n",
        )
        session = started.service.sessions.open(station.principal, started.tag)
        assert infra.release(station.principal, session.id, None)
        yield started, token
    finally:
        started.server.stop()


def _uri(world: IppWorld, token: str | None = None) -> str:
    auth = f"proxy:{token}@" if token else ""
    return f"ipp://{auth}127.0.0.1:{world.server.port}{INFRA_PATH}"


def run(tests: Path, world: IppWorld, token: str, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ipptool", "-tvI", "-T", "20", "-f", "testfile.pdf", _uri(world, token), name],
        cwd=tests,
        capture_output=True,
        text=True,
        timeout=180,
        env=environment_without_proxies(),
        check=False,
    )


def outcomes(stdout: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in stdout.splitlines():
        if found := _RESULT.match(line):
            out.setdefault(found.group(2), set()).add(found.group(1))
    return out


def test_get_jobs_fetchable_passes(infra_tests: Path, world: tuple[IppWorld, str]) -> None:
    result = run(infra_tests, *world, "get-jobs-fetchable.test")
    got = outcomes(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert got.get("FAIL", set()) == set()
    assert len(got["PASS"]) == 2, result.stdout


def test_rfc3995_3996_subscription_tests_pass(
    infra_tests: Path, world: tuple[IppWorld, str]
) -> None:
    result = run(infra_tests, *world, "rfc3995-3996.test")
    got = outcomes(result.stdout)
    assert got["PASS"] >= {
        "Get printer attributes using Get-Printer-Attributes",
        "Create a pull printer subscription",
        "Get subscription attributes",
        "get-subscriptions",
        "renew-subscription",
        "cancel-subscription",
        "get-notifications",
    }, result.stdout
    # Only what cannot apply to an Infrastructure Printer fails (see the module docstring).
    assert got["FAIL"] == {
        "Disable-Printer",
        "Enable-Printer",
        "Get-Notifications conformance check (without event-wait mode)",
        "Print file using Print-Job",
        "Get-Notifications conformance check (including event wait mode)",
    }, result.stdout


def test_pwg5100_18_infra_operations_are_all_advertised(
    infra_tests: Path, world: tuple[IppWorld, str]
) -> None:
    result = run(infra_tests, *world, "pwg5100.18.test")
    missing = {int(code, 16) for code in _MISSING_OP.findall(result.stdout)}
    assert missing, "the file passed: update the module docstring" + result.stdout
    assert not missing & INFRA_OPERATIONS, f"INFRA operations missing: {missing & INFRA_OPERATIONS}"
    # What is missing is the client and administrative side (0x0002-0x0040 outside INFRA).
    client_side = {0x0002, 0x0004, 0x0005, 0x0006, 0x0008, 0x0039, 0x003B, 0x003D}
    assert client_side <= missing
    assert all(code < 0x003F or code == 0x0040 for code in missing), sorted(missing)
