"""Deliver one release: download its container, authenticate all of it, then print it.

Invariants (DESIGN.md, "Jobs at rest": nothing is sent to a printer that has not been
authenticated):

* pass 1 streams the container from the cloud to a spool file while a `Decryptor` authenticates
  it; the plaintext of that pass is discarded, so only ciphertext is ever written to disk;
* pass 2 runs only if the WHOLE container authenticated (a truncated or tampered container fails
  at its last chunk at the latest, so a partial document is never printed): it reads the spool
  file back through a fresh `Decryptor` and streams the plaintext into the printer transport;
* memory stays constant (one container chunk at a time), whatever the document size;
* the spool file is deleted in every case, success or failure.

Reporting the outcome to the cloud is the caller's job: it knows whether to say printed or failed.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO, Protocol

from cloud.container import ContainerError, Decryptor
from hardware.printers.transport import DeliveryResult, PrinterTransport, PrintJob
from station.cloud_client import ReleaseInfo
from station.errors import DeliveryError, DocumentDamagedError

logger = logging.getLogger(__name__)

SPOOL_CHUNK_BYTES = 64 * 1024
DAMAGED_REASON = "Document damaged in storage"

# (bytes done, bytes in all): download and printing together, so progress moves through both.
ProgressCallback = Callable[[int, int], None]


class ContentSource(Protocol):
    """Where release containers come from (the cloud client)."""

    def stream_content(self, release_id: str) -> AbstractContextManager[Iterator[bytes]]: ...


def deliver_release(
    client: ContentSource,
    transport: PrinterTransport,
    release: ReleaseInfo,
    spool_dir: Path,
    on_progress: ProgressCallback | None = None,
) -> DeliveryResult:
    """Download, authenticate, then print one release; return the printer's word that it printed.

    Args:
        client: gives the release's container as a stream.
        transport: the printer.
        release: what to print and the data key to decrypt it with.
        spool_dir: where the ciphertext is held between the two passes.
        on_progress: called with (bytes done, bytes in all) as the download and the print go on.

    Raises:
        DocumentDamagedError: the container failed to authenticate; nothing was sent.
        DeliveryError: the station could not spool the document.
        CloudError: the download failed.
        PrinterError: the printer failed (from the transport).
    """
    try:
        job_id = uuid.UUID(release.job_id)
    except ValueError:
        raise DocumentDamagedError(DAMAGED_REASON, detail="release has no valid job id") from None
    total = release.content_bytes + release.size_bytes

    def progress(done: int) -> None:
        if on_progress is not None:
            on_progress(min(done, total), total)

    try:
        fd, name = tempfile.mkstemp(prefix="release-", suffix=".ppj", dir=spool_dir)  # mode 0600
    except OSError as exc:
        raise DeliveryError("The station cannot store the document", detail=exc.strerror) from exc
    spool = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            _download(client, release, job_id, out, progress)
        logger.debug("release %s authenticated, %d bytes spooled", release.id, spool.stat().st_size)
        job = PrintJob(
            job_name=release.id,  # a restarted station finds the job on the printer by this name
            user_name=release.user_name,
            document_format=release.format,
            copies=release.copies,
        )
        downloaded = release.content_bytes
        return transport.deliver(
            job,
            _SpoolDocument(spool, release, job_id),
            on_progress=lambda sent: progress(downloaded + sent),
        )
    finally:
        spool.unlink(missing_ok=True)


def _download(
    client: ContentSource,
    release: ReleaseInfo,
    job_id: uuid.UUID,
    out: BinaryIO,
    progress: Callable[[int], None],
) -> None:
    """Pass 1: spool the ciphertext while authenticating it; discard the plaintext."""
    decryptor = Decryptor(release.data_key, job_id, release.site)
    received = 0
    try:
        with client.stream_content(release.id) as chunks:
            for chunk in chunks:
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise DeliveryError(
                        "The station cannot store the document", detail=exc.strerror
                    ) from exc
                decryptor.update(chunk)  # authenticates; the plaintext is dropped on purpose
                received += len(chunk)
                progress(received)
        decryptor.finalize()
    except ContainerError as exc:
        logger.warning("release %s: container failed to authenticate: %s", release.id, exc)
        raise DocumentDamagedError(DAMAGED_REASON, detail=str(exc)) from exc


class _SpoolDocument:
    """The authenticated document, re-readable: each iteration decrypts the spool file afresh.

    A printer that answers server-error-busy after the document went out can then be sent it again
    (the transport retries only sources it can iterate twice).
    """

    def __init__(self, spool: Path, release: ReleaseInfo, job_id: uuid.UUID) -> None:
        self._spool, self._release, self._job_id = spool, release, job_id

    def __iter__(self) -> Iterator[bytes]:
        return _plaintext(self._spool, self._release, self._job_id)


def _plaintext(spool: Path, release: ReleaseInfo, job_id: uuid.UUID) -> Iterator[bytes]:
    """Pass 2: the authenticated document, decrypted again chunk by chunk from the spool file."""
    decryptor = Decryptor(release.data_key, job_id, release.site)
    try:
        with spool.open("rb") as source:
            while chunk := source.read(SPOOL_CHUNK_BYTES):
                plain = decryptor.update(chunk)
                if plain:
                    yield plain
        final = decryptor.finalize()
    except ContainerError as exc:
        # The spool file changed between the passes: only a local attacker or a failing disk.
        logger.warning("release %s: spool file failed to authenticate: %s", release.id, exc)
        raise DocumentDamagedError(DAMAGED_REASON, detail=str(exc)) from exc
    if final:
        yield final
