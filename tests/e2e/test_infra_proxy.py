"""IPP INFRA end to end: a user prints over IPP to the cloud, authorises the release at the
printer's station, and the station's INFRA proxy pulls the job through the standard PWG 5100.18
operations and prints it on a real IPP Everywhere printer (Debian's ippeveprinter).

Everything is real and on 127.0.0.1: the cloud app under uvicorn, ippeveprinter with a private
D-Bus, the station's signing key and its proxy thread; the user's print is an IPP Print-Job with
an app passcode, as CUPS sends it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from cloud.ipp.infra import INFRA_PATH
from hardware.ipp.codec import Attribute
from hardware.ipp.enums import JobState, Operation, StatusCode, Tag
from hardware.printers.ipp import IppPrinterTransport
from hardware.printers.transport import PrintJob
from station.infra_proxy import InfraClient, InfraProxy
from station.signing import SignatureAuth
from tests.cloud.conftest import PairedStation, SignedAuth, make_config, pair_station
from tests.cloud.ipp.conftest import IppWorld, start_world
from tests.support.ippeve import IppEvePrinter
from tools.samples import make_pdf

PDF = make_pdf(["INFRA end to end", "pulled by the printer's proxy"])
DEVICE = f"urn:uuid:{uuid.uuid4()}"


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[IppEvePrinter]:
    with IppEvePrinter(tmp_path / "printer") as started:
        yield started


@pytest.fixture
def world(tmp_path: Path) -> Iterator[IppWorld]:
    started = start_world(make_config(tmp_path / "cloud"))
    try:
        yield started
    finally:
        started.server.stop()


def _print(world: IppWorld, name: str) -> None:
    answer = world.call(
        Operation.PRINT_JOB,
        Attribute.of("requesting-user-name", Tag.NAME_WITHOUT_LANGUAGE, "ada"),
        Attribute.of("job-name", Tag.NAME_WITHOUT_LANGUAGE, name),
        Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, "application/pdf"),
        data=PDF,
    )
    assert answer.is_success, answer


def _authorise_at_station(world: IppWorld, station: PairedStation) -> list[dict[str, object]]:
    """The badge tap and "Print all" at the station, in infra delivery mode."""
    auth = SignedAuth(station, lambda: datetime.now(UTC))
    opened = httpx.post(
        f"{world.server.url}/api/v1/station/sessions", json={"tag": world.tag}, auth=auth
    )
    assert opened.status_code == 201, opened.text
    released = httpx.post(
        f"{world.server.url}/api/v1/station/sessions/{opened.json()['session_id']}/infra-releases",
        json={"all": True},
        auth=auth,
        timeout=30,
    )
    assert released.status_code == 201, released.text
    items: list[dict[str, object]] = released.json()["releases"]
    return items


def _proxy(
    world: IppWorld, station: PairedStation, printer: IppEvePrinter, tmp: Path
) -> InfraProxy:
    client = InfraClient(
        f"ipp://127.0.0.1:{world.server.port}{INFRA_PATH}",
        auth=SignatureAuth(station.identity, str(station.principal.id)),
    )
    spool = tmp / "proxy-spool"
    spool.mkdir(exist_ok=True)
    return InfraProxy(client, IppPrinterTransport(printer.uri, poll_interval_s=0.2), spool, DEVICE)


def _wait(condition: object, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_the_proxy_pulls_a_released_job_to_ippeveprinter(
    world: IppWorld, printer: IppEvePrinter, tmp_path: Path
) -> None:
    station = pair_station(world.service, "Floor 2", printer.uri)
    world.server.app.state.infra.operations.notify_wait_s = 2.0  # a quick stop at the end
    proxy = _proxy(world, station, printer, tmp_path)
    stop = threading.Event()
    runner = threading.Thread(target=proxy.run, args=(stop,), kwargs={"retry_s": 0.5}, daemon=True)
    runner.start()
    try:
        _print(world, "quarterly.pdf")
        time.sleep(1.0)  # the proxy is registered and polling: a held job is not fetchable
        assert printer.documents() == [], "printed before its owner authorised the release"

        [released] = _authorise_at_station(world, station)
        _wait(lambda: proxy.printed)
        [document] = printer.documents()
        assert document.read_bytes() == PDF
        assert str(released["release_id"]) in document.name  # the printer job is the release
        job = world.service.jobs.get(uuid.UUID(str(released["job_id"])))
        assert job.state == "printed"
        assert world.service.jobs.list_held(world.user.id) == []
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive()
    assert len(printer.documents()) == 1, "printed once"


def test_a_proxy_restarted_mid_job_reports_what_the_printer_did_and_never_reprints(
    world: IppWorld, printer: IppEvePrinter, tmp_path: Path
) -> None:
    station = pair_station(world.service, "Floor 2", printer.uri)
    first = _proxy(world, station, printer, tmp_path)
    first.register()
    _print(world, "crash.pdf")
    [released] = _authorise_at_station(world, station)
    job_id = int(str(released["ipp_job_id"]))
    job_attr = Attribute.of("job-id", Tag.INTEGER, job_id)
    device = Attribute.of("output-device-uuid", Tag.URI, DEVICE)

    # The first proxy takes the job and prints it, then dies before telling the cloud.
    client = InfraClient(
        f"ipp://127.0.0.1:{world.server.port}{INFRA_PATH}",
        auth=SignatureAuth(station.identity, str(station.principal.id)),
    )
    client.call(Operation.FETCH_JOB, job_attr, device)
    client.call(Operation.ACKNOWLEDGE_JOB, job_attr, device)
    transport = IppPrinterTransport(printer.uri, poll_interval_s=0.2)
    transport.deliver(PrintJob(str(released["release_id"]), "Ada", "application/pdf"), [PDF])
    assert len(printer.documents()) == 1

    # A new proxy starts: the job is not fetchable (it was acknowledged) but not completed;
    # the printer says it completed, so it is reported, not printed again.
    second = _proxy(world, station, printer, tmp_path)
    second.register()
    assert second.fetchable() == []
    report = second.recover()
    assert report.printed == [job_id]
    assert len(printer.documents()) == 1, "printed once"
    job = world.service.jobs.get(uuid.UUID(str(released["job_id"])))
    assert job.state == "printed"
    gone = client.call(
        Operation.FETCH_DOCUMENT, job_attr, device, ok=(StatusCode.CLIENT_ERROR_NOT_FETCHABLE,)
    )
    assert gone.status_code == StatusCode.CLIENT_ERROR_NOT_FETCHABLE
    state = client.call(Operation.GET_JOB_ATTRIBUTES, job_attr, device)
    assert state.get_int(Tag.JOB_ATTRIBUTES, "job-state") == JobState.COMPLETED


def test_pullprint_infra_proxy_runs_from_the_station_config(
    world: IppWorld, printer: IppEvePrinter, tmp_path: Path
) -> None:
    """The command a station runs (`pullprint infra proxy --config station.toml`), as a process:
    it signs with the station's key file, pulls the released job, and stops on SIGTERM."""
    import os
    import signal
    import subprocess
    import sys

    from station.pairing import write_site_key
    from station.signing import load_or_create_identity
    from tests.cloud.conftest import SITE_KEY
    from tools.infra_cmd import device_uuid_for

    state = tmp_path / "station"
    state.mkdir(mode=0o700)
    identity = load_or_create_identity(state / "station.key")
    write_site_key(SITE_KEY, state / "site.key")
    issued = world.service.pairing.request(
        identity.signing_public, identity.exchange_public, "127.0.0.1"
    )
    approved = world.service.pairing.approve(
        issued.user_code, site_key=SITE_KEY, printer_name="Floor 2", printer_uri=printer.uri
    )
    world.server.app.state.infra.operations.notify_wait_s = 2.0
    config = state / "station.toml"
    config.write_text(
        '[station]\nname = "Floor 2"\n'
        f'[cloud]\nurl = "{world.server.url}"\nstation_id = "{approved.station_id}"\n'
        f'[identity]\nkey_file = "{state / "station.key"}"\n'
        f'[site]\nkey_file = "{state / "site.key"}"\n'
        f'[printer]\nuri = "{printer.uri}"\n'
        f'[spool]\ndir = "{state / "spool"}"\n'
    )
    os.chmod(config, 0o600)
    proxy = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "infra", "proxy", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        from cloud.identity import StationPrincipal

        station = StationPrincipal(approved.station_id, approved.site, "Floor 2", printer.uri)
        infra = world.server.app.state.infra.infra
        _wait(lambda: infra.for_station(station).device_id is not None, 30)
        _print(world, "from-the-command.pdf")
        session = world.service.sessions.open(station, world.tag)
        [made] = infra.release(station, session.id, None)
        _wait(printer.documents, 60)
        _wait(lambda: world.service.jobs.get(made.cloud_job_id).state == "printed", 30)
        assert printer.documents()[0].read_bytes() == PDF
    finally:
        proxy.send_signal(signal.SIGTERM)
        output, _ = proxy.communicate(timeout=30)
    assert proxy.returncode == 0, output
    assert device_uuid_for(str(approved.station_id)) in output
