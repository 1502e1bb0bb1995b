"""Print-Job and Send-Document: the operations whose document follows the IPP header.

The document is streamed from the HTTP body straight into `Uploads` by `cloud.ipp.intake.park`
(encrypted chunk by chunk, pipelined, few thread hops), never held whole. The IPP job row is
written in the same transaction that records the parked job: created there for Print-Job,
linked there for Send-Document. A failed or cut-off document leaves no Print-Job behind.

A job is one document (multiple-document-jobs-supported is false): a second Send-Document gets
server-error-multiple-document-jobs-not-supported (RFC 8011 §4.3.1).

`application/octet-stream` documents are identified by their first bytes, so the station and the
user see what was actually sent; the declared format is otherwise kept as given.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import AsyncIterator
from typing import TypeVar

from anyio import to_thread

from cloud.ipp.intake import park
from cloud.ipp.job_attributes import job_status
from cloud.ipp.jobs import IppJobView, JobLink, NewIppJob
from cloud.ipp.operations import IppCall, IppStatusError, check_format, target_job_id, templated
from cloud.ipp.printer import DEFAULT_FORMAT
from cloud.service import CloudService
from cloud.uploads import PrintOptions
from hardware.ipp.codec import IppMessage
from hardware.ipp.enums import StatusCode, Tag

log = logging.getLogger(__name__)
_T = TypeVar("_T")

_SNIFF_BYTES = 16
# Magic numbers of the formats the queue accepts (RFC 8011 §4.1.9 lets the printer auto-sense).
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "application/pdf"),
    (b"%!", "application/postscript"),
    (b"RaS2", "image/pwg-raster"),
    (b"UNIRAST", "image/urf"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


def sniff(head: bytes) -> str | None:
    """The format whose magic number `head` starts with, or None."""
    return next((fmt for magic, fmt in _MAGIC if head.startswith(magic)), None)


class DocumentStream:
    """The document data: the bytes that arrived with the header, then the rest of the body."""

    def __init__(self, head: bytes, rest: AsyncIterator[bytes]) -> None:
        self._buffer = bytearray(head)
        self._rest = rest
        self._ended = False

    async def peek(self, n: int) -> bytes:
        """Up to `n` first bytes, reading on only as far as needed."""
        while len(self._buffer) < n and not self._ended:
            try:
                self._buffer += await anext(self._rest)
            except StopAsyncIteration:
                self._ended = True
        return bytes(self._buffer[:n])

    async def chunks(self) -> AsyncIterator[bytes]:
        """Every byte of the document, once."""
        if self._buffer:
            head = bytes(self._buffer)
            self._buffer.clear()
            yield head
        if not self._ended:
            async for chunk in self._rest:
                yield chunk
            self._ended = True


class IppDocuments:
    """Print-Job and Send-Document."""

    def __init__(self, service: CloudService) -> None:
        self._service = service

    async def _run(self, fn: functools.partial[_T]) -> _T:
        return await to_thread.run_sync(fn)

    async def _park(
        self, call: IppCall, job: NewIppJob, fmt: str, doc: DocumentStream, link: JobLink
    ) -> IppJobView:
        """Stream the document into the store; `link` records the IPP job in the same commit."""
        begin = functools.partial(
            self._service.uploads.begin_upload,
            call.user,
            job.name,
            document_format=fmt,
            options=PrintOptions(job.copies, job.sides, job.color_mode),
            link=link,
        )
        await park(begin, doc.chunks())
        return link.view

    async def print_job(self, call: IppCall, doc: DocumentStream) -> IppMessage:
        """RFC 8011 §4.2.1: park the document and create the job with it, answer pending-held.

        The job-id is allocated when the document is committed: a client learns it only from
        this response, so nobody can see or touch the job any earlier.
        """
        fmt = check_format(call)
        out, new_job = templated(call, fmt)
        head = await doc.peek(_SNIFF_BYTES)
        if not head:
            raise IppStatusError(StatusCode.CLIENT_ERROR_BAD_REQUEST, "no document data")
        if fmt == DEFAULT_FORMAT:
            fmt = sniff(head) or fmt
        new_job = dataclasses.replace(new_job, document_format=fmt)
        link = self._service.ipp_jobs.link_new(call.user, new_job)
        view = await self._park(call, new_job, fmt, doc, link)
        out.add_group(Tag.JOB_ATTRIBUTES, *job_status(view, call.address))
        return out

    async def send_document(self, call: IppCall, doc: DocumentStream) -> IppMessage:
        """RFC 8011 §4.3.1: the one document of a Create-Job job."""
        job_id = target_job_id(call)
        last = call.operation.get_bool("last-document")
        if last is None:  # REQUIRED (RFC 8011 §4.3.1.1)
            raise IppStatusError(StatusCode.CLIENT_ERROR_BAD_REQUEST, "last-document is missing")
        service = self._service
        view = await self._run(functools.partial(service.ipp_jobs.get, call.user, job_id))
        if view.has_document:
            raise IppStatusError(
                StatusCode.SERVER_ERROR_MULTIPLE_DOCUMENT_JOBS_NOT_SUPPORTED,
                "a job holds one document",
            )
        if view.state.is_terminal:
            raise IppStatusError(StatusCode.CLIENT_ERROR_NOT_POSSIBLE, "the job is finished")
        has_format = call.operation.get("document-format") is not None
        fmt = check_format(call) if has_format else (view.document_format or DEFAULT_FORMAT)
        head = await doc.peek(_SNIFF_BYTES)
        out = IppMessage.response(
            StatusCode.SUCCESSFUL_OK, call.request.request_id, version=call.request.version
        )
        if head:
            if fmt == DEFAULT_FORMAT:
                fmt = sniff(head) or fmt
            job = NewIppJob(view.name, fmt, view.copies, view.sides, view.color_mode, view.media)
            link = service.ipp_jobs.link_existing(call.user, job_id, fmt)
            try:
                view = await self._park(call, job, fmt, doc, link)
            except BaseException:
                # The job cannot get its document any more: abort it (if still waiting for one).
                await self._run(functools.partial(service.ipp_jobs.close, call.user, job_id))
                raise
        elif last:  # no data and no more documents: the job ends without one
            await self._run(functools.partial(service.ipp_jobs.close, call.user, job_id))
            view = await self._run(functools.partial(service.ipp_jobs.get, call.user, job_id))
        out.add_group(Tag.JOB_ATTRIBUTES, *job_status(view, call.address))
        return out
