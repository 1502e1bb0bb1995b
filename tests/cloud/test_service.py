"""The domain service without HTTP: identity, jobs, sessions, releases, sweeping."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from cloud.container import Decryptor
from cloud.db import AuditEvent, Credential, Job, User
from cloud.errors import (
    CredentialExistsError,
    EmptyDocumentError,
    InvalidRequestError,
    InvalidTagError,
    JobNotFoundError,
    JobNotHeldError,
    ReleaseConflictError,
    ReleaseNotActiveError,
    ReleaseNotFoundError,
    SessionExpiredError,
    SessionNotFoundError,
    StorageError,
    TruncatedUploadError,
    UnauthorizedError,
    UnknownCredentialError,
    UserExistsError,
    UserNotFoundError,
)
from cloud.jobs import JobView
from cloud.service import CloudService
from cloud.states import JobState, ReleaseState
from tests.cloud.conftest import (
    ADMIN_TOKEN,
    Enrolled,
    FakeClock,
    blob_files,
    pair_station,
    random_tag,
)


def pieces(data: bytes, size: int = 10_000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def submit(
    service: CloudService, who: Enrolled, data: bytes = b"%PDF-1.7 hello", name: str = "a.pdf"
) -> JobView:
    return service.uploads.submit(who.user, name, pieces(data), document_format="application/pdf")


def job_row(service: CloudService, job_id: uuid.UUID) -> Job:
    with service.context.read() as db:
        job = db.get(Job, job_id)
        assert job is not None
        return job


# -- identity -------------------------------------------------------------------------------


def test_tokens_authenticate_and_are_stored_only_as_hmacs(service: CloudService) -> None:
    issued = service.identity.create_user("grace@example.org", "Grace")
    assert issued.api_token.startswith(f"ppu_{issued.id}.")
    assert service.identity.authenticate_user(issued.api_token).id == issued.id
    with service.context.read() as db:
        user = db.get(User, issued.id)
        assert user is not None
        user_secret = issued.api_token.split(".", 1)[1]
        assert user.token_hash == service.context.keyed_hash(user_secret.encode())
        assert user_secret not in user.token_hash
    assert issued.api_token not in repr(issued)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
        lambda t: "ppu_" + str(uuid.uuid4()) + "." + t.split(".", 1)[1],  # unknown id
        lambda t: t.split(".", 1)[1],  # secret alone
        lambda t: "ppu_not-a-uuid.x",
        lambda t: "",
        lambda t: t.replace("ppu_", "pps_"),  # a user token presented as a station token
    ],
)
def test_bad_user_tokens_are_refused(service: CloudService, mangle) -> None:
    token = service.identity.create_user("h@example.org", "H").api_token
    with pytest.raises(UnauthorizedError):
        service.identity.authenticate_user(mangle(token))


def test_admin_token(service: CloudService) -> None:
    service.sites.authenticate_admin(ADMIN_TOKEN)
    with pytest.raises(UnauthorizedError):
        service.sites.authenticate_admin(ADMIN_TOKEN + "x")
    with pytest.raises(PermissionError):  # the builtin it resembles
        service.sites.authenticate_admin("")


def test_duplicate_user(service: CloudService) -> None:
    service.identity.create_user("dup@example.org", "One")
    with pytest.raises(UserExistsError):
        service.identity.create_user("dup@example.org", "Two")


def test_cards(service: CloudService, enrolled: Enrolled) -> None:
    with pytest.raises(CredentialExistsError):
        service.identity.add_card(enrolled.user.id, enrolled.tag)
    with pytest.raises(InvalidTagError):
        service.identity.add_card(enrolled.user.id, enrolled.tag.upper())
    with pytest.raises(InvalidTagError):
        service.identity.add_card(enrolled.user.id, "abc")
    with pytest.raises(UserNotFoundError):
        service.identity.add_card(uuid.uuid4(), random_tag())
    with service.context.read() as db:
        lookups = list(db.scalars(select(Credential.lookup)))
    assert lookups == [service.context.keyed_hash(bytes.fromhex(enrolled.tag))]
    assert enrolled.tag not in lookups[0]


# -- jobs -----------------------------------------------------------------------------------


def test_submit_streams_encrypts_and_records(service: CloudService, enrolled: Enrolled) -> None:
    data = bytes(range(256)) * 1000
    job = submit(service, enrolled, data)
    assert job.state is JobState.HELD
    assert job.size_bytes == len(data)
    assert job.sha256 == hashlib.sha256(data).hexdigest()
    assert job.expires_at - job.submitted_at == timedelta(hours=24)
    row = job_row(service, job.id)
    assert row.blob_key is not None
    [blob] = blob_files(service)
    stored = blob.read_bytes()
    assert len(stored) == job.content_bytes
    assert data[:64] not in stored  # encrypted at rest
    assert [j.id for j in service.jobs.list_held(enrolled.user.id)] == [job.id]


def test_content_bytes_is_measured_for_exact_chunk_multiples(
    service: CloudService, enrolled: Enrolled
) -> None:
    job = submit(service, enrolled, b"x" * 65536)
    [blob] = blob_files(service)
    assert blob.stat().st_size == job.content_bytes


def test_empty_document_is_refused(service: CloudService, enrolled: Enrolled) -> None:
    with pytest.raises(EmptyDocumentError):
        service.uploads.submit(enrolled.user, "empty", iter([b"", b""]))
    assert blob_files(service) == []
    assert service.jobs.list_held(enrolled.user.id) == []


def test_short_body_leaves_no_job_and_no_blob(service: CloudService, enrolled: Enrolled) -> None:
    with pytest.raises(TruncatedUploadError):
        service.uploads.submit(
            enrolled.user, "short", pieces(b"x" * 200_000), expected_bytes=1_000_000
        )
    assert blob_files(service) == []
    assert service.jobs.list_held(enrolled.user.id) == []


def test_long_body_is_refused(service: CloudService, enrolled: Enrolled) -> None:
    with pytest.raises(InvalidRequestError):
        service.uploads.submit(enrolled.user, "long", pieces(b"x" * 2000), expected_bytes=1000)
    assert blob_files(service) == []


def test_failing_source_leaves_no_job_and_no_blob(
    service: CloudService, enrolled: Enrolled
) -> None:
    def broken() -> Iterator[bytes]:
        yield b"x" * 150_000
        raise ConnectionResetError("client vanished")

    with pytest.raises(ConnectionResetError):
        service.uploads.submit(enrolled.user, "broken", broken())
    assert blob_files(service) == []
    with service.context.read() as db:
        assert db.scalars(select(Job)).all() == []
        kinds = list(db.scalars(select(AuditEvent.kind)))
    assert "upload-aborted" in kinds


def test_submit_async(service: CloudService, enrolled: Enrolled) -> None:
    data = b"0123456789" * 30_000

    async def source() -> AsyncIterator[bytes]:
        for piece in pieces(data, 4096):
            yield piece

    job = asyncio.run(service.uploads.submit_async(enrolled.user, "async.txt", source()))
    assert job.size_bytes == len(data)
    assert job.sha256 == hashlib.sha256(data).hexdigest()


def test_submit_async_failure_cleans_up(service: CloudService, enrolled: Enrolled) -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b"y" * 200_000
        raise TruncatedUploadError("gone")

    with pytest.raises(TruncatedUploadError):
        asyncio.run(service.uploads.submit_async(enrolled.user, "async.txt", source()))
    assert blob_files(service) == []
    assert service.jobs.list_held(enrolled.user.id) == []


@pytest.mark.parametrize(
    ("name", "copies"), [("", 1), ("   ", 1), ("x" * 256, 1), ("ok", 0), ("ok", 1000)]
)
def test_submit_validates_metadata(
    service: CloudService, enrolled: Enrolled, name: str, copies: int
) -> None:
    with pytest.raises(InvalidRequestError):
        service.uploads.submit(enrolled.user, name, [b"x"], copies=copies)
    assert blob_files(service) == []


def test_list_held_shows_only_own_unexpired_jobs(
    service: CloudService, enrolled: Enrolled, clock: FakeClock
) -> None:
    other = service.identity.create_user("other@example.org", "Other")
    other_user = service.identity.authenticate_user(other.api_token)
    mine = submit(service, enrolled)
    service.uploads.submit(other_user, "theirs", [b"x"])
    assert [j.id for j in service.jobs.list_held(enrolled.user.id)] == [mine.id]
    clock.advance(hours=24)  # expiry counts even before the sweeper has run
    assert service.jobs.list_held(enrolled.user.id) == []


def test_delete_destroys_content(service: CloudService, enrolled: Enrolled) -> None:
    job = submit(service, enrolled)
    with pytest.raises(JobNotFoundError):
        service.jobs.delete(uuid.uuid4(), job.id)  # not the owner
    service.jobs.delete(enrolled.user.id, job.id)
    service.jobs.delete(enrolled.user.id, job.id)  # idempotent
    row = job_row(service, job.id)
    assert (row.state, row.wrapped_key, row.blob_key) == ("deleted", None, None)
    assert blob_files(service) == []
    with pytest.raises(JobNotFoundError):
        service.jobs.delete(enrolled.user.id, uuid.uuid4())


# -- sessions and releases ------------------------------------------------------------------


def test_session_lists_held_jobs(service: CloudService, enrolled: Enrolled) -> None:
    job = submit(service, enrolled)
    session = service.sessions.open(enrolled.station, enrolled.tag)
    assert session.display_name == "Ada Lovelace"
    assert [j.id for j in session.jobs] == [job.id]


def test_unknown_and_malformed_tags(service: CloudService, enrolled: Enrolled) -> None:
    tag = random_tag()
    with pytest.raises(UnknownCredentialError) as info:
        service.sessions.open(enrolled.station, tag)
    assert tag not in str(info.value)
    with pytest.raises(LookupError):  # the builtin it resembles
        service.sessions.open(enrolled.station, random_tag())
    with pytest.raises(InvalidTagError):
        service.sessions.open(enrolled.station, "12")
    with service.context.read() as db:
        events = db.scalars(select(AuditEvent).where(AuditEvent.kind == "credential-unknown"))
        assert [e.station_id for e in events] == [enrolled.station.id] * 2


def test_session_expiry_and_end(
    service: CloudService, enrolled: Enrolled, clock: FakeClock
) -> None:
    job = submit(service, enrolled)
    session = service.sessions.open(enrolled.station, enrolled.tag)
    clock.advance(seconds=121)
    with pytest.raises(SessionExpiredError):
        service.releases.create(enrolled.station, session.id, [job.id])
    session = service.sessions.open(enrolled.station, enrolled.tag)
    service.sessions.end(enrolled.station, session.id)
    service.sessions.end(enrolled.station, session.id)  # idempotent
    with pytest.raises(SessionExpiredError):
        service.releases.create(enrolled.station, session.id, None)
    with pytest.raises(SessionNotFoundError):
        service.sessions.end(enrolled.station, uuid.uuid4())
    with service.context.read() as db:
        ended = db.scalars(select(AuditEvent).where(AuditEvent.kind == "session-ended")).all()
        # Ending twice records one event: the second end changes nothing.
        assert [e.session_id for e in ended] == [session.id]
        opened = db.scalars(select(AuditEvent).where(AuditEvent.kind == "session-opened")).all()
        assert [e.user_id for e in opened] == [enrolled.user.id] * 2


def test_concurrent_and_nested_writes(service: CloudService, enrolled: Enrolled) -> None:
    # Writers of one process queue on the context's lock (SQLite) instead of failing or
    # sleeping in SQLite's busy handler; a write opened inside another in the same thread
    # (before the outer one has touched the database) still works.
    errors: list[BaseException] = []

    def tap_and_end() -> None:
        try:
            for _ in range(5):
                opened = service.sessions.open(enrolled.station, enrolled.tag)
                service.sessions.end(enrolled.station, opened.id)
        except BaseException as exc:  # collected for the assert below
            errors.append(exc)

    threads = [threading.Thread(target=tap_and_end) for _ in range(4)]
    for each in threads:
        each.start()
    for each in threads:
        each.join(60)
    assert errors == []
    ctx = service.context
    with ctx.write() as outer:
        with ctx.write() as inner:
            ctx.audit(inner, "nested-inner", site=ctx.site)
        ctx.audit(outer, "nested-outer", site=ctx.site)
    with ctx.read() as db:
        ended = db.scalars(select(AuditEvent).where(AuditEvent.kind == "session-ended")).all()
        assert len(ended) == 20
        kinds = db.scalars(select(AuditEvent.kind).where(AuditEvent.kind.like("nested-%")))
        assert sorted(kinds) == ["nested-inner", "nested-outer"]


def test_session_belongs_to_its_station(service: CloudService, enrolled: Enrolled) -> None:
    other_station = pair_station(service, "Other", "ipp://other").principal
    session = service.sessions.open(enrolled.station, enrolled.tag)
    with pytest.raises(SessionNotFoundError):
        service.releases.create(other_station, session.id, None)
    with pytest.raises(SessionNotFoundError):
        service.sessions.end(other_station, session.id)


def test_delete_job_at_the_station(service: CloudService, enrolled: Enrolled) -> None:
    job = submit(service, enrolled)
    session = service.sessions.open(enrolled.station, enrolled.tag)
    service.sessions.delete_job(enrolled.station, session.id, job.id)
    assert job_row(service, job.id).state == "deleted"
    assert blob_files(service) == []
    with pytest.raises(JobNotFoundError):
        service.sessions.delete_job(enrolled.station, session.id, uuid.uuid4())


def test_release_flow_and_content_round_trip(service: CloudService, enrolled: Enrolled) -> None:
    data = b"page " * 50_000
    job = submit(service, enrolled, data)
    session = service.sessions.open(enrolled.station, enrolled.tag)
    [grant] = service.releases.create(enrolled.station, session.id, None)
    assert (grant.job_id, grant.state, grant.user_name) == (
        job.id,
        ReleaseState.REQUESTED,
        "Ada Lovelace",
    )
    assert grant.data_key.hex() not in repr(grant)
    assert job_row(service, job.id).state == "releasing"
    content = service.releases.open_content(enrolled.station, grant.id)
    decryptor = Decryptor(grant.data_key, job.id, "default")
    plain = b"".join(decryptor.update(piece) for piece in content) + decryptor.finalize()
    assert plain == data
    assert content.length == job.content_bytes
    result = service.releases.report_outcome(
        enrolled.station, grant.id, ReleaseState.PRINTED, None, 42
    )
    assert result.state is ReleaseState.PRINTED
    row = job_row(service, job.id)
    assert (row.state, row.wrapped_key, row.blob_key) == ("printed", None, None)
    assert row.printed_at is not None
    assert blob_files(service) == []
    with pytest.raises(ReleaseNotActiveError):
        service.releases.open_content(enrolled.station, grant.id)


def test_release_is_all_or_nothing(service: CloudService, enrolled: Enrolled) -> None:
    first, second = submit(service, enrolled, name="1"), submit(service, enrolled, name="2")
    session = service.sessions.open(enrolled.station, enrolled.tag)
    service.releases.create(enrolled.station, session.id, [second.id])
    with pytest.raises(JobNotHeldError):
        service.releases.create(enrolled.station, session.id, [first.id, second.id])
    assert job_row(service, first.id).state == "held"  # rolled back
    with pytest.raises(JobNotFoundError):
        service.releases.create(enrolled.station, session.id, [uuid.uuid4()])
    with pytest.raises(InvalidRequestError):
        service.releases.create(enrolled.station, session.id, [])


def test_failed_outcome_returns_the_job(service: CloudService, enrolled: Enrolled) -> None:
    job = submit(service, enrolled)
    session = service.sessions.open(enrolled.station, enrolled.tag)
    [grant] = service.releases.create(enrolled.station, session.id, [job.id])
    service.releases.report_outcome(enrolled.station, grant.id, ReleaseState.FAILED, "out of paper")
    service.releases.report_outcome(enrolled.station, grant.id, ReleaseState.FAILED, "again")
    row = job_row(service, job.id)
    assert (row.state, row.wrapped_key is not None) == ("held", True)
    with pytest.raises(ReleaseConflictError):
        service.releases.report_outcome(enrolled.station, grant.id, ReleaseState.PRINTED)
    [again] = service.releases.create(enrolled.station, session.id, [job.id])  # can retry
    assert again.id != grant.id


def test_outcome_rules(service: CloudService, enrolled: Enrolled) -> None:
    job = submit(service, enrolled)
    session = service.sessions.open(enrolled.station, enrolled.tag)
    [grant] = service.releases.create(enrolled.station, session.id, [job.id])
    other_station = pair_station(service, "Other", "ipp://other").principal
    with pytest.raises(ReleaseNotFoundError):
        service.releases.report_outcome(other_station, grant.id, ReleaseState.PRINTED)
    with pytest.raises(ReleaseNotFoundError):
        service.releases.open_content(other_station, grant.id)
    with pytest.raises(InvalidRequestError):
        service.releases.report_outcome(enrolled.station, grant.id, ReleaseState.DELIVERING)
    service.releases.report_outcome(enrolled.station, grant.id, ReleaseState.PRINTED)
    service.releases.report_outcome(enrolled.station, grant.id, ReleaseState.PRINTED)
    with pytest.raises(ReleaseConflictError):
        service.releases.report_outcome(enrolled.station, grant.id, ReleaseState.FAILED)


def test_releasing_job_cannot_be_deleted(service: CloudService, enrolled: Enrolled) -> None:
    job = submit(service, enrolled)
    session = service.sessions.open(enrolled.station, enrolled.tag)
    service.releases.create(enrolled.station, session.id, [job.id])
    with pytest.raises(JobNotHeldError):
        service.jobs.delete(enrolled.user.id, job.id)


# -- sweeping -------------------------------------------------------------------------------


def test_sweep_expires_held_jobs(
    service: CloudService, enrolled: Enrolled, clock: FakeClock
) -> None:
    job = submit(service, enrolled)
    clock.advance(hours=23)
    assert service.sweep().expired_jobs == 0
    clock.advance(hours=1)
    report = service.sweep()
    assert (report.expired_jobs, report.expired_leases) == (1, 0)
    row = job_row(service, job.id)
    assert (row.state, row.wrapped_key, row.blob_key) == ("expired", None, None)
    assert blob_files(service) == []
    assert service.sweep().expired_jobs == 0


def test_sweep_expires_leases(service: CloudService, enrolled: Enrolled, clock: FakeClock) -> None:
    job = submit(service, enrolled)
    session = service.sessions.open(enrolled.station, enrolled.tag)
    [grant] = service.releases.create(enrolled.station, session.id, [job.id])
    clock.advance(seconds=200)
    service.releases.open_content(enrolled.station, grant.id).close()  # renews the lease
    clock.advance(seconds=200)
    assert service.sweep().expired_leases == 0
    clock.advance(seconds=101)
    assert service.sweep().expired_leases == 1
    assert job_row(service, job.id).state == "held"
    with pytest.raises(ReleaseNotActiveError):
        service.releases.open_content(enrolled.station, grant.id)
    # The station was only slow: its late "printed" is accepted, so nothing prints twice.
    result = service.releases.report_outcome(enrolled.station, grant.id, ReleaseState.PRINTED)
    assert result.state is ReleaseState.PRINTED
    assert job_row(service, job.id).state == "printed"


def test_late_print_after_re_release_conflicts(
    service: CloudService, enrolled: Enrolled, clock: FakeClock
) -> None:
    job = submit(service, enrolled)
    session = service.sessions.open(enrolled.station, enrolled.tag)
    [first] = service.releases.create(enrolled.station, session.id, [job.id])
    clock.advance(seconds=301)
    service.sweep()
    session = service.sessions.open(enrolled.station, enrolled.tag)
    [second] = service.releases.create(enrolled.station, session.id, [job.id])
    with pytest.raises(ReleaseConflictError):
        service.releases.report_outcome(enrolled.station, first.id, ReleaseState.PRINTED)
    service.releases.report_outcome(enrolled.station, second.id, ReleaseState.PRINTED)


def test_job_expired_while_releasing_is_destroyed_when_the_lease_runs_out(
    service: CloudService, enrolled: Enrolled, clock: FakeClock
) -> None:
    job = submit(service, enrolled)
    clock.advance(hours=23, minutes=58)
    session = service.sessions.open(enrolled.station, enrolled.tag)
    service.releases.create(enrolled.station, session.id, [job.id])
    clock.advance(minutes=10)
    report = service.sweep()
    assert (report.expired_leases, report.expired_jobs) == (1, 1)
    assert job_row(service, job.id).state == "expired"


def test_failed_blob_delete_is_retried_by_the_sweeper(
    service: CloudService, enrolled: Enrolled, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = submit(service, enrolled)
    real_delete = service.blobs.delete

    def failing_delete(key: str) -> None:
        raise StorageError("disk unplugged")

    monkeypatch.setattr(service.blobs, "delete", failing_delete)
    service.jobs.delete(enrolled.user.id, job.id)
    row = job_row(service, job.id)
    assert row.wrapped_key is None  # destroyed cryptographically at once
    assert row.blob_key is not None
    monkeypatch.setattr(service.blobs, "delete", real_delete)
    service.sweep()
    assert job_row(service, job.id).blob_key is None
    assert blob_files(service) == []


def test_audit_trail_holds_no_secrets(service: CloudService, enrolled: Enrolled) -> None:
    job = submit(service, enrolled, b"TOP-SECRET-CONTENT" * 10)
    session = service.sessions.open(enrolled.station, enrolled.tag)
    [grant] = service.releases.create(enrolled.station, session.id, [job.id])
    service.releases.report_outcome(enrolled.station, grant.id, ReleaseState.PRINTED)
    with service.context.read() as db:
        events = db.scalars(select(AuditEvent)).all()
        text = " ".join(repr(vars(e)) for e in events)
        kinds = [e.kind for e in events]
    for secret in (enrolled.tag, enrolled.user_token, grant.data_key.hex()):
        assert secret not in text
    assert "TOP-SECRET" not in text
    assert {"job-submitted", "session-opened", "release-requested", "release-printed"} <= set(kinds)
    assert "content-destroyed" in kinds
