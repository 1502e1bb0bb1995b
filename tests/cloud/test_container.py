"""The encrypted job container: round trips, and every kind of tampering is caught."""

from __future__ import annotations

import os
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.container import (
    TAG_BYTES,
    ContainerError,
    ContainerFormatError,
    ContainerIntegrityError,
    Decryptor,
    Encryptor,
    Header,
    ciphertext_size,
    new_data_key,
    unwrap_key,
    wrap_key,
)

CHUNK = 32  # small chunks, so every test crosses many boundaries
SITE = "default"


def seal(data: bytes, key: bytes, job_id: uuid.UUID, chunk: int = CHUNK, site: str = SITE) -> bytes:
    enc = Encryptor(key, job_id, site, chunk_bytes=chunk)
    return enc.header + enc.update(data) + enc.finalize()


def open_(
    blob: bytes, key: bytes, job_id: uuid.UUID, site: str | None = SITE, step: int = 7
) -> bytes:
    dec = Decryptor(key, job_id, site)
    out = bytearray()
    for i in range(0, len(blob), step):
        out += dec.update(blob[i : i + step])
    out += dec.finalize()
    return bytes(out)


def split(blob: bytes, chunk: int = CHUNK) -> tuple[bytes, list[bytes]]:
    parsed = Header.parse(blob)
    assert parsed is not None
    _, used = parsed
    body = blob[used:]
    size = chunk + TAG_BYTES
    return blob[:used], [body[i : i + size] for i in range(0, len(body), size)]


@pytest.fixture
def key() -> bytes:
    return new_data_key()


@pytest.fixture
def job_id() -> uuid.UUID:
    return uuid.uuid4()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5])
def test_round_trip_sizes(key: bytes, job_id: uuid.UUID, size: int) -> None:
    data = os.urandom(size)
    blob = seal(data, key, job_id)
    assert open_(blob, key, job_id) == data
    assert open_(blob, key, job_id, step=len(blob) or 1) == data  # all at once


@settings(max_examples=100, deadline=None)
@given(
    data=st.binary(max_size=600),
    chunk=st.integers(min_value=1, max_value=100),
    step=st.integers(min_value=1, max_value=300),
    pieces=st.lists(st.integers(min_value=0, max_value=150), max_size=8),
)
def test_round_trip_property(data: bytes, chunk: int, step: int, pieces: list[int]) -> None:
    key, job_id = new_data_key(), uuid.uuid4()
    enc = Encryptor(key, job_id, SITE, chunk_bytes=chunk)
    blob = bytearray(enc.header)
    rest = data
    for n in pieces:  # feed the encryptor in arbitrary pieces too
        blob += enc.update(rest[:n])
        rest = rest[n:]
    blob += enc.update(rest) + enc.finalize()
    assert open_(bytes(blob), key, job_id, step=step) == data


def test_empty_document_round_trips(key: bytes, job_id: uuid.UUID) -> None:
    blob = seal(b"", key, job_id)
    _, chunks = split(blob)
    assert len(chunks) == 1
    assert len(chunks[0]) == TAG_BYTES  # one empty, authenticated final chunk
    assert open_(blob, key, job_id) == b""


def expect_failure(blob: bytes, key: bytes, job_id: uuid.UUID) -> None:
    with pytest.raises(ContainerError):
        open_(blob, key, job_id)


def test_tampering_any_byte_is_detected(key: bytes, job_id: uuid.UUID) -> None:
    blob = seal(os.urandom(3 * CHUNK + 9), key, job_id)
    for index in range(len(blob)):  # every header byte and every byte of every chunk
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        expect_failure(bytes(tampered), key, job_id)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=0, max_size=300), where=st.floats(0, 1), flip=st.integers(1, 255))
def test_tampering_property(data: bytes, where: float, flip: int) -> None:
    key, job_id = new_data_key(), uuid.uuid4()
    blob = bytearray(seal(data, key, job_id))
    blob[min(int(where * len(blob)), len(blob) - 1)] ^= flip
    expect_failure(bytes(blob), key, job_id)


def test_truncation_at_every_chunk_boundary(key: bytes, job_id: uuid.UUID) -> None:
    data = os.urandom(4 * CHUNK + 3)
    blob = seal(data, key, job_id)
    header, chunks = split(blob)
    for kept in range(len(chunks)):  # header only, header + 1 chunk, ...
        expect_failure(header + b"".join(chunks[:kept]), key, job_id)


def test_truncation_at_every_byte(key: bytes, job_id: uuid.UUID) -> None:
    blob = seal(os.urandom(2 * CHUNK + 1), key, job_id)
    for cut in range(len(blob)):
        expect_failure(blob[:cut], key, job_id)


def test_truncation_of_exact_multiple_is_detected(key: bytes, job_id: uuid.UUID) -> None:
    # The last full chunk carries the final flag; dropping it must not look like a clean end.
    blob = seal(os.urandom(3 * CHUNK), key, job_id)
    header, chunks = split(blob)
    expect_failure(header + b"".join(chunks[:-1]), key, job_id)


def test_reordered_duplicated_and_dropped_chunks_are_detected(
    key: bytes, job_id: uuid.UUID
) -> None:
    header, chunks = split(seal(os.urandom(4 * CHUNK + 3), key, job_id))
    swapped = [chunks[1], chunks[0], *chunks[2:]]
    expect_failure(header + b"".join(swapped), key, job_id)
    duplicated = [chunks[0], *chunks]
    expect_failure(header + b"".join(duplicated), key, job_id)
    dropped = [chunks[0], *chunks[2:]]
    expect_failure(header + b"".join(dropped), key, job_id)


def test_appended_bytes_are_detected(key: bytes, job_id: uuid.UUID) -> None:
    blob = seal(os.urandom(CHUNK + 3), key, job_id)
    expect_failure(blob + b"\x00", key, job_id)
    _, chunks = split(blob)
    expect_failure(blob + chunks[-1], key, job_id)  # a replayed final chunk


def test_splice_from_another_job_is_detected(key: bytes) -> None:
    job_a, job_b = uuid.uuid4(), uuid.uuid4()
    data = os.urandom(3 * CHUNK)
    header_a, chunks_a = split(seal(data, key, job_a))
    header_b, chunks_b = split(seal(data, key, job_b))  # even under the same data key
    # B's chunk inside A's container
    expect_failure(header_a + chunks_a[0] + chunks_b[1] + chunks_a[2], key, job_a)
    # A's body under B's header, served as job A or as job B
    expect_failure(header_b + b"".join(chunks_a), key, job_a)
    expect_failure(header_b + b"".join(chunks_a), key, job_b)
    # B's whole container served in place of A's
    with pytest.raises(ContainerIntegrityError, match="another job"):
        open_(header_b + b"".join(chunks_b), key, job_a)


def test_wrong_site_and_wrong_key(key: bytes, job_id: uuid.UUID) -> None:
    blob = seal(b"hello", key, job_id, site="hq")
    assert open_(blob, key, job_id, site=None) == b"hello"
    with pytest.raises(ContainerIntegrityError, match="another site"):
        open_(blob, key, job_id, site="branch")
    expect_failure(blob, new_data_key(), job_id)


def test_not_a_container(key: bytes, job_id: uuid.UUID) -> None:
    with pytest.raises(ContainerFormatError):
        open_(b"%PDF-1.7 not a container at all, long enough to parse", key, job_id)
    with pytest.raises(ContainerIntegrityError):
        open_(b"PPJ", key, job_id)


def test_key_wrapping_is_bound_to_the_job(job_id: uuid.UUID) -> None:
    master, data_key = os.urandom(32), new_data_key()
    wrapped = wrap_key(master, data_key, job_id)
    assert data_key not in wrapped
    assert unwrap_key(master, wrapped, job_id) == data_key
    with pytest.raises(ContainerIntegrityError):
        unwrap_key(master, wrapped, uuid.uuid4())
    with pytest.raises(ContainerIntegrityError):
        unwrap_key(os.urandom(32), wrapped, job_id)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK + 1, 5 * CHUNK + 7])
def test_ciphertext_size_matches(key: bytes, job_id: uuid.UUID, size: int) -> None:
    enc = Encryptor(key, job_id, SITE, chunk_bytes=CHUNK)
    blob = seal(os.urandom(size), key, job_id)
    assert ciphertext_size(size, len(enc.header), CHUNK) == len(blob)


@pytest.mark.parametrize("size", [CHUNK, 3 * CHUNK])
def test_ciphertext_size_exact_multiple(key: bytes, job_id: uuid.UUID, size: int) -> None:
    enc = Encryptor(key, job_id, SITE, chunk_bytes=CHUNK)
    blob = seal(os.urandom(size), key, job_id)
    assert ciphertext_size(size, len(enc.header), CHUNK) == len(blob)
