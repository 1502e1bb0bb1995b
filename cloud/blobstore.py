"""Where encrypted job containers are kept: the `BlobStore` port and its implementations.

Invariant: a blob is either wholly visible or not at all. Writers stage bytes out of sight and
`commit()` publishes them atomically; a writer that is aborted, or whose process dies, leaves
nothing a reader could see. (Stale temp files of a crashed process are removed by
`FilesystemBlobStore.remove_stale_temp_files`, called at start; on S3, multipart uploads
never completed are aborted by `S3BlobStore.remove_stale_uploads`.)

Implementations: `FilesystemBlobStore` (the embedded default), `S3BlobStore` (boto3; AWS or any
S3-compatible server), `MemoryBlobStore` (the test twin). `open_blob_store(config)` picks one.

Blobs hold only ciphertext; the store never sees a key.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, Self, cast

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from cloud.errors import BlobNotFoundError, StorageError

if TYPE_CHECKING:
    from cloud.config import CloudConfig

log = logging.getLogger(__name__)

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_TEMP_SUFFIX = ".tmp"


def check_key(key: str) -> str:
    """Refuse keys that could escape the store's namespace (path separators, dots)."""
    if not _KEY_RE.match(key):
        raise ValueError("blob keys are 1-128 letters, digits, '-' or '_'")
    return key


class BlobWriter(Protocol):
    """Stages one blob; nothing is visible until `commit()`."""

    def write(self, data: bytes) -> None:
        """Append bytes to the staged blob."""

    def commit(self) -> None:
        """Publish the blob atomically (durably, where the store can)."""

    def abort(self) -> None:
        """Discard the staged bytes; idempotent, and a no-op after commit."""

    def __enter__(self) -> Self:
        """Enter a block that aborts unless committed."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Abort if the blob was not committed."""


class BlobStore(Protocol):
    """A flat namespace of immutable byte blobs."""

    def open_writer(self, key: str) -> BlobWriter:
        """Start writing the blob `key` (replacing any blob of that key on commit)."""

    def open(self, key: str) -> BinaryIO:
        """Open a blob for streaming reads; raises BlobNotFoundError."""

    def delete(self, key: str) -> None:
        """Delete a blob; deleting a missing blob is not an error (idempotent)."""

    def exists(self, key: str) -> bool:
        """Whether a committed blob of this key exists."""


class _WriterBase:
    """Context-manager behaviour shared by the writers."""

    _done: bool

    def abort(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._done:
            self.abort()


class FilesystemBlobWriter(_WriterBase):
    """Writes to a temp file beside the target, then fsync + os.replace on commit."""

    def __init__(self, final_path: Path) -> None:
        self._final = final_path
        # Same directory as the target: os.replace is only atomic within one filesystem.
        self._temp = final_path.with_name(f".{final_path.name}.{uuid.uuid4().hex}{_TEMP_SUFFIX}")
        try:
            self._fh: BinaryIO = open(self._temp, "xb")  # noqa: SIM115 - closed in commit/abort
        except OSError as exc:
            raise StorageError(f"cannot create blob: {exc.strerror}") from exc
        self._done = False

    def write(self, data: bytes) -> None:
        """Append bytes to the temp file."""
        if self._done:
            raise StorageError("blob writer already finished")
        try:
            self._fh.write(data)
        except OSError as exc:
            self.abort()
            raise StorageError(f"cannot write blob: {exc.strerror}") from exc

    def commit(self) -> None:
        """fsync the data, rename it into place, fsync the directory (so the rename survives)."""
        if self._done:
            raise StorageError("blob writer already finished")
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self._temp, self._final)
            _fsync_dir(self._final.parent)
        except OSError as exc:
            self.abort()
            raise StorageError(f"cannot commit blob: {exc.strerror}") from exc
        self._done = True

    def abort(self) -> None:
        """Close and remove the temp file."""
        if self._done:
            return
        self._done = True
        self._fh.close()
        try:
            self._temp.unlink(missing_ok=True)
        except OSError as exc:  # pragma: no cover - only on a failing disk
            log.warning("could not remove temp blob %s: %s", self._temp.name, exc.strerror)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemBlobStore:
    """Blobs as files under `root`, fanned out by the first two characters of the key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key

    def open_writer(self, key: str) -> FilesystemBlobWriter:
        """Start writing `key` into a temp file in its final directory."""
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        return FilesystemBlobWriter(path)

    def open(self, key: str) -> BinaryIO:
        """Open the blob for reading; an open handle keeps working even if it is deleted."""
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"blob {key} not found") from exc
        except OSError as exc:
            raise StorageError(f"cannot open blob: {exc.strerror}") from exc

    def delete(self, key: str) -> None:
        """Remove the blob file if present."""
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete blob: {exc.strerror}") from exc

    def exists(self, key: str) -> bool:
        """Whether the committed file exists (temp files never count)."""
        return self._path(key).is_file()

    def temp_files(self) -> list[Path]:
        """Temp files of writers in progress (or of a crashed process)."""
        return sorted(self.root.glob(f"*/.*{_TEMP_SUFFIX}"))

    def remove_stale_temp_files(self, older_than_s: float = 3600.0) -> int:
        """Remove temp files left by a crash; returns how many were removed."""
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.temp_files():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # its writer finished meanwhile
        return removed


class MemoryBlobWriter(_WriterBase):
    """Buffers in memory; `commit()` publishes into the store's dict."""

    def __init__(self, store: MemoryBlobStore, key: str) -> None:
        self._store = store
        self._key = key
        self._buf = io.BytesIO()
        self._done = False
        store._pending += 1

    def write(self, data: bytes) -> None:
        """Append bytes to the buffer."""
        if self._done:
            raise StorageError("blob writer already finished")
        self._buf.write(data)

    def commit(self) -> None:
        """Publish the buffer under the key."""
        if self._done:
            raise StorageError("blob writer already finished")
        self._done = True
        self._store._publish(self._key, self._buf.getvalue())

    def abort(self) -> None:
        """Drop the buffer."""
        if self._done:
            return
        self._done = True
        self._store._retire()


class MemoryBlobStore:
    """An in-memory twin of the filesystem store, for fast tests; observable via `blobs`."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def blobs(self) -> dict[str, bytes]:
        """A snapshot of the committed blobs."""
        with self._lock:
            return dict(self._blobs)

    @property
    def pending_writers(self) -> int:
        """Writers neither committed nor aborted (the twin of leftover temp files)."""
        with self._lock:
            return self._pending

    def _publish(self, key: str, data: bytes) -> None:
        with self._lock:
            self._blobs[key] = data
            self._pending -= 1

    def _retire(self) -> None:
        with self._lock:
            self._pending -= 1

    def open_writer(self, key: str) -> MemoryBlobWriter:
        """Start buffering `key`."""
        check_key(key)
        with self._lock:
            return MemoryBlobWriter(self, key)

    def open(self, key: str) -> BinaryIO:
        """A BytesIO over the committed bytes."""
        check_key(key)
        with self._lock:
            data = self._blobs.get(key)
        if data is None:
            raise BlobNotFoundError(f"blob {key} not found")
        return io.BytesIO(data)

    def delete(self, key: str) -> None:
        """Forget the blob."""
        check_key(key)
        with self._lock:
            self._blobs.pop(key, None)

    def exists(self, key: str) -> bool:
        """Whether the blob is committed."""
        check_key(key)
        with self._lock:
            return key in self._blobs


# --- S3 ---------------------------------------------------------------------------------------

# S3 parts are at least 5 MiB except the last; 8 MiB bounds memory per upload and keeps a 100 MB
# document at 13 requests.
S3_PART_BYTES = 8 * 1024 * 1024
_S3_READ_BYTES = 256 * 1024


class S3BlobWriter(_WriterBase):
    """Streams a blob to S3; the object exists only after `commit()`.

    Up to one part is buffered. A blob smaller than a part is one `PutObject` at commit (an S3
    object is never visible half-written). A larger one becomes a multipart upload whose parts
    are invisible until `CompleteMultipartUpload`; abort (or an exception) aborts the upload, and
    an upload orphaned by a crashed process is removed by `S3BlobStore.remove_stale_uploads`.
    """

    def __init__(self, store: S3BlobStore, key: str) -> None:
        self._store = store
        self._object_key = store.object_key(key)
        self._buf = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._done = False
        store._writer_opened()

    def write(self, data: bytes) -> None:
        """Buffer bytes, sending a part whenever a whole one is buffered."""
        if self._done:
            raise StorageError("blob writer already finished")
        self._buf += data
        while len(self._buf) >= S3_PART_BYTES:
            part = bytes(self._buf[:S3_PART_BYTES])
            del self._buf[:S3_PART_BYTES]
            self._send_part(part)

    def _send_part(self, part: bytes) -> None:
        client, bucket = self._store.client, self._store.bucket
        try:
            if self._upload_id is None:
                started = client.create_multipart_upload(Bucket=bucket, Key=self._object_key)
                self._upload_id = started["UploadId"]
            number = len(self._parts) + 1
            sent = client.upload_part(
                Bucket=bucket,
                Key=self._object_key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=part,
            )
        except _S3_ERRORS as exc:
            self.abort()
            raise StorageError(f"cannot write blob: {_s3_reason(exc)}") from exc
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def commit(self) -> None:
        """Publish: one PutObject, or the last part and CompleteMultipartUpload."""
        if self._done:
            raise StorageError("blob writer already finished")
        client, bucket = self._store.client, self._store.bucket
        if self._upload_id is None:
            try:
                client.put_object(Bucket=bucket, Key=self._object_key, Body=bytes(self._buf))
            except _S3_ERRORS as exc:
                self.abort()
                raise StorageError(f"cannot commit blob: {_s3_reason(exc)}") from exc
        else:
            if self._buf:
                self._send_part(bytes(self._buf))
            try:
                client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=self._object_key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
            except _S3_ERRORS as exc:
                self.abort()
                raise StorageError(f"cannot commit blob: {_s3_reason(exc)}") from exc
        self._buf.clear()
        self._done = True
        self._store._writer_closed()

    def abort(self) -> None:
        """Drop the buffer and abort the multipart upload, if one was started."""
        if self._done:
            return
        self._done = True
        self._store._writer_closed()
        self._buf.clear()
        if self._upload_id is not None:
            try:
                self._store.client.abort_multipart_upload(
                    Bucket=self._store.bucket, Key=self._object_key, UploadId=self._upload_id
                )
            except _S3_ERRORS as exc:
                # The upload stays invisible; remove_stale_uploads (or a bucket lifecycle rule)
                # frees its parts later.
                log.warning("could not abort a multipart upload: %s", _s3_reason(exc))


class _S3Reader(io.RawIOBase):
    """A seekable reader over one S3 object: a ranged GET from the current position.

    Streaming keeps memory constant; a seek drops the current response and the next read starts
    a new ranged GET (only `open_content`'s length check seeks, before the first read).
    """

    def __init__(self, store: S3BlobStore, object_key: str, length: int, body: Any) -> None:
        self._store = store
        self._key = object_key
        self._length = length
        self._pos = 0
        self._body: Any = body

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._length}[whence]
        target = max(0, base + offset)
        if target != self._pos:
            self._drop_body()
            self._pos = target
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._length:
            return 0
        if self._body is None:
            try:
                got = self._store.client.get_object(
                    Bucket=self._store.bucket, Key=self._key, Range=f"bytes={self._pos}-"
                )
            except _S3_ERRORS as exc:
                raise StorageError(f"cannot read blob: {_s3_reason(exc)}") from exc
            self._body = got["Body"]
        view = memoryview(buffer).cast("B")
        try:
            data = self._body.read(len(view))
        except _S3_ERRORS as exc:
            raise StorageError(f"cannot read blob: {_s3_reason(exc)}") from exc
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


class S3BlobStore:
    """Blobs as objects `<prefix><key>` in one S3 bucket (AWS, or any S3-compatible server).

    Credentials come from boto3's usual chain (environment, shared files, instance roles): the
    cloud's config names the bucket and endpoint only, so it never holds a cloud credential.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self._lock = threading.Lock()
        self._open_writers = 0

    @property
    def open_writers(self) -> int:
        """Writers of this process neither committed nor aborted."""
        with self._lock:
            return self._open_writers

    def _writer_opened(self) -> None:
        with self._lock:
            self._open_writers += 1

    def _writer_closed(self) -> None:
        with self._lock:
            self._open_writers -= 1

    @classmethod
    def connect(
        cls, bucket: str, *, prefix: str = "", endpoint_url: str = "", region: str = ""
    ) -> S3BlobStore:
        """A store over a boto3 client with bounded timeouts and standard retries."""
        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            config=BotoConfig(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 4, "mode": "standard"},
                # Path-style works with every S3-compatible server; virtual hosts need DNS.
                s3={"addressing_style": "path"},
            ),
        )
        return cls(client, bucket, prefix)

    def object_key(self, key: str) -> str:
        """The object key of blob `key`."""
        return self.prefix + check_key(key)

    def open_writer(self, key: str) -> S3BlobWriter:
        """Start staging `key` (nothing is sent until a part is full or on commit)."""
        return S3BlobWriter(self, key)

    def open(self, key: str) -> BinaryIO:
        """Stream the object; raises BlobNotFoundError if it does not exist."""
        object_key = self.object_key(key)
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=object_key)
        except _S3_ERRORS as exc:
            if _is_missing(exc):
                raise BlobNotFoundError(f"blob {key} not found") from exc
            raise StorageError(f"cannot open blob: {_s3_reason(exc)}") from exc
        raw = _S3Reader(self, object_key, int(got["ContentLength"]), got["Body"])
        return cast(BinaryIO, io.BufferedReader(raw, _S3_READ_BYTES))

    def delete(self, key: str) -> None:
        """Delete the object (S3 deletes are idempotent)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except _S3_ERRORS as exc:
            raise StorageError(f"cannot delete blob: {_s3_reason(exc)}") from exc

    def exists(self, key: str) -> bool:
        """Whether the committed object exists (uploads in progress never count)."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except _S3_ERRORS as exc:
            if _is_missing(exc):
                return False
            raise StorageError(f"cannot check blob: {_s3_reason(exc)}") from exc
        return True

    def list_keys(self) -> list[str]:
        """The committed blobs' keys (for tests and operators)."""
        found: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            found += [item["Key"][len(self.prefix) :] for item in page.get("Contents", [])]
        return sorted(found)

    def pending_uploads(self) -> list[tuple[str, str, datetime]]:
        """Multipart uploads not completed nor aborted: (object key, upload id, started)."""
        found: list[tuple[str, str, datetime]] = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            found += [(u["Key"], u["UploadId"], u["Initiated"]) for u in page.get("Uploads", [])]
        return found

    def remove_stale_uploads(self, older_than_s: float = 3600.0) -> int:
        """Abort multipart uploads left by a crashed process; returns how many were aborted."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        removed = 0
        for object_key, upload_id, started in self.pending_uploads():
            if started < cutoff:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=object_key, UploadId=upload_id
                )
                removed += 1
        return removed


_S3_ERRORS = (BotoCoreError, ClientError)


def _is_missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    return code in ("NoSuchKey", "404", "NotFound")


def _s3_reason(exc: Exception) -> str:
    """A short reason for a log or an error (the S3 error code, never a credential)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__


def open_blob_store(config: CloudConfig) -> BlobStore:
    """The store the config names, with what a crashed process left behind cleaned up."""
    if config.blob_store == "s3":
        s3 = S3BlobStore.connect(
            config.s3_bucket,
            prefix=config.s3_prefix,
            endpoint_url=config.s3_endpoint_url,
            region=config.s3_region,
        )
        try:
            removed = s3.remove_stale_uploads()
        except _S3_ERRORS as exc:
            raise StorageError(f"cannot reach the S3 bucket: {_s3_reason(exc)}") from exc
        if removed:
            log.warning("aborted %d multipart upload(s) left by an interrupted upload", removed)
        return s3
    store = FilesystemBlobStore(config.blobs_dir)
    removed = store.remove_stale_temp_files()
    if removed:
        log.warning("removed %d temp blob(s) left by an interrupted upload", removed)
    return store
