"""Streaming intake: a document arrives in pieces and is parked encrypted, or not at all.

Invariants:

* a document is never held whole in memory: it is encrypted chunk by chunk (`cloud.container`)
  straight into a blob writer, hashed (SHA-256) and its pages counted (`cloud.pagecount`) on the
  way;
* a job row exists only for a committed blob: the blob is committed first, then the row is
  inserted; if anything fails, the body is shorter (or longer) than declared, the client goes
  away, or the user's quota would be exceeded, the staged blob is discarded and no job exists;
* `content_bytes` is measured, not computed, so it always equals the stored blob's size;
* a submission with an `Idempotency-Key` creates at most one job: the key is recorded in the
  transaction that inserts the job, with a fingerprint of the request (parameters + body); a
  retry with the same key and request gets the same job, another request with it is refused;
* the quota counts the bytes a user's jobs hold in the store (held, being released, or kept for
  reprint), checked before, during and (atomically with the insert) after the upload;
* zero-knowledge sites (`cloud.policies`): the data key is wrapped to the site's public key with
  HPKE, never to the master key, and no plaintext digest is kept. The REST API takes only
  *sealed* jobs there (the submitter encrypted the container: the cloud sees ciphertext only,
  checks the header names this job and site, and stores it as it came); the IPP endpoint, whose
  clients cannot encrypt, seals on intake: the plaintext passes through memory one chunk at a
  time to be encrypted, and is never stored.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from types import TracebackType
from typing import Any, Protocol, Self

from anyio import to_thread
from sqlalchemy import Connection, Select, bindparam, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.blobstore import BlobWriter
from cloud.container import (
    HPKE_WRAPPED_BYTES,
    ContainerError,
    Encryptor,
    Header,
    KeyWrap,
    body_plaintext_bytes,
    hpke_wrap_key,
    new_data_key,
    wrap_key,
)
from cloud.context import ServiceContext
from cloud.db import Job, JobIdempotencyKey
from cloud.errors import (
    CloudError,
    ConflictError,
    EmptyDocumentError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    InvalidSealedJobError,
    QuotaExceededError,
    SealedJobRequiredError,
    TruncatedUploadError,
)
from cloud.identity import UserPrincipal
from cloud.jobs import JobView
from cloud.pagecount import page_counter_for
from cloud.policies import HIDDEN_NAME, JobNames, Policy, load_policy
from cloud.prepared import Prepared
from cloud.states import JobState

log = logging.getLogger(__name__)

# Plaintext gathered before hopping to a worker thread: one container chunk's worth, so the
# event loop is not paying a thread switch per network read.
_ASYNC_BATCH_BYTES = 64 * 1024
# `submit_async` reads a body announced at up to this size whole, then parks it in one go.
WHOLE_BODY_BYTES = 256 * 1024
_MAX_NAME_CHARS = 255
_MAX_FORMAT_CHARS = 127
_MAX_KEY_CHARS = 255
_MAX_PAGES = 1_000_000
_MAX_HEADER_BYTES = 4 + 1 + 4 + 16 + 1 + 255 + 32
DEFAULT_FORMAT = "application/octet-stream"
IDEMPOTENCY_TTL_H = 48

# Called inside the transaction that inserts the job row, with that row's id: lets another
# record (an IPP job) point at the job atomically, so neither exists without the other.
LinkHook = Callable[[Session, uuid.UUID], None]


@dataclass(frozen=True, slots=True)
class PrintOptions:
    """Job template values recorded with the document (RFC 8011 §5.2, PWG 5100.13)."""

    copies: int = 1
    sides: str | None = None
    color_mode: str | None = None


@dataclass(frozen=True, slots=True)
class SealedJob:
    """A zero-knowledge submission: the body is a container the submitter encrypted.

    `job_id` is the id in the container header (the submitter chose it); `wrapped_key` is the data
    key wrapped to the site's public key (`cloud.container.hpke_wrap_key`); `pages` is the
    submitter's own count (the cloud cannot count what it cannot read).
    """

    job_id: uuid.UUID
    wrapped_key: bytes
    pages: int | None = None


class Upload(Protocol):
    """A submission in progress: a new job, or the replay of an idempotent one."""

    size_bytes: int

    def write(self, data: bytes) -> None: ...

    def finish(self) -> JobView: ...

    def abort(self, reason: str = "aborted") -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def _fingerprinter(
    name: str,
    document_format: str,
    options: PrintOptions,
    sealed: SealedJob | None,
) -> hashlib._Hash:
    """SHA-256 over the request's parameters, ready to take the body."""
    params = {
        "name": name,
        "format": document_format,
        "copies": options.copies,
        "sides": options.sides,
        "color_mode": options.color_mode,
        "sealed": None
        if sealed is None
        else {
            "job_id": str(sealed.job_id),
            "wrapped_key": base64.b64encode(sealed.wrapped_key).decode("ascii"),
            "pages": sealed.pages,
        },
    }
    digest = hashlib.sha256(b"pullprint/submit/v1|")
    digest.update(json.dumps(params, sort_keys=True, separators=(",", ":")).encode() + b"|")
    return digest


_HELD_BYTES = select(func.coalesce(func.sum(Job.content_bytes), 0)).where(
    Job.owner_id == bindparam("owner_id"),
    Job.site == bindparam("site"),
    Job.wrapped_key.is_not(None),
)
# Twice per submission: prepared (building the statement each time cost more than the sum).
_HELD_BYTES_SUM = Prepared(_HELD_BYTES)
# A submission's row, every column named (`_insert`).
_JOB_INSERT_COLUMNS = [column.key for column in Job.__table__.columns]
_JOB_INSERT = Prepared(insert(Job), keys=_JOB_INSERT_COLUMNS)


def held_bytes_query(site: str, owner_id: uuid.UUID) -> Select[Any]:
    """The sum of what a user's jobs hold in the store now (content not yet destroyed), read
    from the partial index `ix_jobs_held_content` alone (migration 0012)."""
    return _HELD_BYTES.params(site=site, owner_id=owner_id)


def held_bytes(db: Session | Connection, site: str, owner_id: uuid.UUID) -> int:
    """What a user's jobs hold in the store now (content not yet destroyed)."""
    row = _HELD_BYTES_SUM.first(db, {"site": site, "owner_id": owner_id})
    return int(row[0] or 0) if row is not None else 0


def record_aborted_upload(ctx: ServiceContext, owner: UserPrincipal, reason: str) -> None:
    """Log and audit a submission that stored nothing (never its content); never raises, so
    the error that ended the upload is the one the caller sees."""
    log.info("upload by user %s discarded: %s", owner.id, reason)
    try:
        with ctx.write() as db:
            ctx.audit(db, "upload-aborted", user_id=owner.id, detail=reason, site=owner.site)
    except Exception:  # the upload is gone either way; do not mask the original error
        log.exception("could not record the aborted upload")


def _quota_error(used: int, adding: int, quota: int) -> QuotaExceededError:
    return QuotaExceededError(
        f"this job would hold {used + adding} bytes of the {quota} bytes allowed per user; "
        "print or delete held jobs first",
        used_bytes=used,
        quota_bytes=quota,
    )


class JobUpload:
    """One document being streamed into the store; use as a context manager.

    `write()` the body in pieces, then `finish()`; leaving the block without finishing (or any
    failure) aborts: the staged blob is discarded and no job is created.
    """

    def __init__(
        self,
        ctx: ServiceContext,
        owner: UserPrincipal,
        policy: Policy,
        *,
        name: str,
        document_format: str,
        options: PrintOptions,
        expected_bytes: int | None,
        used_bytes: int,
        sealed: SealedJob | None = None,
        idempotency_key: str | None = None,
        link: LinkHook | None = None,
    ) -> None:
        self._ctx = ctx
        self._owner = owner
        self._policy = policy
        self._name = HIDDEN_NAME if policy.job_names is JobNames.DROP else name
        self._format = document_format
        self._options = options
        self._link = link
        self._expected = expected_bytes
        self._used = used_bytes
        self._sealed = sealed
        self._key = idempotency_key
        self._fingerprint = _fingerprinter(name, document_format, options, sealed)
        self.job_id = sealed.job_id if sealed is not None else uuid.uuid4()
        # A sealed job's id comes from the submitter: its blob gets a name of our own, so a
        # reused id can never overwrite (or, on failure, delete) another job's content.
        self._blob_key = uuid.uuid4().hex if sealed is not None else self.job_id.hex
        self.size_bytes = 0
        self._finished = False
        self._content_bytes = 0
        self._writer: BlobWriter = ctx.blobs.open_writer(self._blob_key)
        if sealed is None:
            self._data_key = new_data_key()
            self._encryptor: Encryptor | None = Encryptor(self._data_key, self.job_id, owner.site)
            self._sha256 = None if policy.zero_knowledge else hashlib.sha256()
            self._pages = page_counter_for(document_format)
            try:
                self._emit(self._encryptor.header)
            except BaseException:
                self._writer.abort()  # no context manager owns the writer yet
                raise
        else:
            self._encryptor = None
            self._sha256 = None
            self._header = bytearray()
            self._chunk_bytes = 0
            self._header_bytes = 0

    def _emit(self, data: bytes) -> None:
        if data:
            if self._policy.quota_bytes is not None and (
                self._used + self._content_bytes + len(data) > self._policy.quota_bytes
            ):
                raise _quota_error(
                    self._used, self._content_bytes + len(data), self._policy.quota_bytes
                )
            self._writer.write(data)
            self._content_bytes += len(data)

    def write(self, data: bytes) -> None:
        """Hash, count, encrypt (or, for a sealed job, check) and stage one piece."""
        if self._finished:
            raise InvalidRequestError("upload already finished")
        self.size_bytes += len(data)
        if self._expected is not None and self.size_bytes > self._expected:
            raise InvalidRequestError("the body is longer than its declared length")
        self._fingerprint.update(data)
        if self._encryptor is None:
            self._check_sealed_header(data)
            self._emit(data)
            return
        if self._sha256 is not None:
            self._sha256.update(data)
        self._pages.feed(data)
        self._emit(self._encryptor.update(data))

    def _check_sealed_header(self, data: bytes) -> None:
        if self._header_bytes:
            return
        self._header += data[: _MAX_HEADER_BYTES - len(self._header)]
        try:
            parsed = Header.parse(bytes(self._header))
        except ContainerError as exc:
            raise InvalidSealedJobError(f"the body is not a job container: {exc}") from None
        if parsed is None:
            if len(self._header) >= _MAX_HEADER_BYTES:
                raise InvalidSealedJobError("the body is not a job container")
            return
        header, used = parsed
        if header.job_id != self.job_id:
            raise InvalidSealedJobError("the container names another job id")
        if header.site != self._owner.site:
            raise InvalidSealedJobError("the container is sealed for another site")
        self._chunk_bytes, self._header_bytes = header.chunk_bytes, used
        self._header.clear()

    def finish(self) -> JobView:
        """Seal the container, commit the blob, then record the job.

        Raises:
            EmptyDocumentError: nothing was written.
            TruncatedUploadError: fewer bytes than `expected_bytes` arrived.
            InvalidSealedJobError: a sealed body is not a whole container of this job.
            QuotaExceededError: the user's held bytes would exceed the site's quota.
            IdempotencyKeyReusedError: the key was used (concurrently) for another request.
        """
        if self._finished:
            raise InvalidRequestError("upload already finished")
        if self.size_bytes == 0:
            raise EmptyDocumentError("the document is empty")
        if self._expected is not None and self.size_bytes < self._expected:
            raise TruncatedUploadError(
                f"received {self.size_bytes} of {self._expected} declared bytes"
            )
        if self._encryptor is not None:
            self._emit(self._encryptor.finalize())
            plaintext_bytes = self.size_bytes
            pages = self._pages.close()
        else:
            if not self._header_bytes:
                raise InvalidSealedJobError("the body is not a job container")
            body = body_plaintext_bytes(self._content_bytes - self._header_bytes, self._chunk_bytes)
            if body is None:
                raise InvalidSealedJobError("the container is cut short or padded")
            plaintext_bytes = body
            assert self._sealed is not None
            pages = self._sealed.pages
        self._writer.commit()
        self._finished = True
        try:
            return self._insert(plaintext_bytes, pages)
        except BaseException:
            # The blob was committed but no row points at it: remove it again.
            self._ctx.blobs.delete(self._blob_key)
            raise

    def _wrapped_key(self) -> tuple[bytes, KeyWrap]:
        if self._sealed is not None:
            return self._sealed.wrapped_key, KeyWrap.HPKE
        if self._policy.zero_knowledge:
            assert self._policy.public_key is not None  # a policy invariant
            wrapped = hpke_wrap_key(
                self._policy.public_key, self._data_key, self.job_id, self._owner.site
            )
            return wrapped, KeyWrap.HPKE
        return wrap_key(self._ctx.config.master_key, self._data_key, self.job_id), KeyWrap.MASTER

    def _insert(self, plaintext_bytes: int, pages: int | None) -> JobView:
        ctx = self._ctx
        now = ctx.now()
        wrapped, key_wrap = self._wrapped_key()
        fingerprint = self._fingerprint.hexdigest()
        job = Job(
            id=self.job_id,
            site=self._owner.site,
            owner_id=self._owner.id,
            name=self._name,
            document_format=self._format,
            size_bytes=plaintext_bytes,
            content_bytes=self._content_bytes,
            sha256=self._sha256.hexdigest() if self._sha256 is not None else None,
            copies=self._options.copies,
            pages=pages,
            state=JobState.HELD,
            wrapped_key=wrapped,
            key_wrap=str(key_wrap),
            blob_key=self._blob_key,
            submitted_at=now,
            expires_at=now + timedelta(hours=self._policy.job_expiry_h),
            printed_at=None,
            sides=self._options.sides,
            color_mode=self._options.color_mode,
        )
        try:
            with ctx.write() as db:
                quota = self._policy.quota_bytes
                if quota is not None:
                    # Again inside the transaction: two uploads racing for the last bytes.
                    used = held_bytes(db, self._owner.site, self._owner.id)
                    if used + self._content_bytes > quota:
                        raise _quota_error(used, self._content_bytes, quota)
                if self._sealed is not None and db.get(Job, self.job_id) is not None:
                    raise ConflictError("a job with this id exists; seal the job again")
                # A Core insert of the (transient) row: the ORM's unit of work cost more than
                # the rest of the transaction. It exists before anything refers to it.
                _JOB_INSERT.run(
                    db,
                    {column: getattr(job, column) for column in _JOB_INSERT_COLUMNS},
                )
                if self._key is not None:
                    db.add(
                        JobIdempotencyKey(
                            owner_id=self._owner.id,
                            key=self._key,
                            site=self._owner.site,
                            job_id=job.id,
                            fingerprint=fingerprint,
                            created_at=now,
                        )
                    )
                    db.flush()
                if self._link is not None:
                    self._link(db, job.id)
                ctx.audit(
                    db,
                    "job-submitted",
                    user_id=self._owner.id,
                    job_id=self.job_id,
                    detail=str(key_wrap),
                    site=self._owner.site,
                )
        except IntegrityError:
            if self._key is None:
                raise
            # Another request with the same key won the race: ours was a duplicate, so its blob
            # goes, and the answer is the winner's job (or the refusal of a different request).
            ctx.blobs.delete(self._blob_key)
            return _resolve_replay(ctx, self._owner, self._key, fingerprint)
        log.info(
            "job %s submitted by user %s (%d bytes, %s)",
            job.id,
            job.owner_id,
            job.size_bytes,
            key_wrap,
        )
        return JobView.of(job)

    def abort(self, reason: str = "aborted") -> None:
        """Discard the staged blob (idempotent); records why, without any content."""
        if self._finished:
            return
        self._finished = True
        self._writer.abort()
        record_aborted_upload(self._ctx, self._owner, reason)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._finished:
            self.abort(_reason(exc))


def _resolve_replay(
    ctx: ServiceContext, owner: UserPrincipal, key: str, fingerprint: str
) -> JobView:
    """The job an earlier request with this key created, if it was the same request."""
    with ctx.read() as db:
        row = db.get(JobIdempotencyKey, (owner.id, key))
        if row is None or row.site != owner.site:
            raise ConflictError("the idempotency key is being used by another request; retry")
        if row.fingerprint != fingerprint:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was used for a different request; use a new key"
            )
        job = db.get(Job, row.job_id)
        assert job is not None  # foreign key
        return replace(JobView.of(job), replayed=True)


class IdempotentReplay:
    """A retried submission whose key is known: the body is read and fingerprinted, not stored."""

    def __init__(
        self,
        ctx: ServiceContext,
        owner: UserPrincipal,
        key: str,
        fingerprint: hashlib._Hash,
    ) -> None:
        self._ctx = ctx
        self._owner = owner
        self._key = key
        self._fingerprint = fingerprint
        self.size_bytes = 0

    def write(self, data: bytes) -> None:
        """Fingerprint one piece of the retried body."""
        self.size_bytes += len(data)
        self._fingerprint.update(data)

    def finish(self) -> JobView:
        """The job the first request created.

        Raises:
            IdempotencyKeyReusedError: the key was used for a different request.
        """
        view = _resolve_replay(self._ctx, self._owner, self._key, self._fingerprint.hexdigest())
        log.info("idempotent retry by user %s answered with job %s", self._owner.id, view.id)
        return view

    def abort(self, reason: str = "aborted") -> None:
        """Nothing was staged."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, CloudError):
        return exc.code
    return "aborted" if exc is None else type(exc).__name__


class Uploads:
    """Streaming intake of documents into the encrypted store."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def begin_upload(
        self,
        owner: UserPrincipal,
        name: str,
        *,
        document_format: str = DEFAULT_FORMAT,
        copies: int = 1,
        expected_bytes: int | None = None,
        options: PrintOptions | None = None,
        link: LinkHook | None = None,
        sealed: SealedJob | None = None,
        idempotency_key: str | None = None,
        seal_on_intake: bool = True,
    ) -> Upload:
        """Start streaming a document (see `JobUpload`), or replay an idempotent submission.

        `options` (which then also gives the copies) and `link` serve the IPP endpoint.
        `seal_on_intake=False` refuses plaintext for a zero-knowledge site (the REST API).

        Raises:
            InvalidRequestError: a bad name, format, copies count or idempotency key.
            InvalidSealedJobError: a sealed job for a site that is not zero-knowledge, or with a
                malformed wrapped key or page count.
            SealedJobRequiredError: plaintext for a zero-knowledge site, `seal_on_intake` off.
            QuotaExceededError: the declared length alone would exceed the user's quota.
        """
        name = name.strip()
        document_format = document_format.strip() or DEFAULT_FORMAT
        if not name or len(name) > _MAX_NAME_CHARS:
            raise InvalidRequestError(f"the name must be 1-{_MAX_NAME_CHARS} characters")
        if len(document_format) > _MAX_FORMAT_CHARS:
            raise InvalidRequestError("the document format is too long")
        if options is None:
            options = PrintOptions(copies=copies)
        if not 1 <= options.copies <= 999:
            raise InvalidRequestError("copies must be 1-999")
        if expected_bytes is not None and expected_bytes < 0:
            raise InvalidRequestError("a negative length")
        if idempotency_key is not None and not (
            0 < len(idempotency_key) <= _MAX_KEY_CHARS and idempotency_key.isprintable()
        ):
            raise InvalidRequestError(f"an idempotency key is 1-{_MAX_KEY_CHARS} characters")
        if sealed is not None:
            if len(sealed.wrapped_key) != HPKE_WRAPPED_BYTES:
                raise InvalidSealedJobError("the wrapped key has the wrong length")
            if sealed.pages is not None and not 1 <= sealed.pages <= _MAX_PAGES:
                raise InvalidSealedJobError("pages out of range")
        ctx = self._ctx
        with ctx.read() as db:
            policy = load_policy(ctx, db, owner.site)
            if idempotency_key is not None:
                known = db.get(JobIdempotencyKey, (owner.id, idempotency_key))
                if known is not None and known.site == owner.site:
                    fingerprint = _fingerprinter(name, document_format, options, sealed)
                    return IdempotentReplay(ctx, owner, idempotency_key, fingerprint)
            used = held_bytes(db, owner.site, owner.id) if policy.quota_bytes is not None else 0
        if sealed is not None and not policy.zero_knowledge:
            raise InvalidSealedJobError("this site is not zero-knowledge; send the document")
        if sealed is not None:
            with ctx.read() as db:
                if db.get(Job, sealed.job_id) is not None:
                    raise ConflictError("a job with this id exists; seal the job again")
        if sealed is None and policy.zero_knowledge and not seal_on_intake:
            raise SealedJobRequiredError(
                "this site is zero-knowledge: encrypt the job to the site key (pullprint submit)"
            )
        if (
            policy.quota_bytes is not None
            and expected_bytes is not None
            and used + expected_bytes > policy.quota_bytes
        ):
            raise _quota_error(used, expected_bytes, policy.quota_bytes)
        return JobUpload(
            ctx,
            owner,
            policy,
            name=name,
            document_format=document_format,
            options=options,
            expected_bytes=expected_bytes,
            used_bytes=used,
            sealed=sealed,
            idempotency_key=idempotency_key,
            link=link,
        )

    def submit(
        self,
        owner: UserPrincipal,
        name: str,
        chunks: Iterable[bytes],
        *,
        document_format: str = DEFAULT_FORMAT,
        copies: int = 1,
        expected_bytes: int | None = None,
        options: PrintOptions | None = None,
        link: LinkHook | None = None,
        sealed: SealedJob | None = None,
        idempotency_key: str | None = None,
        seal_on_intake: bool = True,
    ) -> JobView:
        """Park a document given as an iterable of byte chunks; see `JobUpload.finish`."""
        with self.begin_upload(
            owner,
            name,
            document_format=document_format,
            copies=copies,
            expected_bytes=expected_bytes,
            options=options,
            link=link,
            sealed=sealed,
            idempotency_key=idempotency_key,
            seal_on_intake=seal_on_intake,
        ) as upload:
            for chunk in chunks:
                upload.write(chunk)
            return upload.finish()

    async def submit_async(
        self,
        owner: UserPrincipal,
        name: str,
        chunks: AsyncIterable[bytes],
        *,
        document_format: str = DEFAULT_FORMAT,
        copies: int = 1,
        expected_bytes: int | None = None,
        options: PrintOptions | None = None,
        link: LinkHook | None = None,
        sealed: SealedJob | None = None,
        idempotency_key: str | None = None,
        seal_on_intake: bool = True,
    ) -> JobView:
        """Park a document from an async stream; file and database work runs in worker threads.

        An exception raised by `chunks` (e.g. TruncatedUploadError on a client disconnect)
        aborts the upload and propagates.

        A document that says it is small (`expected_bytes` up to `WHOLE_BODY_BYTES`, as most
        are) is read whole first and then parked in one trip to a worker thread: the trips
        (begin, write, finish) cost more CPU than the work for a 100 KB job. A larger one is
        begun first, so that a refusal (quota, policy) comes before its body is sent.
        """
        parameters: dict[str, Any] = {
            "document_format": document_format,
            "copies": copies,
            "expected_bytes": expected_bytes,
            "options": options,
            "link": link,
            "sealed": sealed,
            "idempotency_key": idempotency_key,
            "seal_on_intake": seal_on_intake,
        }
        if expected_bytes is not None and expected_bytes <= WHOLE_BODY_BYTES:
            body = bytearray()
            try:
                async for chunk in chunks:
                    body += chunk
            except Exception as exc:
                # Nothing was begun or staged; recorded as a streamed upload's abort is.
                await to_thread.run_sync(record_aborted_upload, self._ctx, owner, _reason(exc))
                raise
            return await to_thread.run_sync(
                functools.partial(self.submit, owner, name, [bytes(body)], **parameters)
            )
        upload = await to_thread.run_sync(
            functools.partial(self.begin_upload, owner, name, **parameters)
        )
        try:
            pending = bytearray()
            async for chunk in chunks:
                pending += chunk
                if len(pending) >= _ASYNC_BATCH_BYTES:
                    batch = bytes(pending)
                    pending.clear()
                    await to_thread.run_sync(upload.write, batch)
            if pending:
                await to_thread.run_sync(upload.write, bytes(pending))
            return await to_thread.run_sync(upload.finish)
        except Exception as exc:
            await to_thread.run_sync(upload.abort, _reason(exc))
            raise
        except BaseException:
            upload.abort("cancelled")  # cannot await any more once cancelled
            raise

    def sweep_idempotency_keys(self) -> int:
        """Forget idempotency keys older than `IDEMPOTENCY_TTL_H`; returns how many."""
        ctx = self._ctx
        before = ctx.now() - timedelta(hours=IDEMPOTENCY_TTL_H)
        with ctx.write() as db:
            result = db.execute(
                delete(JobIdempotencyKey).where(JobIdempotencyKey.created_at <= before)
            )
        return int(getattr(result, "rowcount", 0) or 0)
