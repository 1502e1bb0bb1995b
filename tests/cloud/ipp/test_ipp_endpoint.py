"""The IPP endpoint's behaviour: authentication, the pending-held trick, job metadata,
ownership, job operations, and streaming (the ipptool files cover the conformance side)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx

from cloud.states import JobState as CloudState
from hardware.ipp.codec import Attribute, IppMessage, decode_message, encode_message
from hardware.ipp.enums import JobState, Operation, StatusCode, Tag
from tests.cloud.ipp.conftest import IppWorld
from tools.samples import make_pdf

PDF = make_pdf(["hello from IPP"])


def gpa_bytes(world: IppWorld) -> bytes:
    request = IppMessage.request(
        Operation.GET_PRINTER_ATTRIBUTES,
        7,
        Attribute.of("printer-uri", Tag.URI, world.printer_uri),
    )
    return encode_message(request)


def print_job(world: IppWorld, data: bytes = PDF, fmt: str = "application/pdf", **job: object):
    return world.call(
        Operation.PRINT_JOB,
        Attribute.of("requesting-user-name", Tag.NAME_WITHOUT_LANGUAGE, "mallory"),
        Attribute.of("job-name", Tag.NAME_WITHOUT_LANGUAGE, "Quarterly report"),
        Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, fmt),
        data=data,
        job=[
            Attribute.of(
                name.replace("_", "-"), Tag.INTEGER if isinstance(v, int) else Tag.KEYWORD, v
            )
            for name, v in job.items()
        ],
    )


def job_id_of(response: IppMessage) -> int:
    job_id = response.get_int(Tag.JOB_ATTRIBUTES, "job-id")
    assert job_id is not None
    return job_id


def test_anonymous_and_wrong_credentials_get_401_with_a_basic_challenge(ipp_world: IppWorld):
    request = IppMessage.request(
        Operation.PRINT_JOB, 1, Attribute.of("printer-uri", Tag.URI, ipp_world.printer_uri)
    )
    job = encode_message(request) + PDF
    wrong = {"Authorization": "Basic YWRhQGV4YW1wbGUub3JnOndyb25n"}  # ada@example.org:wrong
    for body, headers in ((job, {}), (job, wrong), (gpa_bytes(ipp_world), wrong)):
        reply = httpx.post(
            ipp_world.url, content=body, headers={"Content-Type": "application/ipp", **headers}
        )
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"] == 'Basic realm="PullPrint"'
    assert ipp_world.service.jobs.list_held(ipp_world.user.id) == []


def test_anonymous_get_printer_attributes_is_answered_for_lpadmin(ipp_world: IppWorld):
    reply = httpx.post(
        ipp_world.url, content=gpa_bytes(ipp_world), headers={"Content-Type": "application/ipp"}
    )
    message, _ = decode_message(reply.content)
    assert message.status_code == StatusCode.SUCCESSFUL_OK
    assert message.get_int(Tag.PRINTER_ATTRIBUTES, "queued-job-count") == 0


def test_bearer_token_and_passcode_both_work_and_revocation_is_immediate(ipp_world: IppWorld):
    body = gpa_bytes(ipp_world)
    bearer = {"Authorization": f"Bearer {ipp_world.api_token}"}
    assert ipp_world.post(body, **bearer).status_code == 200
    assert ipp_world.post(body).status_code == 200
    service = ipp_world.service
    (passcode,) = service.passcodes.list_for(ipp_world.user.id)
    service.passcodes.revoke(ipp_world.user.id, passcode.id)
    assert ipp_world.post(body).status_code == 401


def test_print_job_is_pending_held_at_once_and_parked_for_the_authenticated_user(
    ipp_world: IppWorld,
):
    reply = print_job(
        ipp_world, copies=2, sides="two-sided-long-edge", print_color_mode="monochrome"
    )
    assert reply.status_code == StatusCode.SUCCESSFUL_OK
    assert reply.get_int(Tag.JOB_ATTRIBUTES, "job-state") == JobState.PENDING_HELD
    assert reply.get_strs(Tag.JOB_ATTRIBUTES, "job-state-reasons") == ["job-hold-until-specified"]
    (job,) = ipp_world.service.jobs.list_held(ipp_world.user.id)  # mallory owns nothing
    assert (job.name, job.document_format, job.copies) == ("Quarterly report", "application/pdf", 2)
    assert (job.sides, job.color_mode) == ("two-sided-long-edge", "monochrome")
    assert job.size_bytes == len(PDF) and job.sha256 == hashlib.sha256(PDF).hexdigest()
    attrs = ipp_world.call(
        Operation.GET_JOB_ATTRIBUTES, Attribute.of("job-id", Tag.INTEGER, job_id_of(reply))
    )
    assert attrs.get_str(Tag.JOB_ATTRIBUTES, "job-originating-user-name") == "ada@example.org"


def test_octet_stream_is_recognised_and_unknown_formats_refused(ipp_world: IppWorld):
    print_job(ipp_world, fmt="application/octet-stream")
    (job,) = ipp_world.service.jobs.list_held(ipp_world.user.id)
    assert job.document_format == "application/pdf"
    refused = print_job(ipp_world, fmt="application/x-shockwave-flash")
    assert refused.status_code == StatusCode.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED


def test_create_job_then_one_document_only(ipp_world: IppWorld):
    created = ipp_world.call(
        Operation.CREATE_JOB, Attribute.of("job-name", Tag.NAME_WITHOUT_LANGUAGE, "two parts")
    )
    job_id = job_id_of(created)
    doc = Attribute.of("job-id", Tag.INTEGER, job_id)
    first = ipp_world.call(
        Operation.SEND_DOCUMENT, doc, Attribute.of("last-document", Tag.BOOLEAN, False), data=PDF
    )
    assert first.get_int(Tag.JOB_ATTRIBUTES, "job-state") == JobState.PENDING_HELD
    second = ipp_world.call(
        Operation.SEND_DOCUMENT, doc, Attribute.of("last-document", Tag.BOOLEAN, True), data=PDF
    )
    assert second.status_code == StatusCode.SERVER_ERROR_MULTIPLE_DOCUMENT_JOBS_NOT_SUPPORTED
    assert [j.name for j in ipp_world.service.jobs.list_held(ipp_world.user.id)] == ["two parts"]


def test_hold_release_cancel_and_cancel_my_jobs(ipp_world: IppWorld):
    job_id = job_id_of(print_job(ipp_world))
    target = Attribute.of("job-id", Tag.INTEGER, job_id)

    def state() -> int | None:
        return ipp_world.call(Operation.GET_JOB_ATTRIBUTES, target).get_int(
            Tag.JOB_ATTRIBUTES, "job-state"
        )

    assert ipp_world.call(Operation.RELEASE_JOB, target).status_code == StatusCode.SUCCESSFUL_OK
    assert state() == JobState.PENDING  # waits for its owner at a printer
    again = ipp_world.call(Operation.RELEASE_JOB, target)
    assert again.status_code == StatusCode.CLIENT_ERROR_NOT_POSSIBLE
    assert ipp_world.call(Operation.HOLD_JOB, target).status_code == StatusCode.SUCCESSFUL_OK
    assert state() == JobState.PENDING_HELD
    assert ipp_world.call(Operation.CANCEL_JOB, target).status_code == StatusCode.SUCCESSFUL_OK
    assert state() == JobState.CANCELED
    assert ipp_world.service.jobs.list_held(ipp_world.user.id) == []  # content destroyed
    assert ipp_world.call(Operation.CANCEL_JOB, target).status_code == (
        StatusCode.CLIENT_ERROR_NOT_POSSIBLE
    )
    print_job(ipp_world)
    print_job(ipp_world)
    mine = ipp_world.call(Operation.CANCEL_MY_JOBS)
    assert mine.status_code == StatusCode.SUCCESSFUL_OK
    assert ipp_world.service.jobs.list_held(ipp_world.user.id) == []


def test_jobs_are_visible_only_to_their_owner(ipp_world: IppWorld):
    job_id = job_id_of(print_job(ipp_world))
    other = ipp_world.service.identity.create_user("eve@example.org", "Eve")
    as_eve = {"Authorization": f"Bearer {other.api_token}"}
    request = IppMessage.request(
        Operation.GET_JOBS,
        1,
        Attribute.of("printer-uri", Tag.URI, ipp_world.printer_uri),
        Attribute.of("which-jobs", Tag.KEYWORD, "all"),
    )
    listed, _ = decode_message(ipp_world.post(encode_message(request), **as_eve).content)
    assert listed.groups_of(Tag.JOB_ATTRIBUTES) == []
    cancel = IppMessage.request(
        Operation.CANCEL_JOB,
        2,
        Attribute.of("printer-uri", Tag.URI, ipp_world.printer_uri),
        Attribute.of("job-id", Tag.INTEGER, job_id),
    )
    reply, _ = decode_message(ipp_world.post(encode_message(cancel), **as_eve).content)
    assert reply.status_code == StatusCode.CLIENT_ERROR_NOT_FOUND
    mine = ipp_world.call(Operation.GET_JOBS)
    assert [g.get_int("job-id") for g in mine.groups_of(Tag.JOB_ATTRIBUTES)] == [job_id]


def test_a_large_document_streams_in_with_the_header_split_across_reads(ipp_world: IppWorld):
    request = IppMessage.request(
        Operation.PRINT_JOB,
        3,
        Attribute.of("printer-uri", Tag.URI, ipp_world.printer_uri),
        Attribute.of("job-name", Tag.NAME_WITHOUT_LANGUAGE, "big"),
        Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, "application/octet-stream"),
    )
    header = encode_message(request)
    block = bytes(range(256)) * 4096  # 1 MiB
    total = 32
    digest = hashlib.sha256()
    for _ in range(total):
        digest.update(block)

    def body() -> Iterator[bytes]:
        yield from (header[i : i + 3] for i in range(0, len(header), 3))  # a dribbling client
        for _ in range(total):
            yield block

    reply = httpx.post(
        ipp_world.url,
        content=body(),
        headers={"Content-Type": "application/ipp", **ipp_world.basic()},
        timeout=60,
    )
    message, _ = decode_message(reply.content)
    assert message.status_code == StatusCode.SUCCESSFUL_OK
    (job,) = ipp_world.service.jobs.list_held(ipp_world.user.id)
    assert job.size_bytes == total * len(block)
    assert job.sha256 == digest.hexdigest()
    assert job.state is CloudState.HELD


def test_printer_strings_and_icon_are_served_without_credentials(ipp_world: IppWorld):
    attrs = ipp_world.call(
        Operation.GET_PRINTER_ATTRIBUTES,
        Attribute.of("requested-attributes", Tag.KEYWORD, "printer-strings-uri", "printer-icons"),
    )
    for name in ("printer-strings-uri", "printer-icons"):
        uri = attrs.get_str(Tag.PRINTER_ATTRIBUTES, name)
        assert uri is not None
        reply = httpx.get(uri)
        assert reply.status_code == 200 and reply.content
    assert attrs.get(Tag.PRINTER_ATTRIBUTES, "printer-name") is None  # only what was asked
