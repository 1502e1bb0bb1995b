"""IPP INFRA (PWG 5100.18) against the real cloud on 127.0.0.1: the station's proxy, a device
token, the fetch life, and the rules (fetchable only after a release at the printer's station,
compare-and-set, nothing printed twice, tenancy)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from cloud.errors import ReleaseConflictError, UnauthorizedError
from cloud.ipp.infra import INFRA_PATH
from cloud.ipp.infra_store import (
    DocumentUnavailableError,
    Infra,
    InfraJobNotFoundError,
    NotFetchableError,
    OutputDeviceNotFoundError,
    ProxyPrincipal,
)
from cloud.service import CloudService
from hardware.ipp.codec import Attribute, AttributeGroup, IppMessage, decode_message, encode_message
from hardware.ipp.enums import JobState, Operation, StatusCode, Tag
from hardware.printers.virtual import VirtualPrinter
from station.infra_proxy import InfraClient, InfraProxy, InfraProxyError
from station.signing import SignatureAuth
from tests.cloud.conftest import (
    Enrolled,
    FakeClock,
    PairedStation,
    SignedAuth,
    blob_files,
    make_config,
    pair_station,
)
from tests.cloud.ipp.conftest import IppWorld, start_world

PDF = b"%PDF-1.4\n" + b"infra test page\n" * 5000 + b"%%EOF\n"  # ~80 KB: several chunks
DEVICE = "urn:uuid:" + str(uuid.uuid4())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[IppWorld]:
    started = start_world(make_config(tmp_path / "data"))
    try:
        yield started
    finally:
        started.server.stop()


@pytest.fixture
def printer() -> Iterator[VirtualPrinter]:
    with VirtualPrinter(processing_s=0.01) as started:
        yield started


def _infra(world: IppWorld) -> Infra:
    infra: Infra = world.server.app.state.infra.infra
    return infra


def _infra_uri(world: IppWorld) -> str:
    return f"ipp://127.0.0.1:{world.server.port}{INFRA_PATH}"


def _submit(world: IppWorld, data: bytes = PDF, name: str = "report.pdf") -> int:
    answer = world.call(
        Operation.PRINT_JOB,
        Attribute.of("requesting-user-name", Tag.NAME_WITHOUT_LANGUAGE, "ada"),
        Attribute.of("job-name", Tag.NAME_WITHOUT_LANGUAGE, name),
        Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, "application/pdf"),
        data=data,
    )
    assert answer.is_success, answer
    job_id = answer.get_int(Tag.JOB_ATTRIBUTES, "job-id")
    assert job_id is not None
    return job_id


def _release_infra(world: IppWorld, station: PairedStation) -> list[dict[str, object]]:
    session = world.service.sessions.open(station.principal, world.tag)
    reply = httpx.post(
        f"{world.server.url}/api/v1/station/sessions/{session.id}/infra-releases",
        json={"all": True},
        auth=SignedAuth(station, lambda: datetime.now(UTC)),
        timeout=30,
    )
    assert reply.status_code == 201, reply.text
    releases: list[dict[str, object]] = reply.json()["releases"]
    return releases


def _proxy(
    world: IppWorld, station: PairedStation, printer: VirtualPrinter, tmp: Path
) -> InfraProxy:
    client = InfraClient(
        _infra_uri(world), auth=SignatureAuth(station.identity, str(station.principal.id))
    )
    spool = tmp / "proxy-spool"
    spool.mkdir(exist_ok=True)
    from hardware.printers.registry import transport_for_uri

    return InfraProxy(client, transport_for_uri(printer.uri), spool, DEVICE)


def _raw(world: IppWorld, message: IppMessage, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{world.server.url}{INFRA_PATH}",
        content=encode_message(message),
        headers={"Content-Type": "application/ipp", **headers},
        timeout=30,
    )


def _request(world: IppWorld, operation: Operation, *attrs: Attribute) -> IppMessage:
    return IppMessage.request(
        operation, 7, Attribute.of("printer-uri", Tag.URI, _infra_uri(world)), *attrs
    )


def test_a_station_proxy_pulls_a_released_job_and_prints_it_once(
    world: IppWorld, printer: VirtualPrinter, tmp_path: Path
) -> None:
    station = pair_station(world.service, "Floor 3", printer.uri)
    _submit(world)
    proxy = _proxy(world, station, printer, tmp_path)
    proxy.register()
    assert proxy.fetchable() == [], "a held job must not be fetchable before its release"

    released = _release_infra(world, station)
    assert len(released) == 1
    report = proxy.poll(wait=True)
    assert report.printed == [released[0]["ipp_job_id"]]
    [document] = printer.wait_for_jobs(1)
    assert document.data == PDF
    assert document.job_name == released[0]["release_id"]  # recovery finds it by release id

    job = world.service.jobs.get(uuid.UUID(str(released[0]["job_id"])))
    assert job.state == "printed"
    assert not list((tmp_path / "proxy-spool").iterdir()), "the spool is emptied"

    # Nothing prints twice: the job is neither fetchable nor fetchable again by id.
    assert proxy.fetchable() == []
    assert proxy.process(int(str(released[0]["ipp_job_id"]))) is False
    assert len(printer.received) == 1


def test_spool_holds_no_plaintext(world: IppWorld, printer: VirtualPrinter, tmp_path: Path) -> None:
    from station.infra_proxy import _SealedSpool

    spool = _SealedSpool(tmp_path)
    spool.write(PDF)
    spool.seal()
    assert b"infra test page" not in spool.path.read_bytes()
    assert b"".join(spool) == PDF
    spool.remove()
    assert not spool.path.exists()


def test_token_device_walks_the_standard_operations(world: IppWorld, tmp_path: Path) -> None:
    station = pair_station(world.service, "Floor 4")
    issued = _infra(world).issue_token(station.principal.site, station.principal.id)
    bearer = {"Authorization": f"Bearer {issued.token}"}
    device = Attribute.of("output-device-uuid", Tag.URI, DEVICE)

    def call(
        op: Operation, *attrs: Attribute, groups: tuple[AttributeGroup, ...] = ()
    ) -> IppMessage:
        message = _request(world, op, *attrs)
        message.groups.extend(groups)
        reply = _raw(world, message, **bearer)
        assert reply.status_code == 200
        decoded, used = decode_message(reply.content)
        call.data = reply.content[used:]  # type: ignore[attr-defined]
        return decoded

    # Before registering, the device has nothing to fetch.
    assert call(Operation.GET_JOBS, device).status_code == StatusCode.CLIENT_ERROR_NOT_FOUND
    registered = call(
        Operation.REGISTER_OUTPUT_DEVICE,
        Attribute.of("system-uri", Tag.URI, _infra_uri(world)),
        device,
    )
    assert registered.is_success
    assert registered.get_str(Tag.PRINTER_ATTRIBUTES, "printer-uri-supported") == _infra_uri(world)
    updated = call(
        Operation.UPDATE_OUTPUT_DEVICE_ATTRIBUTES,
        device,
        groups=(
            AttributeGroup(
                Tag.PRINTER_ATTRIBUTES,
                [Attribute.of("printer-make-and-model", Tag.TEXT_WITHOUT_LANGUAGE, "Acme 9000")],
            ),
        ),
    )
    assert updated.is_success
    got = call(Operation.GET_OUTPUT_DEVICE_ATTRIBUTES, device)
    assert got.get_str(Tag.PRINTER_ATTRIBUTES, "printer-make-and-model") == "Acme 9000"

    sub = call(
        Operation.CREATE_PRINTER_SUBSCRIPTIONS,
        groups=(
            AttributeGroup(
                Tag.SUBSCRIPTION_ATTRIBUTES,
                [
                    Attribute.of("notify-pull-method", Tag.KEYWORD, "ippget"),
                    Attribute.of("notify-events", Tag.KEYWORD, "job-fetchable"),
                ],
            ),
        ),
    )
    sub_id = sub.get_int(Tag.SUBSCRIPTION_ATTRIBUTES, "notify-subscription-id")
    assert sub_id is not None

    _submit(world)
    [released] = _release_infra(world, station)
    job_id = int(str(released["ipp_job_id"]))
    job = Attribute.of("job-id", Tag.INTEGER, job_id)

    events = call(
        Operation.GET_NOTIFICATIONS,
        Attribute.of("notify-subscription-ids", Tag.INTEGER, sub_id),
        Attribute.of("notify-wait", Tag.BOOLEAN, True),
    )
    [event] = events.groups_of(Tag.EVENT_NOTIFICATION_ATTRIBUTES)
    assert event.get_str("notify-subscribed-event") == "job-fetchable"
    assert event.get_int("job-id") == job_id

    listed = call(Operation.GET_JOBS, device, Attribute.of("which-jobs", Tag.KEYWORD, "fetchable"))
    assert [g.get_int("job-id") for g in listed.groups_of(Tag.JOB_ATTRIBUTES)] == [job_id]

    # Acknowledging or fetching the document before Fetch-Job is refused.
    assert (
        call(Operation.ACKNOWLEDGE_JOB, job, device).status_code
        == StatusCode.CLIENT_ERROR_NOT_FETCHABLE
    )
    fetched = call(Operation.FETCH_JOB, job, device)
    assert fetched.is_success
    assert fetched.get_int(Tag.JOB_ATTRIBUTES, "job-state") == JobState.PROCESSING
    assert call(Operation.ACKNOWLEDGE_JOB, job, device).is_success
    assert (
        call(Operation.FETCH_JOB, job, device).status_code == StatusCode.CLIENT_ERROR_NOT_FETCHABLE
    )

    # Another uuid is refused on every device operation.
    other = Attribute.of("output-device-uuid", Tag.URI, "urn:uuid:" + str(uuid.uuid4()))
    assert (
        call(Operation.FETCH_DOCUMENT, job, other).status_code == StatusCode.CLIENT_ERROR_FORBIDDEN
    )

    document = call(Operation.FETCH_DOCUMENT, job, device)
    assert document.is_success
    assert document.get_str(Tag.OPERATION_ATTRIBUTES, "document-format") == "application/pdf"
    assert call.data == PDF  # type: ignore[attr-defined]
    assert call(Operation.ACKNOWLEDGE_DOCUMENT, job, device).is_success

    active = call(
        Operation.UPDATE_ACTIVE_JOBS,
        device,
        Attribute.of("job-ids", Tag.INTEGER, job_id, 999999),
        Attribute.of("output-device-job-states", Tag.ENUM, 5, 5),
    )
    assert active.is_success
    assert active.get(Tag.UNSUPPORTED_ATTRIBUTES, "job-ids") is not None
    assert active.get(Tag.OPERATION_ATTRIBUTES, "job-ids") is None  # ours is still processing

    def status(state: int) -> IppMessage:
        return call(
            Operation.UPDATE_JOB_STATUS,
            job,
            device,
            groups=(
                AttributeGroup(
                    Tag.JOB_ATTRIBUTES, [Attribute.of("output-device-job-state", Tag.ENUM, state)]
                ),
            ),
        )

    assert status(JobState.PROCESSING).is_success
    assert status(JobState.COMPLETED).is_success
    assert status(JobState.COMPLETED).is_success, "a repeated report is idempotent"
    assert status(JobState.ABORTED).status_code == StatusCode.CLIENT_ERROR_NOT_POSSIBLE
    release = world.service.releases  # the release is printed and the content destroyed
    assert release is not None
    done = call(Operation.GET_JOB_ATTRIBUTES, job, device)
    assert done.get_int(Tag.JOB_ATTRIBUTES, "job-state") == JobState.COMPLETED
    assert (
        call(Operation.FETCH_DOCUMENT, job, device).status_code
        == StatusCode.CLIENT_ERROR_NOT_FETCHABLE
    )

    assert call(Operation.DEREGISTER_OUTPUT_DEVICE, device).is_success
    assert call(Operation.GET_JOBS, device).status_code == StatusCode.CLIENT_ERROR_NOT_FOUND


def test_a_printer_that_aborts_gives_the_job_back_to_its_owner(
    world: IppWorld, tmp_path: Path
) -> None:
    with VirtualPrinter(processing_s=0.01) as printer:
        station = pair_station(world.service, "Floor 5", printer.uri)
        proxy = _proxy(world, station, printer, tmp_path)
        proxy.register()
        _submit(world)
        [released] = _release_infra(world, station)
        printer.set_fault("media-jam", times=1)
        report = proxy.poll()
        assert report.failed == [released["ipp_job_id"]]
    held = world.service.jobs.list_held(world.user.id)
    assert [str(j.id) for j in held] == [released["job_id"]], "the job is held again"
    assert proxy.fetchable() == [], "a failed release is not fetchable: the owner releases again"


def test_credentials_are_required_and_checked(world: IppWorld) -> None:
    message = _request(world, Operation.GET_PRINTER_ATTRIBUTES)
    assert _raw(world, message).status_code == 401
    assert _raw(world, message, Authorization="Bearer ppd_nothing.wrong").status_code == 401
    station = pair_station(world.service, "Floor 6")
    issued = _infra(world).issue_token(station.principal.site, station.principal.id)
    wrong = issued.token[:-2] + ("aa" if not issued.token.endswith("aa") else "bb")
    assert _raw(world, message, Authorization=f"Bearer {wrong}").status_code == 401
    basic = base64.b64encode(f"proxy:{issued.token}".encode()).decode()
    reply = _raw(world, message, Authorization=f"Basic {basic}")
    assert reply.status_code == 200
    answer, _ = decode_message(reply.content)
    ops = answer.group(Tag.PRINTER_ATTRIBUTES).get_ints("operations-supported")  # type: ignore[union-attr]
    assert Operation.FETCH_JOB in ops and Operation.REGISTER_OUTPUT_DEVICE in ops
    _infra(world).revoke(station.principal.site, station.principal.id)
    assert _raw(world, message, Authorization=f"Bearer {issued.token}").status_code == 401


def test_infra_release_needs_a_registered_device(world: IppWorld) -> None:
    station = pair_station(world.service, "Floor 7")
    _submit(world)
    session = world.service.sessions.open(station.principal, world.tag)
    reply = httpx.post(
        f"{world.server.url}/api/v1/station/sessions/{session.id}/infra-releases",
        json={"all": True},
        auth=SignedAuth(station, lambda: datetime.now(UTC)),
        timeout=30,
    )
    assert reply.status_code == 404
    assert reply.json()["code"] == "output-device-not-found"
    assert len(world.service.jobs.list_held(world.user.id)) == 1, "nothing was released"


def test_proxy_errors_are_typed(world: IppWorld, printer: VirtualPrinter, tmp_path: Path) -> None:
    station = pair_station(world.service, "Floor 8", printer.uri)
    proxy = _proxy(world, station, printer, tmp_path)
    with pytest.raises(InfraProxyError) as caught:
        proxy.fetchable()  # not registered yet
    assert caught.value.status == StatusCode.CLIENT_ERROR_NOT_FOUND


# --- the domain rules, at the service level with a clock that moves only when told -------------


def _ready(service: CloudService, enrolled: Enrolled) -> tuple[Infra, ProxyPrincipal, int]:
    infra = Infra(service.context, service.releases)
    proxy = infra.for_station(enrolled.station)
    infra.register(proxy, DEVICE)
    proxy = infra.for_station(enrolled.station)  # now with its device
    service.uploads.submit(enrolled.user, "doc.pdf", iter([PDF]), document_format="application/pdf")
    session = service.sessions.open(enrolled.station, enrolled.tag)
    [made] = infra.release(enrolled.station, session.id, None)
    return infra, proxy, made.infra_job_id


def test_an_expired_lease_ends_fetchability_and_a_late_completion_still_counts_once(
    service: CloudService, enrolled: Enrolled, clock: FakeClock
) -> None:
    infra, proxy, job_id = _ready(service, enrolled)
    assert [v.job_id for v in infra.list_jobs(proxy, "fetchable", 10)] == [job_id]
    clock.advance(seconds=service.config.release_lease_s + 1)
    assert service.releases.expire_leases() == 1
    assert infra.list_jobs(proxy, "fetchable", 10) == [], "the owner must release it again"
    with pytest.raises(NotFetchableError):
        infra.fetch_job(proxy, DEVICE, job_id)
    assert len(service.jobs.list_held(enrolled.user.id)) == 1


def test_fetch_renews_the_lease_and_outcomes_are_compare_and_set(
    service: CloudService, enrolled: Enrolled, clock: FakeClock
) -> None:
    infra, proxy, job_id = _ready(service, enrolled)
    clock.advance(seconds=service.config.release_lease_s - 5)
    infra.fetch_job(proxy, DEVICE, job_id)  # renews: the sweep below must not fail it
    infra.acknowledge_job(proxy, DEVICE, job_id)
    clock.advance(seconds=10)
    assert service.releases.expire_leases() == 0
    view, document = infra.open_document(proxy, DEVICE, job_id, 1)
    assert b"".join(document) == PDF and view.release_state == "delivering"
    with pytest.raises(InfraJobNotFoundError):
        infra.open_document(proxy, DEVICE, job_id, 2)
    done = infra.update_job_status(proxy, DEVICE, job_id, "completed", impressions=1)
    assert done.state == "completed" and done.release_state == "printed"
    again = infra.update_job_status(proxy, DEVICE, job_id, "completed")
    assert again.state == "completed"
    with pytest.raises(ReleaseConflictError):
        infra.update_job_status(proxy, DEVICE, job_id, "aborted")
    with pytest.raises(NotFetchableError):
        infra.open_document(proxy, DEVICE, job_id, 1)  # printed: content destroyed
    assert service.jobs.list_held(enrolled.user.id) == []


def test_a_damaged_container_is_refused_before_any_byte(
    service: CloudService, enrolled: Enrolled
) -> None:
    infra, proxy, job_id = _ready(service, enrolled)
    infra.fetch_job(proxy, DEVICE, job_id)
    view = infra.job(proxy, job_id)
    job = service.jobs.get(view.cloud_job_id)
    [stored] = blob_files(service)  # a file, or an S3 object on the postgres profile
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    with pytest.raises(DocumentUnavailableError):
        infra.open_document(proxy, DEVICE, job_id, 1)
    assert job.state == "releasing"


def test_deregistering_gives_unstarted_jobs_back(service: CloudService, enrolled: Enrolled) -> None:
    infra, proxy, _ = _ready(service, enrolled)
    assert infra.deregister(proxy, DEVICE) == 1
    assert len(service.jobs.list_held(enrolled.user.id)) == 1
    with pytest.raises(OutputDeviceNotFoundError):
        infra.list_jobs(proxy, "fetchable", 10)


def test_the_cli_issues_a_device_token_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cloud.config import generate_secrets, load_config
    from tools.cli import main

    data = tmp_path / "cloud"
    data.mkdir()
    generate_secrets(data / "secrets.toml")
    assert main(["infra", "token", str(uuid.uuid4()), "--data-dir", str(data)]) != 0
    opened = CloudService.open(load_config(None, {"PULLPRINT_DATA_DIR": str(data)}))
    try:
        station = pair_station(opened, "Floor 1")
    finally:
        opened.close()
    capsys.readouterr()
    assert main(["infra", "token", str(station.principal.id), "--data-dir", str(data)]) == 0
    token = capsys.readouterr().out.split(": ", 1)[1].split()[0]
    assert token.startswith("ppd_")
    opened = CloudService.open(load_config(None, {"PULLPRINT_DATA_DIR": str(data)}))
    try:
        infra = Infra(opened.context, opened.releases)
        assert infra.authenticate_token(token).station.id == station.principal.id
        assert main(["infra", "revoke", str(station.principal.id), "--data-dir", str(data)]) == 0
        with pytest.raises(UnauthorizedError):
            infra.authenticate_token(token)
    finally:
        opened.close()


def test_long_polls_hold_no_worker_threads(world: IppWorld) -> None:
    """More waiting proxies than the worker-thread pool has threads (40): the queue still
    answers while every one of them is still waiting."""
    import threading
    import time

    world.server.app.state.infra.operations.notify_wait_s = 60.0  # they end by an event below
    station = pair_station(world.service, "Floor 9")
    infra = _infra(world)
    token = infra.issue_token(station.principal.site, station.principal.id).token
    bearer = {"Authorization": f"Bearer {token}"}
    register = _request(
        world,
        Operation.REGISTER_OUTPUT_DEVICE,
        Attribute.of("output-device-uuid", Tag.URI, DEVICE),
    )
    assert decode_message(_raw(world, register, **bearer).content)[0].is_success
    subscribe = _request(world, Operation.CREATE_PRINTER_SUBSCRIPTIONS)
    subscribe.add_group(
        Tag.SUBSCRIPTION_ATTRIBUTES,
        Attribute.of("notify-pull-method", Tag.KEYWORD, "ippget"),
        Attribute.of("notify-events", Tag.KEYWORD, "printer-config-changed"),
    )
    answer, _ = decode_message(_raw(world, subscribe, **bearer).content)
    sub_id = answer.get_int(Tag.SUBSCRIPTION_ATTRIBUTES, "notify-subscription-id")
    assert sub_id is not None
    poll = _request(
        world,
        Operation.GET_NOTIFICATIONS,
        Attribute.of("notify-subscription-ids", Tag.INTEGER, sub_id),
        Attribute.of("notify-wait", Tag.BOOLEAN, True),
    )
    finished: list[float] = []

    def wait_for_events() -> None:
        reply = _raw(world, poll, **bearer)
        assert reply.status_code == 200
        finished.append(time.monotonic())

    pollers = [threading.Thread(target=wait_for_events) for _ in range(45)]
    for each in pollers:
        each.start()
    time.sleep(1.0)  # every poll is waiting now
    printer = world.call(Operation.GET_PRINTER_ATTRIBUTES)
    assert printer.is_success
    assert finished == [], "a long poll ended without an event"
    # An event ends every poll at once (the queue answered while all 45 were waiting).
    update = _request(
        world,
        Operation.UPDATE_OUTPUT_DEVICE_ATTRIBUTES,
        Attribute.of("output-device-uuid", Tag.URI, DEVICE),
    )
    update.add_group(Tag.PRINTER_ATTRIBUTES, Attribute.of("printer-state", Tag.ENUM, 3))
    assert decode_message(_raw(world, update, **bearer).content)[0].is_success
    for each in pollers:
        each.join(60)
    assert len(finished) == 45
