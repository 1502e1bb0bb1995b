"""Where encrypted job containers are kept: the `BlobStore` port and its implementations.

Invariant: a blob is either wholly visible or not at all. Writers stage bytes out of sight and
`commit()` publishes them atomically; a writer that is aborted, or whose process dies, leaves
nothing a reader could see. (Stale temp files of a crashed process are removed by
`FilesystemBlobStore.remove_stale_temp_files`, called at start.)

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
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self

from cloud.errors import BlobNotFoundError, StorageError

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
