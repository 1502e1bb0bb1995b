"""Pipelined document intake for Print-Job and Send-Document.

`park()` moves the document from the HTTP body into `Uploads` (which encrypts, hashes and stages
it, then commits the blob durably and records the job), with two aims:

* few thread hops: a document that fits in one batch (every small job) is begun, written,
  sealed, fsynced and recorded in ONE worker-thread call; the generic `submit_async` costs a
  hop to begin, one per 64 KiB, and one to finish, and each hop is a round trip through the
  event loop that a single keep-alive client waits for;
* overlap: for larger documents one batch is encrypted and written in a worker thread while the
  event loop reads the next one from the socket (uvicorn stops reading once 64 KiB are buffered
  and unconsumed, so without overlap the network and the disk take turns).

Invariants kept from `cloud.uploads`: at most a few batches of plaintext are in memory at once
(`BATCH_BYTES` each, never the whole document); the job row is recorded only after the blob is
committed (fsync of the data and of its directory), inside the same transaction as the `link`
hook, so a job acknowledged to the client survives a crash and a failed or cut-off upload leaves
nothing; the upload is touched by one thread at a time (a lock serialises the worker's write
with an abort from a cancelled request).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable

from anyio import to_thread

from cloud.errors import CloudError, EmptyDocumentError
from cloud.jobs import JobView
from cloud.uploads import Upload

log = logging.getLogger(__name__)

# Plaintext per worker-thread call. Big enough that a ~100 KB job is one call and a large one
# pays a hop per 256 KiB rather than per 64 KiB; small enough that a few per request in flight
# stay well under a megabyte.
BATCH_BYTES = 256 * 1024


async def batches(
    chunks: AsyncIterator[bytes], size: int = BATCH_BYTES
) -> AsyncGenerator[bytes, None]:
    """Regroup `chunks` into batches of at least `size` bytes; only the last may be shorter."""
    pending: list[bytes] = []
    pending_bytes = 0
    async for chunk in chunks:
        pending.append(chunk)
        pending_bytes += len(chunk)
        if pending_bytes >= size:
            yield b"".join(pending)  # one copy, whatever the number of network reads
            pending.clear()
            pending_bytes = 0
    if pending:
        yield b"".join(pending)


class _Sink:
    """The upload as the worker threads see it: begun lazily, one call at a time."""

    def __init__(self, begin: Callable[[], Upload]) -> None:
        self._begin = begin
        self._upload: Upload | None = None
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        """Begin the upload if needed, then stage `data`."""
        with self._lock:
            if self._upload is None:
                self._upload = self._begin()
            self._upload.write(data)

    def write_and_finish(self, data: bytes) -> JobView:
        """Stage the last `data`, then seal, commit and record the job."""
        with self._lock:
            if self._upload is None:
                self._upload = self._begin()
            if data:
                self._upload.write(data)
            return self._upload.finish()

    def abort(self, reason: str) -> None:
        """Discard whatever was staged (a no-op once finished, or if nothing was begun)."""
        with self._lock:
            if self._upload is not None:
                self._upload.abort(reason)


def _reason(exc: BaseException) -> str:
    return exc.code if isinstance(exc, CloudError) else type(exc).__name__


async def _settle(task: asyncio.Future[None] | None) -> None:
    """Wait for an in-flight write to end, ignoring its outcome (it is reported elsewhere)."""
    if task is not None:
        with contextlib.suppress(BaseException):
            await asyncio.shield(task)


async def park(begin: Callable[[], Upload], chunks: AsyncIterator[bytes]) -> JobView:
    """Stream `chunks` into the upload made by `begin` (called in a worker thread); the job.

    Raises:
        EmptyDocumentError: `chunks` was empty.
        whatever `begin`, the upload or `chunks` raise (TruncatedUploadError when the client
        goes away); the upload is aborted first, so nothing is parked.
    """
    sink = _Sink(begin)
    stream = batches(chunks)
    writing: asyncio.Future[None] | None = None
    try:
        batch = await anext(stream, None)
        if batch is None:
            raise EmptyDocumentError("the document is empty")
        while len(batch) >= BATCH_BYTES:  # maybe more to come: write this one while reading on
            writing = asyncio.ensure_future(to_thread.run_sync(sink.write, batch))
            following = await anext(stream, None)
            await writing
            writing = None
            if following is None:
                batch = b""
                break
            batch = following
        return await to_thread.run_sync(sink.write_and_finish, batch)
    except asyncio.CancelledError:
        await _settle(writing)
        sink.abort("cancelled")  # cannot await a thread any more once cancelled
        raise
    except BaseException as exc:
        await _settle(writing)
        await to_thread.run_sync(functools.partial(sink.abort, _reason(exc)))
        raise
    finally:
        await stream.aclose()
