"""One contract suite over every BlobStore: atomic commit, abort leaves nothing, streaming read."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cloud.blobstore import BlobStore, FilesystemBlobStore, MemoryBlobStore
from cloud.errors import BlobNotFoundError, StorageError


def leftovers(store: BlobStore) -> int:
    """Staged-but-unfinished writes: temp files on disk, pending writers in memory."""
    if isinstance(store, FilesystemBlobStore):
        return len(store.temp_files())
    assert isinstance(store, MemoryBlobStore)
    return store.pending_writers


@pytest.fixture(params=["memory", "filesystem"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "memory":
        return MemoryBlobStore()
    return FilesystemBlobStore(tmp_path / "blobs")


def read_all(store: BlobStore, key: str) -> bytes:
    with store.open(key) as fh:
        return fh.read()


def test_commit_makes_the_blob_visible(store: BlobStore) -> None:
    writer = store.open_writer("abc123")
    writer.write(b"hello ")
    writer.write(b"world")
    assert not store.exists("abc123")  # invisible until committed
    writer.commit()
    assert store.exists("abc123")
    assert read_all(store, "abc123") == b"hello world"
    assert leftovers(store) == 0


def test_streaming_read_in_pieces(store: BlobStore) -> None:
    data = os.urandom(300_000)
    with store.open_writer("big") as writer:
        for i in range(0, len(data), 65536):
            writer.write(data[i : i + 65536])
        writer.commit()
    with store.open("big") as fh:
        pieces = list(iter(lambda: fh.read(65536), b""))
    assert b"".join(pieces) == data
    assert len(pieces) == 5


def test_abort_leaves_nothing(store: BlobStore) -> None:
    writer = store.open_writer("gone")
    writer.write(b"partial")
    assert leftovers(store) == 1
    writer.abort()
    writer.abort()  # idempotent
    assert not store.exists("gone")
    assert leftovers(store) == 0
    with pytest.raises(StorageError):
        writer.write(b"more")


def test_context_manager_aborts_on_error(store: BlobStore) -> None:
    def interrupted_upload() -> None:
        with store.open_writer("boom") as writer:
            writer.write(b"partial")
            raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        interrupted_upload()
    assert not store.exists("boom")
    assert leftovers(store) == 0


def test_context_manager_without_commit_aborts(store: BlobStore) -> None:
    with store.open_writer("forgot") as writer:
        writer.write(b"x")
    assert not store.exists("forgot")
    assert leftovers(store) == 0


def test_abort_after_commit_keeps_the_blob(store: BlobStore) -> None:
    writer = store.open_writer("kept")
    writer.write(b"x")
    writer.commit()
    writer.abort()
    assert read_all(store, "kept") == b"x"
    with pytest.raises(StorageError):
        writer.commit()


def test_an_aborted_rewrite_keeps_the_old_blob(store: BlobStore) -> None:
    with store.open_writer("k1") as writer:
        writer.write(b"old")
        writer.commit()
    with store.open_writer("k1") as writer:
        writer.write(b"new, but never committed")
    assert read_all(store, "k1") == b"old"


def test_delete_is_idempotent(store: BlobStore) -> None:
    with store.open_writer("del") as writer:
        writer.write(b"x")
        writer.commit()
    store.delete("del")
    store.delete("del")
    store.delete("never-existed")
    assert not store.exists("del")


def test_open_missing_blob(store: BlobStore) -> None:
    with pytest.raises(BlobNotFoundError):
        store.open("missing")
    with pytest.raises(FileNotFoundError):  # the builtin it resembles
        store.open("missing")


def test_empty_blob(store: BlobStore) -> None:
    with store.open_writer("empty") as writer:
        writer.commit()
    assert store.exists("empty")
    assert read_all(store, "empty") == b""


@pytest.mark.parametrize("key", ["", "../etc", "a/b", ".hidden", "x" * 129, "a b"])
def test_keys_cannot_escape(store: BlobStore, key: str) -> None:
    check: list[Callable[[], object]] = [
        lambda: store.open_writer(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.open(key),
    ]
    for call in check:
        with pytest.raises(ValueError):
            call()


def test_filesystem_temp_file_lives_beside_the_target(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    writer = store.open_writer("abcdef")
    [temp] = store.temp_files()
    assert temp.parent == tmp_path / "ab"  # same directory: os.replace stays atomic
    assert temp.name.startswith(".")
    writer.commit()
    assert (tmp_path / "ab" / "abcdef").read_bytes() == b""
    assert store.temp_files() == []


def test_filesystem_removes_stale_temp_files(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    writer = store.open_writer("crashed")
    writer.write(b"half")
    # Simulate a process that died mid-upload: the temp file stays behind, invisible.
    [temp] = store.temp_files()
    os.utime(temp, (0, 0))
    assert not store.exists("crashed")
    assert store.remove_stale_temp_files(older_than_s=60) == 1
    assert store.temp_files() == []
    writer.abort()  # the late abort of the "dead" writer is harmless


def test_filesystem_reader_survives_deletion(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    with store.open_writer("live") as writer:
        writer.write(b"still readable")
        writer.commit()
    with store.open("live") as fh:
        store.delete("live")
        assert fh.read() == b"still readable"
