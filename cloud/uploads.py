"""Streaming intake: a document arrives in pieces and is parked encrypted, or not at all.

Invariants:

* a document is never held whole in memory: it is encrypted chunk by chunk (`cloud.container`)
  straight into a blob writer, and hashed (SHA-256) on the way;
* a job row exists only for a committed blob: the blob is committed first, then the row is
  inserted; if anything fails, the body is shorter (or longer) than declared, or the client goes
  away, the staged blob is discarded and no job exists;
* `content_bytes` is measured, not computed, so it always equals the stored blob's size.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import uuid
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Self

from anyio import to_thread
from sqlalchemy.orm import Session

from cloud.blobstore import BlobWriter
from cloud.container import Encryptor, new_data_key, wrap_key
from cloud.context import ServiceContext
from cloud.db import Job
from cloud.errors import (
    CloudError,
    EmptyDocumentError,
    InvalidRequestError,
    TruncatedUploadError,
)
from cloud.identity import UserPrincipal
from cloud.jobs import JobView
from cloud.states import JobState

log = logging.getLogger(__name__)

# Plaintext gathered before hopping to a worker thread: one container chunk's worth, so the
# event loop is not paying a thread switch per network read.
_ASYNC_BATCH_BYTES = 64 * 1024
_MAX_NAME_CHARS = 255
_MAX_FORMAT_CHARS = 127
DEFAULT_FORMAT = "application/octet-stream"

# Called inside the transaction that inserts the job row, with that row's id: lets another
# record (an IPP job) point at the job atomically, so neither exists without the other.
LinkHook = Callable[[Session, uuid.UUID], None]


@dataclass(frozen=True, slots=True)
class PrintOptions:
    """Job template values recorded with the document (RFC 8011 §5.2, PWG 5100.13)."""

    copies: int = 1
    sides: str | None = None
    color_mode: str | None = None


class JobUpload:
    """One document being streamed into the store; use as a context manager.

    `write()` the plaintext in pieces, then `finish()`; leaving the block without finishing (or
    any failure) aborts: the staged blob is discarded and no job is created.
    """

    def __init__(
        self,
        ctx: ServiceContext,
        owner: UserPrincipal,
        *,
        name: str,
        document_format: str,
        copies: int,
        expected_bytes: int | None,
        options: PrintOptions | None = None,
        link: LinkHook | None = None,
    ) -> None:
        self._ctx = ctx
        self._owner = owner
        self._name = name
        self._format = document_format
        self._copies = copies
        self._options = options or PrintOptions(copies=copies)
        self._link = link
        self._expected = expected_bytes
        self.job_id = uuid.uuid4()
        self._data_key = new_data_key()
        self._blob_key = self.job_id.hex
        self._encryptor = Encryptor(self._data_key, self.job_id, owner.site)
        self._sha256 = hashlib.sha256()
        self.size_bytes = 0
        self._finished = False
        self._writer: BlobWriter = ctx.blobs.open_writer(self._blob_key)
        self._content_bytes = 0
        self._emit(self._encryptor.header)

    def _emit(self, data: bytes) -> None:
        if data:
            self._writer.write(data)
            self._content_bytes += len(data)

    def write(self, data: bytes) -> None:
        """Hash, encrypt and stage one piece of the document."""
        if self._finished:
            raise InvalidRequestError("upload already finished")
        self.size_bytes += len(data)
        if self._expected is not None and self.size_bytes > self._expected:
            raise InvalidRequestError("the body is longer than its declared length")
        self._sha256.update(data)
        self._emit(self._encryptor.update(data))

    def finish(self) -> JobView:
        """Seal the container, commit the blob, then record the job.

        Raises:
            EmptyDocumentError: nothing was written.
            TruncatedUploadError: fewer bytes than `expected_bytes` arrived.
        """
        if self._finished:
            raise InvalidRequestError("upload already finished")
        if self.size_bytes == 0:
            raise EmptyDocumentError("the document is empty")
        if self._expected is not None and self.size_bytes < self._expected:
            raise TruncatedUploadError(
                f"received {self.size_bytes} of {self._expected} declared bytes"
            )
        self._emit(self._encryptor.finalize())
        self._writer.commit()
        self._finished = True
        try:
            return self._insert()
        except BaseException:
            # The blob was committed but no row points at it: remove it again.
            self._ctx.blobs.delete(self._blob_key)
            raise

    def _insert(self) -> JobView:
        ctx = self._ctx
        now = ctx.now()
        job = Job(
            id=self.job_id,
            site=self._owner.site,
            owner_id=self._owner.id,
            name=self._name,
            document_format=self._format,
            size_bytes=self.size_bytes,
            content_bytes=self._content_bytes,
            sha256=self._sha256.hexdigest(),
            copies=self._copies,
            pages=None,
            state=JobState.HELD,
            wrapped_key=wrap_key(ctx.config.master_key, self._data_key, self.job_id),
            blob_key=self._blob_key,
            submitted_at=now,
            expires_at=now + timedelta(hours=ctx.config.job_expiry_h),
            printed_at=None,
            sides=self._options.sides,
            color_mode=self._options.color_mode,
        )
        with ctx.write() as db:
            db.add(job)
            if self._link is not None:
                db.flush()  # the row must exist before anything refers to it
                self._link(db, job.id)
            ctx.audit(
                db,
                "job-submitted",
                user_id=self._owner.id,
                job_id=self.job_id,
                site=self._owner.site,
            )
        log.info("job %s submitted by user %s (%d bytes)", job.id, job.owner_id, job.size_bytes)
        return JobView.of(job)

    def abort(self, reason: str = "aborted") -> None:
        """Discard the staged blob (idempotent); records why, without any content."""
        if self._finished:
            return
        self._finished = True
        self._writer.abort()
        log.info("upload by user %s discarded: %s", self._owner.id, reason)
        try:
            with self._ctx.write() as db:
                self._ctx.audit(
                    db,
                    "upload-aborted",
                    user_id=self._owner.id,
                    detail=reason,
                    site=self._owner.site,
                )
        except Exception:  # the upload is gone either way; do not mask the original error
            log.exception("could not record the aborted upload")

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
    ) -> JobUpload:
        """Start streaming a document (see `JobUpload`).

        `options` (which then also gives the copies) and `link` serve the IPP endpoint.

        Raises:
            InvalidRequestError: a bad name, format or copies count.
        """
        name = name.strip()
        document_format = document_format.strip() or DEFAULT_FORMAT
        if not name or len(name) > _MAX_NAME_CHARS:
            raise InvalidRequestError(f"the name must be 1-{_MAX_NAME_CHARS} characters")
        if len(document_format) > _MAX_FORMAT_CHARS:
            raise InvalidRequestError("the document format is too long")
        if options is not None:
            copies = options.copies
        if not 1 <= copies <= 999:
            raise InvalidRequestError("copies must be 1-999")
        if expected_bytes is not None and expected_bytes < 0:
            raise InvalidRequestError("a negative length")
        return JobUpload(
            self._ctx,
            owner,
            name=name,
            document_format=document_format,
            copies=copies,
            expected_bytes=expected_bytes,
            options=options,
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
    ) -> JobView:
        """Park a document given as an iterable of byte chunks; see `JobUpload.finish`."""
        with self.begin_upload(
            owner,
            name,
            document_format=document_format,
            copies=copies,
            expected_bytes=expected_bytes,
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
    ) -> JobView:
        """Park a document from an async stream; file and database work runs in worker threads.

        An exception raised by `chunks` (e.g. TruncatedUploadError on a client disconnect)
        aborts the upload and propagates.
        """
        upload = await to_thread.run_sync(
            functools.partial(
                self.begin_upload,
                owner,
                name,
                document_format=document_format,
                copies=copies,
                expected_bytes=expected_bytes,
                options=options,
                link=link,
            )
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
