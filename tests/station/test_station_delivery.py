"""Delivery: authenticate the whole container before a byte reaches the printer."""

from __future__ import annotations

import os
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cloud.container import Encryptor, new_data_key
from hardware.errors import PrinterUnreachableError
from hardware.printers.transport import DeliveryResult
from station.cloud_client import ReleaseInfo
from station.delivery import deliver_release
from station.errors import CloudUnreachableError, DeliveryError, DocumentDamagedError

JOB_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
SITE = "hq"
CHUNK = 1024  # small container chunks so tests span many of them


def seal(document: bytes, key: bytes, job_id: uuid.UUID = JOB_ID, site: str = SITE) -> bytes:
    enc = Encryptor(key, job_id, site, chunk_bytes=CHUNK)
    return enc.header + enc.update(document) + enc.finalize()


class FakeCloud:
    """Serves one container in small pieces; can break off mid-stream."""

    def __init__(self, container: bytes, *, fail_after: int | None = None) -> None:
        self.container = container
        self.fail_after = fail_after
        self.spool_seen: list[Path] = []

    @contextmanager
    def stream_content(self, release_id: str) -> Iterator[Iterator[bytes]]:
        def chunks() -> Iterator[bytes]:
            for offset in range(0, len(self.container), 700):
                if self.fail_after is not None and offset >= self.fail_after:
                    raise CloudUnreachableError("the content stream broke off")
                yield self.container[offset : offset + 700]

        yield chunks()


class FakeTransport:
    """A printer that keeps what it receives (or fails after reading a bit)."""

    uri = "fake://printer"

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.received = bytearray()
        self.jobs = []
        self.spool_files_during_delivery: list[str] = []
        self.spool_dir: Path | None = None

    def deliver(self, job, document, *, on_progress=None):
        self.jobs.append(job)
        if self.spool_dir is not None:
            self.spool_files_during_delivery = os.listdir(self.spool_dir)
        for chunk in document:
            self.received += chunk
            if on_progress is not None:
                on_progress(len(self.received))
            if self.fail is not None:
                raise self.fail
        return DeliveryResult(printer_job_id=42, bytes_sent=len(self.received))

    def close(self):
        pass


def release_for(container: bytes, document: bytes, key: bytes, **changes) -> ReleaseInfo:
    fields = {
        "id": "r1",
        "job_id": str(JOB_ID),
        "name": "report.pdf",
        "format": "application/pdf",
        "copies": 2,
        "size_bytes": len(document),
        "content_bytes": len(container),
        "user_name": "ana",
        "data_key": key,
        "site": SITE,
    }
    fields.update(changes)
    return ReleaseInfo(**fields)


@pytest.fixture
def key() -> bytes:
    return new_data_key()


@pytest.fixture
def document() -> bytes:
    return os.urandom(10 * CHUNK + 123)


def test_delivers_the_plaintext(tmp_path, key, document):
    container = seal(document, key)
    transport = FakeTransport()
    transport.spool_dir = tmp_path
    progress = []
    release = release_for(container, document, key)
    result = deliver_release(
        FakeCloud(container),
        transport,
        release,
        tmp_path,
        lambda done, total: progress.append((done, total)),
    )
    assert result.printer_job_id == 42
    assert bytes(transport.received) == document
    (job,) = transport.jobs
    assert (job.job_name, job.user_name, job.document_format, job.copies) == (
        "r1",
        "ana",
        "application/pdf",
        2,
    )
    total = len(container) + len(document)
    assert progress[-1] == (total, total)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    assert list(tmp_path.iterdir()) == []  # spool removed


def test_only_ciphertext_is_spooled(tmp_path, key):
    document = b"TOP SECRET PLAINTEXT " * 200
    container = seal(document, key)

    class Peek(FakeTransport):
        def deliver(self, job, doc, *, on_progress=None):
            (spooled,) = tmp_path.iterdir()
            self.spooled = spooled.read_bytes()
            self.mode = spooled.stat().st_mode & 0o777
            return super().deliver(job, doc, on_progress=on_progress)

    transport = Peek()
    deliver_release(
        FakeCloud(container), transport, release_for(container, document, key), tmp_path
    )
    assert transport.spooled == container
    assert b"TOP SECRET" not in transport.spooled
    assert transport.mode == 0o600


@pytest.mark.parametrize("where", ["header", "first-chunk", "middle", "last-byte"])
def test_tampered_container_sends_nothing(tmp_path, key, document, where):
    container = bytearray(seal(document, key))
    index = {
        "header": 10,
        "first-chunk": 100,
        "middle": len(container) // 2,
        "last-byte": len(container) - 1,
    }[where]
    container[index] ^= 0x01
    transport = FakeTransport()
    with pytest.raises(DocumentDamagedError) as caught:
        deliver_release(
            FakeCloud(bytes(container)),
            transport,
            release_for(bytes(container), document, key),
            tmp_path,
        )
    assert caught.value.reason == "Document damaged in storage"
    assert transport.jobs == []
    assert transport.received == b""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cut", [5, 200, 1])
def test_truncated_container_sends_nothing(tmp_path, key, document, cut):
    container = seal(document, key)
    # cut 1: drop the last byte; 200/5: from the start (header cut or most of the body gone)
    truncated = container[:-1] if cut == 1 else container[:cut]
    transport = FakeTransport()
    with pytest.raises(DocumentDamagedError):
        deliver_release(
            FakeCloud(truncated), transport, release_for(truncated, document, key), tmp_path
        )
    assert transport.received == b""
    assert list(tmp_path.iterdir()) == []


def test_truncated_at_a_chunk_boundary_sends_nothing(tmp_path, key, document):
    container = seal(document, key)
    header_bytes = len(Encryptor(key, JOB_ID, SITE).header)
    truncated = container[: header_bytes + 5 * (CHUNK + 16)]  # 5 whole chunks, no final one
    transport = FakeTransport()
    with pytest.raises(DocumentDamagedError):
        deliver_release(
            FakeCloud(truncated), transport, release_for(truncated, document, key), tmp_path
        )
    assert transport.received == b""


def test_container_of_another_job_or_site_sends_nothing(tmp_path, key, document):
    for container in (seal(document, key, job_id=uuid.uuid4()), seal(document, key, site="evil")):
        transport = FakeTransport()
        with pytest.raises(DocumentDamagedError):
            deliver_release(
                FakeCloud(container), transport, release_for(container, document, key), tmp_path
            )
        assert transport.received == b""


def test_wrong_key_sends_nothing(tmp_path, key, document):
    container = seal(document, key)
    transport = FakeTransport()
    with pytest.raises(DocumentDamagedError):
        deliver_release(
            FakeCloud(container),
            transport,
            release_for(container, document, new_data_key()),
            tmp_path,
        )
    assert transport.received == b""


def test_broken_download_sends_nothing_and_removes_the_spool(tmp_path, key, document):
    container = seal(document, key)
    transport = FakeTransport()
    with pytest.raises(CloudUnreachableError):
        deliver_release(
            FakeCloud(container, fail_after=3000),
            transport,
            release_for(container, document, key),
            tmp_path,
        )
    assert transport.received == b""
    assert list(tmp_path.iterdir()) == []


def test_printer_failure_propagates_and_removes_the_spool(tmp_path, key, document):
    container = seal(document, key)
    transport = FakeTransport(fail=PrinterUnreachableError("Printer not responding"))
    with pytest.raises(PrinterUnreachableError):
        deliver_release(
            FakeCloud(container), transport, release_for(container, document, key), tmp_path
        )
    assert list(tmp_path.iterdir()) == []


def test_empty_document(tmp_path, key):
    container = seal(b"", key)
    transport = FakeTransport()
    result = deliver_release(
        FakeCloud(container), transport, release_for(container, b"", key), tmp_path
    )
    assert result.bytes_sent == 0
    assert transport.jobs


def test_spool_dir_missing_is_a_delivery_error(tmp_path, key, document):
    container = seal(document, key)
    with pytest.raises(DeliveryError):
        deliver_release(
            FakeCloud(container),
            FakeTransport(),
            release_for(container, document, key),
            tmp_path / "missing",
        )


def test_memory_stays_constant(tmp_path, key):
    document = os.urandom(8 * 1024 * 1024)
    enc = Encryptor(key, JOB_ID, SITE)  # 64 KiB chunks, as stored by the cloud
    container = enc.header + enc.update(document) + enc.finalize()
    release = release_for(container, document, key)

    class Counting(FakeTransport):
        def deliver(self, job, doc, *, on_progress=None):
            sent = sum(len(chunk) for chunk in doc)
            return DeliveryResult(printer_job_id=1, bytes_sent=sent)

    class Cloud(FakeCloud):
        @contextmanager
        def stream_content(self, release_id):
            view = memoryview(self.container)
            yield (bytes(view[i : i + 65536]) for i in range(0, len(view), 65536))

    tracemalloc.start()
    try:
        result = deliver_release(Cloud(container), Counting(), release, tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.bytes_sent == len(document)
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes for an 8 MiB document"
