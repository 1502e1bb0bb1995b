"""The IPP document pipeline (cloud/ipp/intake.py) against the real service and filesystem store.

A document goes in whole or not at all, whatever the batch boundaries; a client that goes away
mid-document leaves no job, no IPP job-id and no blob (not even a temp file) behind.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import AsyncIterator

import pytest

from cloud.errors import EmptyDocumentError, TruncatedUploadError
from cloud.ipp.intake import BATCH_BYTES, batches, park
from cloud.ipp.jobs import NewIppJob
from cloud.service import CloudService
from cloud.uploads import PrintOptions
from hardware.ipp.enums import JobState
from tests.cloud.conftest import Enrolled, blob_files


async def stream(pieces: list[bytes], fail_after: int | None = None) -> AsyncIterator[bytes]:
    for index, piece in enumerate(pieces):
        if fail_after is not None and index == fail_after:
            raise TruncatedUploadError("the client went away mid-request")
        await asyncio.sleep(0)
        yield piece


def print_job(service: CloudService, enrolled: Enrolled, pieces: list[bytes], **kw: int | None):
    new = NewIppJob("doc.pdf", "application/pdf")
    link = service.ipp_jobs.link_new(enrolled.user, new)
    begin = functools.partial(
        service.uploads.begin_upload,
        enrolled.user,
        new.name,
        document_format="application/pdf",
        options=PrintOptions(),
        link=link,
    )
    job = asyncio.run(park(begin, stream(pieces, **kw)))
    return job, link.view


@pytest.mark.parametrize(
    "sizes",
    [
        [10],  # one small job: one worker call
        [BATCH_BYTES],  # exactly one batch: the last batch is empty
        [BATCH_BYTES - 1, 2],  # the batch boundary inside a network read
        [3000] * 300,  # many small reads
        [BATCH_BYTES * 3 + 7],  # one big read
    ],
)
def test_documents_arrive_whole_whatever_the_batches(
    service: CloudService, enrolled: Enrolled, sizes: list[int]
) -> None:
    pieces = [bytes([i % 251]) * size for i, size in enumerate(sizes)]
    document = b"".join(pieces)
    job, view = print_job(service, enrolled, pieces)
    assert job.size_bytes == len(document)
    assert job.sha256 == hashlib.sha256(document).hexdigest()
    assert view.state is JobState.PENDING_HELD
    assert view.cloud_job_id == job.id
    assert service.ipp_jobs.get(enrolled.user, view.job_id) == view
    assert not [path for path in blob_files(service) if path.name.endswith(".tmp")]


def test_batches_are_at_least_the_batch_size_but_the_last() -> None:
    async def collect() -> list[bytes]:
        return [b async for b in batches(stream([b"a" * 1000] * 10), size=3000)]

    sizes = [len(batch) for batch in asyncio.run(collect())]
    assert sizes == [3000, 3000, 3000, 1000]


@pytest.mark.parametrize("fail_after", [0, 1, 5])
def test_a_cut_off_document_leaves_nothing(
    service: CloudService, enrolled: Enrolled, fail_after: int
) -> None:
    pieces = [b"%PDF" + b"x" * (BATCH_BYTES // 2)] * 8
    with pytest.raises(TruncatedUploadError):
        print_job(service, enrolled, pieces, fail_after=fail_after)
    assert service.jobs.list_held(enrolled.user.id) == []
    assert service.ipp_jobs.list_jobs(enrolled.user, "all") == []
    assert blob_files(service) == []
    # The job-id counter did not move either: the next job is job 1.
    _, view = print_job(service, enrolled, [b"%PDF-1.4 next"])
    assert view.job_id == 1


def test_an_empty_document_is_refused(service: CloudService, enrolled: Enrolled) -> None:
    with pytest.raises(EmptyDocumentError):
        print_job(service, enrolled, [])
    assert service.ipp_jobs.list_jobs(enrolled.user, "all") == []
