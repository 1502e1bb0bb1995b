"""Jobs and releases under site policies: idempotency, quota, pages, privacy, expiry, reprint,
cancel, delegation, release-all-on-tap, zero-knowledge mode, and the audit trail of it all."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import select

from cloud.container import (
    ContainerError,
    Decryptor,
    Encryptor,
    hpke_unwrap_key,
    hpke_wrap_key,
    new_data_key,
    unwrap_key,
)
from cloud.db import AuditEvent, Job, Release
from cloud.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    InvalidSealedJobError,
    JobNotFoundError,
    JobNotHeldError,
    QuotaExceededError,
    ReleaseConflictError,
    SealedJobRequiredError,
)
from cloud.identity import StationPrincipal, UserPrincipal
from cloud.jobs import JobView
from cloud.policies import HIDDEN_NAME, JobNames, PolicyChange
from cloud.service import CloudService
from cloud.states import JobState, ReleaseState
from cloud.uploads import SealedJob
from tests.cloud.conftest import (
    SITE_KEY,
    Enrolled,
    FakeClock,
    blob_files,
    new_identity,
    station_tag,
)
from tests.cloud.test_pagecount import pwg

PDF_LIKE = b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n2 0 obj << /Type /Page >> endobj\n"


def submit(
    service: CloudService, user: UserPrincipal, data: bytes = b"hello", **kw: object
) -> JobView:
    return service.uploads.submit(user, kw.pop("name", "doc.txt"), [data], **kw)  # type: ignore[arg-type]


def job_row(service: CloudService, job_id: uuid.UUID) -> Job:
    with service.context.read() as db:
        row = db.get(Job, job_id)
        assert row is not None
        return row


def kinds(service: CloudService, **where: object) -> list[str]:
    with service.context.read() as db:
        query = select(AuditEvent.kind).order_by(AuditEvent.id)
        for name, value in where.items():
            query = query.where(getattr(AuditEvent, name) == value)
        return list(db.scalars(query))


def open_and_release(
    service: CloudService, station: StationPrincipal, tag: str, job_ids: list[uuid.UUID] | None
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    session = service.sessions.open(station, tag)
    grants = service.releases.create(station, session.id, job_ids)
    return session.id, [grant.id for grant in grants]


# -- idempotency -------------------------------------------------------------------------------


def test_a_retried_submit_with_the_same_key_returns_the_same_job(
    service: CloudService, enrolled: Enrolled
) -> None:
    first = submit(service, enrolled.user, b"report", idempotency_key="k-1")
    again = submit(service, enrolled.user, b"report", idempotency_key="k-1")
    assert again.id == first.id and again.replayed and not first.replayed
    assert len(service.jobs.list_held(enrolled.user.id)) == 1
    assert len(blob_files(service)) == 1
    with pytest.raises(IdempotencyKeyReusedError):
        submit(service, enrolled.user, b"another body", idempotency_key="k-1")
    with pytest.raises(IdempotencyKeyReusedError):
        submit(service, enrolled.user, b"report", idempotency_key="k-1", copies=2)
    assert len(service.jobs.list_held(enrolled.user.id)) == 1
    # The key is the user's own: another user may use the same string.
    other = service.identity.create_user("bo@example.org", "Bo")
    bo = service.identity.authenticate_user(other.api_token)
    assert submit(service, bo, b"report", idempotency_key="k-1").id != first.id
    with pytest.raises(InvalidRequestError):
        submit(service, enrolled.user, b"x", idempotency_key="")


def test_concurrent_submits_with_one_key_make_one_job(
    service: CloudService, enrolled: Enrolled
) -> None:
    barrier = threading.Barrier(4)
    results: list[uuid.UUID] = []
    errors: list[BaseException] = []

    def one() -> None:
        upload = service.uploads.begin_upload(enrolled.user, "same.txt", idempotency_key="race")
        with upload:
            upload.write(b"same body")
            barrier.wait(timeout=10)  # all four looked the key up before any inserted it
            try:
                results.append(upload.finish().id)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and len(results) == 4 and len(set(results)) == 1
    assert len(service.jobs.list_held(enrolled.user.id)) == 1
    assert len(blob_files(service)) == 1  # the losers' blobs were removed


# -- metadata, privacy, expiry, quota ----------------------------------------------------------


def test_pages_are_counted_while_streaming(service: CloudService, enrolled: Enrolled) -> None:
    raster = pwg(3)
    pieces = [raster[i : i + 1000] for i in range(0, len(raster), 1000)]
    job = service.uploads.submit(
        enrolled.user, "scan.pwg", pieces, document_format="image/pwg-raster", copies=2
    )
    assert (job.pages, job.copies, job.document_format) == (3, 2, "image/pwg-raster")
    assert submit(service, enrolled.user, PDF_LIKE, document_format="application/pdf").pages == 2
    assert submit(service, enrolled.user, b"text", document_format="text/plain").pages is None


def test_job_names_kept_hidden_or_dropped(service: CloudService, enrolled: Enrolled) -> None:
    site = enrolled.user.site
    service.policies.update(site, PolicyChange(job_names=JobNames.HIDE))
    hidden = submit(service, enrolled.user, name="salary review.pdf")
    assert job_row(service, hidden.id).name == "salary review.pdf"  # the owner still sees it
    assert [j.name for j in service.jobs.list_held(enrolled.user.id, site)] == ["salary review.pdf"]
    session = service.sessions.open(enrolled.station, enrolled.tag)
    assert [j.name for j in session.jobs] == [HIDDEN_NAME]  # the station does not
    [grant] = service.releases.create(enrolled.station, session.id, [hidden.id])
    assert grant.name == HIDDEN_NAME
    service.policies.update(site, PolicyChange(job_names=JobNames.DROP))
    dropped = submit(service, enrolled.user, name="divorce papers.pdf")
    assert job_row(service, dropped.id).name == HIDDEN_NAME  # never recorded at all


def test_expiry_is_per_site(service: CloudService, enrolled: Enrolled, clock: FakeClock) -> None:
    default = submit(service, enrolled.user)
    assert default.expires_at - default.submitted_at == timedelta(hours=24)
    service.policies.update(enrolled.user.site, PolicyChange(job_expiry_h=2))
    short = submit(service, enrolled.user)
    assert short.expires_at - short.submitted_at == timedelta(hours=2)
    clock.advance(hours=3)
    assert service.sweep().expired_jobs == 1
    assert job_row(service, short.id).state == JobState.EXPIRED
    assert job_row(service, default.id).state == JobState.HELD
    with pytest.raises(InvalidRequestError):
        service.policies.update(enrolled.user.site, PolicyChange(job_expiry_h=0))


def test_quota_of_held_bytes(service: CloudService, enrolled: Enrolled) -> None:
    first = submit(service, enrolled.user, b"a" * 1000)
    held = first.content_bytes
    service.policies.update(enrolled.user.site, PolicyChange(quota_bytes=held + 1100))
    with pytest.raises(QuotaExceededError) as refused:
        submit(service, enrolled.user, b"b" * 2000)
    assert (refused.value.used_bytes, refused.value.quota_bytes) == (held, held + 1100)
    with pytest.raises(QuotaExceededError):  # refused up front from the declared length
        service.uploads.begin_upload(enrolled.user, "big", expected_bytes=5000)
    assert len(blob_files(service)) == 1  # nothing of the refused uploads is left
    assert [e for e in kinds(service) if e == "upload-aborted"] == ["upload-aborted"]
    service.jobs.delete(enrolled.user.id, first.id)  # deleting frees the quota
    submit(service, enrolled.user, b"b" * 2000)
    service.policies.update(enrolled.user.site, PolicyChange(quota_bytes=0))  # 0: no quota
    submit(service, enrolled.user, b"c" * 5000)


# -- releases: cancel, lease, reprint ------------------------------------------------------------


def test_cancel_returns_the_job_to_held_and_is_idempotent(
    service: CloudService, enrolled: Enrolled
) -> None:
    job = submit(service, enrolled.user)
    _, [release_id] = open_and_release(service, enrolled.station, enrolled.tag, [job.id])
    view = service.releases.report_outcome(enrolled.station, release_id, ReleaseState.CANCELLED)
    assert view.state is ReleaseState.CANCELLED
    again = service.releases.report_outcome(enrolled.station, release_id, ReleaseState.CANCELLED)
    assert again.state is ReleaseState.CANCELLED
    assert job_row(service, job.id).state == JobState.HELD
    with pytest.raises(ReleaseConflictError):
        service.releases.report_outcome(enrolled.station, release_id, ReleaseState.PRINTED)
    assert kinds(service, release_id=release_id) == ["release-requested", "release-cancelled"]
    # Released again, it gets a new release record.
    _, [second] = open_and_release(service, enrolled.station, enrolled.tag, None)
    assert second != release_id
    with service.context.read() as db:
        row = db.get(Release, second)
        assert row is not None
        assert (row.printer_uri, row.released_by) == (
            enrolled.station.printer_uri,
            enrolled.user.id,
        )


def test_printed_jobs_kept_for_reprint_until_expiry(
    service: CloudService, enrolled: Enrolled, clock: FakeClock
) -> None:
    service.policies.update(enrolled.user.site, PolicyChange(keep_printed=True))
    job = submit(service, enrolled.user, b"print me twice")
    _, [first] = open_and_release(service, enrolled.station, enrolled.tag, None)
    service.releases.report_outcome(enrolled.station, first, ReleaseState.PRINTED)
    row = job_row(service, job.id)
    assert row.state == JobState.PRINTED and row.wrapped_key is not None
    assert len(blob_files(service)) == 1
    session = service.sessions.open(enrolled.station, enrolled.tag)
    [listed] = session.jobs
    assert listed.reprintable
    # "all" releases held jobs only; a reprint is chosen explicitly and is a new release.
    assert service.releases.create(enrolled.station, session.id, None) == []
    [grant] = service.releases.create(enrolled.station, session.id, [job.id])
    assert grant.reprint and grant.id != first
    assert job_row(service, job.id).state == JobState.RELEASING
    # A failed reprint goes back to printed (content kept), not to the held list.
    service.releases.report_outcome(enrolled.station, grant.id, ReleaseState.FAILED, "jam")
    assert job_row(service, job.id).state == JobState.PRINTED
    assert service.jobs.list_held(enrolled.user.id) == []
    [third] = service.releases.create(enrolled.station, session.id, [job.id])
    service.releases.report_outcome(enrolled.station, third.id, ReleaseState.PRINTED)
    # At expiry the content is destroyed; the job stays "printed".
    clock.advance(hours=25)
    service.sweep()
    row = job_row(service, job.id)
    assert (row.state, row.wrapped_key, row.blob_key) == (JobState.PRINTED, None, None)
    assert blob_files(service) == []
    trail = kinds(service, job_id=job.id)
    assert trail.count("content-kept-for-reprint") == 2
    assert trail[-2:] == ["content-destroyed", "blob-deleted"]


def test_reprint_lease_expiry_returns_to_printed(
    service: CloudService, enrolled: Enrolled, clock: FakeClock
) -> None:
    service.policies.update(enrolled.user.site, PolicyChange(keep_printed=True))
    job = submit(service, enrolled.user)
    _, [first] = open_and_release(service, enrolled.station, enrolled.tag, None)
    service.releases.report_outcome(enrolled.station, first, ReleaseState.PRINTED)
    _, [reprint] = open_and_release(service, enrolled.station, enrolled.tag, [job.id])
    clock.advance(seconds=service.config.release_lease_s + 1)
    assert service.sweep().expired_leases == 1
    assert job_row(service, job.id).state == JobState.PRINTED
    # The station was only slow: its late "printed" is accepted, and nothing prints twice.
    late = service.releases.report_outcome(enrolled.station, reprint, ReleaseState.PRINTED)
    assert late.state is ReleaseState.PRINTED
    assert job_row(service, job.id).wrapped_key is not None


def test_owner_deletes_a_job_kept_for_reprint(service: CloudService, enrolled: Enrolled) -> None:
    service.policies.update(enrolled.user.site, PolicyChange(keep_printed=True))
    job = submit(service, enrolled.user)
    _, [release] = open_and_release(service, enrolled.station, enrolled.tag, None)
    service.releases.report_outcome(enrolled.station, release, ReleaseState.PRINTED)
    service.jobs.delete(enrolled.user.id, job.id)
    row = job_row(service, job.id)
    assert (row.state, row.wrapped_key) == (JobState.DELETED, None)
    service.jobs.delete(enrolled.user.id, job.id)  # idempotent
    assert blob_files(service) == []


def test_printed_content_is_destroyed_and_recorded_without_reprint(
    service: CloudService, enrolled: Enrolled
) -> None:
    job = submit(service, enrolled.user)
    _, [release] = open_and_release(service, enrolled.station, enrolled.tag, None)
    service.releases.report_outcome(enrolled.station, release, ReleaseState.PRINTED)
    assert job_row(service, job.id).wrapped_key is None and blob_files(service) == []
    assert kinds(service, job_id=job.id) == [
        "job-submitted",
        "release-requested",
        "content-destroyed",
        "release-printed",
        "blob-deleted",
    ]


# -- delegation and release-all-on-tap ---------------------------------------------------------


def test_a_delegate_sees_and_releases_the_owners_jobs(
    service: CloudService, enrolled: Enrolled
) -> None:
    issued = service.identity.create_user("bo@example.org", "Bo Delegate")
    bo = service.identity.authenticate_user(issued.api_token)
    bo_tag = station_tag("wiegand26:777")
    service.identity.add_card(bo.id, bo_tag, "bo's badge")
    ada_job = submit(service, enrolled.user, name="ada.pdf")
    bo_job = submit(service, bo, name="bo.pdf")
    # Before delegation Bo sees only his own job and cannot release Ada's.
    session = service.sessions.open(enrolled.station, bo_tag)
    assert [j.id for j in session.jobs] == [bo_job.id]
    with pytest.raises(JobNotFoundError):
        service.releases.create(enrolled.station, session.id, [ada_job.id])
    service.delegations.grant(enrolled.user, "bo@example.org")
    service.delegations.grant(enrolled.user, "bo@example.org")  # idempotent
    session = service.sessions.open(enrolled.station, bo_tag)
    assert [j.id for j in session.jobs] == [bo_job.id, ada_job.id]
    assert session.delegated == {ada_job.id: "Ada Lovelace"}
    [grant] = service.releases.create(enrolled.station, session.id, [ada_job.id])
    assert (grant.owner_name, grant.user_name) == ("Ada Lovelace", "Ada Lovelace")
    with service.context.read() as db:
        event = db.scalar(
            select(AuditEvent).where(
                AuditEvent.release_id == grant.id, AuditEvent.kind == "release-requested"
            )
        )
        assert event is not None and (event.user_id, event.detail) == (bo.id, "delegated")
    # Bo may not delete Ada's job; revoking ends the delegation.
    with pytest.raises(JobNotFoundError):
        service.sessions.delete_job(enrolled.station, session.id, ada_job.id)
    service.delegations.revoke(enrolled.user, bo.id)
    assert service.delegations.list_granted(enrolled.user) == []
    service.releases.report_outcome(enrolled.station, grant.id, ReleaseState.FAILED, "x")
    session = service.sessions.open(enrolled.station, bo_tag)
    assert [j.id for j in session.jobs] == [bo_job.id]
    assert "delegation-granted" in kinds(service) and "delegation-revoked" in kinds(service)
    with pytest.raises(InvalidRequestError):
        service.delegations.grant(enrolled.user, "ada@example.org")


def test_release_all_on_tap_is_announced_to_the_station(
    service: CloudService, enrolled: Enrolled
) -> None:
    submit(service, enrolled.user)
    assert service.sessions.open(enrolled.station, enrolled.tag).release_all is False
    service.policies.update(enrolled.user.site, PolicyChange(release_all_on_tap=True))
    assert service.sessions.open(enrolled.station, enrolled.tag).release_all is True


# -- zero-knowledge mode ---------------------------------------------------------------------


def raw_public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def raw_private(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def seal(document: bytes, site: str, public: bytes) -> tuple[SealedJob, bytes]:
    """What `pullprint submit` does for a zero-knowledge site."""
    job_id, data_key = uuid.uuid4(), new_data_key()
    enc = Encryptor(data_key, job_id, site, chunk_bytes=1024)
    container = enc.header + enc.update(document) + enc.finalize()
    return SealedJob(job_id, hpke_wrap_key(public, data_key, job_id, site), pages=7), container


def zk_station(service: CloudService, site_key: X25519PrivateKey) -> StationPrincipal:
    identity = new_identity()
    issued = service.pairing.request(identity.signing_public, identity.exchange_public, "1.2.3.4")
    approved = service.pairing.approve(
        issued.user_code,
        site_key=SITE_KEY,
        printer_name="zk printer",
        printer_uri="ipp://127.0.0.1:1/ipp/print",
        site_private_key=raw_private(site_key),
    )
    return StationPrincipal(approved.station_id, approved.site, "zk printer", approved.printer_uri)


def everything_the_cloud_holds(service: CloudService) -> list[bytes]:
    """Every byte string in the data directory: database (with WAL), blobs, secrets file."""
    root: Path = service.config.data_dir
    return [p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()]


def test_zero_knowledge_job_is_opaque_to_the_cloud_but_prints_at_a_station(
    service: CloudService, enrolled: Enrolled
) -> None:
    site = enrolled.user.site
    site_key = X25519PrivateKey.generate()
    service.policies.update(
        site, PolicyChange(zero_knowledge=True, public_key=raw_public(site_key))
    )
    document = b"TOP SECRET merger terms " * 300
    sealed, container = seal(document, site, raw_public(site_key))
    with pytest.raises(SealedJobRequiredError):  # the REST API takes sealed jobs only
        service.uploads.begin_upload(enrolled.user, "plain.txt", seal_on_intake=False)
    pieces = [container[i : i + 777] for i in range(0, len(container), 777)]
    job = service.uploads.submit(
        enrolled.user, "merger.pdf", pieces, document_format="application/pdf", sealed=sealed
    )
    assert (job.id, job.sha256, job.pages, job.key_wrap) == (sealed.job_id, None, 7, "hpke")
    assert job.size_bytes == len(document) and job.content_bytes == len(container)
    row = job_row(service, job.id)
    assert row.wrapped_key == sealed.wrapped_key and row.sha256 is None

    # Everything the cloud holds: no plaintext, no private key, and its keys open nothing.
    held = everything_the_cloud_holds(service)
    secret_key = raw_private(site_key)
    assert not any(b"TOP SECRET" in blob for blob in held)
    assert not any(secret_key in blob or secret_key.hex().encode() in blob for blob in held)
    with pytest.raises(ContainerError):
        unwrap_key(service.config.master_key, row.wrapped_key, job.id)
    for candidate in (service.config.master_key, service.config.pepper):
        with pytest.raises(ContainerError):
            hpke_unwrap_key(
                X25519PrivateKey.from_private_bytes(candidate), row.wrapped_key, job.id, site
            )

    # A station of the site (holding the private key from its grant) can.
    station = zk_station(service, site_key)
    session = service.sessions.open(station, enrolled.tag)
    [grant] = service.releases.create(station, session.id, None)
    assert grant.data_key is None and grant.wrapped_key == row.wrapped_key
    data_key = hpke_unwrap_key(site_key, grant.wrapped_key, grant.job_id, grant.site)
    stream = service.releases.open_content(station, grant.id)
    decryptor = Decryptor(data_key, job.id, site)
    plain = b"".join(decryptor.update(chunk) for chunk in stream) + decryptor.finalize()
    assert plain == document


def test_zero_knowledge_intake_rules(service: CloudService, enrolled: Enrolled) -> None:
    site = enrolled.user.site
    site_key = X25519PrivateKey.generate()
    public = raw_public(site_key)
    sealed, container = seal(b"doc", site, public)
    with pytest.raises(InvalidSealedJobError):  # not a zero-knowledge site yet
        service.uploads.submit(enrolled.user, "x", [container], sealed=sealed)
    service.policies.update(site, PolicyChange(zero_knowledge=True, public_key=public))
    other, other_container = seal(b"doc", site, public)
    with pytest.raises(InvalidSealedJobError):  # the container names another job
        service.uploads.submit(enrolled.user, "x", [other_container], sealed=sealed)
    with pytest.raises(InvalidSealedJobError):  # cut short
        service.uploads.submit(enrolled.user, "x", [container[:-5]], sealed=sealed)
    foreign, foreign_container = seal(b"doc", "another-site", public)
    with pytest.raises(InvalidSealedJobError):  # sealed for another site
        service.uploads.submit(enrolled.user, "x", [foreign_container], sealed=foreign)
    with pytest.raises(InvalidSealedJobError):
        service.uploads.submit(enrolled.user, "x", [b"not a container"], sealed=other)
    assert blob_files(service) == []
    first = service.uploads.submit(enrolled.user, "x", [container], sealed=sealed)
    stored = blob_files(service)
    with pytest.raises(ConflictError):  # the same job id twice
        service.uploads.submit(enrolled.user, "x", [container], sealed=sealed)
    # ... and the refused one touched nothing of the first job's content.
    assert blob_files(service) == stored and stored[0].read_bytes() == container
    assert job_row(service, first.id).wrapped_key == sealed.wrapped_key
    # Once zero-knowledge, always: neither switched off nor re-keyed.
    with pytest.raises(ConflictError):
        service.policies.update(site, PolicyChange(zero_knowledge=False))
    with pytest.raises(ConflictError):
        service.policies.update(
            site, PolicyChange(public_key=raw_public(X25519PrivateKey.generate()))
        )


def test_ipp_intake_seals_plaintext_on_arrival(service: CloudService, enrolled: Enrolled) -> None:
    """The IPP endpoint's path (`seal_on_intake`, the default): the cloud encrypts as the
    document streams in and wraps the key to the site key; it keeps no way back."""
    site = enrolled.user.site
    site_key = X25519PrivateKey.generate()
    service.policies.update(
        site, PolicyChange(zero_knowledge=True, public_key=raw_public(site_key))
    )
    job = submit(service, enrolled.user, PDF_LIKE, document_format="application/pdf")
    row = job_row(service, job.id)
    assert (row.key_wrap, row.sha256, row.pages) == ("hpke", None, 2)
    assert not any(b"/Type /Page" in blob for blob in everything_the_cloud_holds(service))
    with pytest.raises(ContainerError):
        unwrap_key(service.config.master_key, row.wrapped_key or b"", job.id)
    data_key = hpke_unwrap_key(site_key, row.wrapped_key or b"", job.id, site)
    stored = service.blobs.open(row.blob_key or "").read()
    decryptor = Decryptor(data_key, job.id, site)
    assert decryptor.update(stored) + decryptor.finalize() == PDF_LIKE


def test_pairing_a_zero_knowledge_site_needs_its_matching_private_key(
    service: CloudService,
) -> None:
    site_key = X25519PrivateKey.generate()
    service.policies.update(
        service.config.site, PolicyChange(zero_knowledge=True, public_key=raw_public(site_key))
    )
    for wrong in (None, raw_private(X25519PrivateKey.generate())):
        identity = new_identity()
        issued = service.pairing.request(identity.signing_public, identity.exchange_public, "x")
        with pytest.raises(InvalidRequestError):
            service.pairing.approve(
                issued.user_code,
                site_key=SITE_KEY,
                printer_name="p",
                printer_uri="ipp://p/ipp/print",
                site_private_key=wrong,
            )
    assert zk_station(service, site_key).site == service.config.site


def test_hpke_wrap_is_bound_to_job_and_site() -> None:
    key = X25519PrivateKey.generate()
    job_id, data_key = uuid.uuid4(), new_data_key()
    wrapped = hpke_wrap_key(raw_public(key), data_key, job_id, "site-a")
    assert hpke_unwrap_key(key, wrapped, job_id, "site-a") == data_key
    for args in ((job_id, "site-b"), (uuid.uuid4(), "site-a")):
        with pytest.raises(ContainerError):
            hpke_unwrap_key(key, wrapped, *args)
    with pytest.raises(ContainerError):
        hpke_unwrap_key(X25519PrivateKey.generate(), wrapped, job_id, "site-a")
    tampered = wrapped[:-1] + bytes([wrapped[-1] ^ 1])
    with pytest.raises(ContainerError):
        hpke_unwrap_key(key, tampered, job_id, "site-a")


def test_deleting_a_held_job_mid_release_is_refused(
    service: CloudService, enrolled: Enrolled
) -> None:
    job = submit(service, enrolled.user)
    open_and_release(service, enrolled.station, enrolled.tag, None)
    with pytest.raises(JobNotHeldError):
        service.jobs.delete(enrolled.user.id, job.id)
