"""The encrypted job container (sans-I/O): how a document is parked at rest.

Layout (all integers big-endian)::

    header  = MAGIC "PPJ1" | version u8 | chunk_bytes u32 | job_id 16 bytes
              | site_len u8 | site utf-8 | salt 32 bytes
    body    = chunk_0 | chunk_1 | ... | chunk_n      (each = AES-256-GCM ciphertext + 16-byte tag)

Invariants (DESIGN.md, "Jobs at rest"):

* each job has its own random 256-bit data key; the chunk key is
  HKDF-SHA256(data_key, salt, info="pullprint/job/v1|" + header), so the header (job id, site,
  chunk size) is bound into the key: a container whose header was edited, or spliced from another
  job, fails to decrypt;
* every chunk but the last holds exactly `chunk_bytes` of plaintext; the nonce is the 11-byte chunk
  counter followed by a final-chunk flag byte (the STREAM construction of Hoang, Reyhanitabar,
  Rogaway and Vizar), so reordered, dropped, duplicated or truncated chunks fail to authenticate;
* the decryptor only releases plaintext that has been authenticated, one chunk at a time.

The data key itself is wrapped, so destroying the wrapped key destroys the content even if a
copy of the blob survives. It is wrapped one of two ways (`KeyWrap`):

* `master`: AES-256-GCM under the cloud's master key, job id as associated data (cloud storage
  mode: the cloud can unwrap it and hands the data key to the releasing station);
* `hpke`: HPKE (RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) to the
  site's X25519 public key, with the site and job id in the HPKE `info` (zero-knowledge mode: only
  a holder of the site private key, i.e. a paired station, can unwrap it; the cloud cannot).
"""

from __future__ import annotations

import os
import struct
import uuid
from dataclasses import dataclass
from enum import StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"PPJ1"
VERSION = 1
DEFAULT_CHUNK_BYTES = 64 * 1024
KEY_BYTES = 32
SALT_BYTES = 32
TAG_BYTES = 16
_MAX_CHUNK_BYTES = 16 * 1024 * 1024
_COUNTER_LIMIT = 1 << 88  # 11-byte counter
_FIXED = struct.Struct(">4sBI16sB")
_WRAP_NONCE_BYTES = 12


class ContainerError(ValueError):
    """Root of container errors: the bytes are not a valid job container for this job."""


class ContainerFormatError(ContainerError):
    """The header is malformed or of an unknown version."""


class ContainerIntegrityError(ContainerError):
    """A chunk failed to authenticate, or the stream was truncated, reordered or spliced."""


def new_data_key() -> bytes:
    """A fresh random 256-bit data key for one job."""
    return os.urandom(KEY_BYTES)


@dataclass(frozen=True, slots=True)
class Header:
    """The container header, authenticated through the key derivation."""

    job_id: uuid.UUID
    site: str
    chunk_bytes: int
    salt: bytes

    def encode(self) -> bytes:
        """The header as stored."""
        site = self.site.encode()
        return _FIXED.pack(MAGIC, VERSION, self.chunk_bytes, self.job_id.bytes, len(site)) + (
            site + self.salt
        )

    @classmethod
    def parse(cls, data: bytes) -> tuple[Header, int] | None:
        """Parse a header from the start of `data`; None if more bytes are needed."""
        if len(data) < _FIXED.size:
            return None
        magic, version, chunk_bytes, job_id, site_len = _FIXED.unpack_from(data)
        if magic != MAGIC:
            raise ContainerFormatError("not a PullPrint job container")
        if version != VERSION:
            raise ContainerFormatError(f"unknown container version {version}")
        if not 0 < chunk_bytes <= _MAX_CHUNK_BYTES:
            raise ContainerFormatError("chunk size out of range")
        end = _FIXED.size + site_len + SALT_BYTES
        if len(data) < end:
            return None
        try:
            site = data[_FIXED.size : _FIXED.size + site_len].decode()
        except UnicodeDecodeError as exc:
            raise ContainerFormatError("site is not UTF-8") from exc
        salt = bytes(data[end - SALT_BYTES : end])
        return cls(uuid.UUID(bytes=job_id), site, chunk_bytes, salt), end


def _chunk_cipher(data_key: bytes, header: Header) -> AESGCM:
    if len(data_key) != KEY_BYTES:
        raise ValueError("data key must be 32 bytes")
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=header.salt,
        info=b"pullprint/job/v1|" + header.encode(),
    ).derive(data_key)
    return AESGCM(key)


def _nonce(counter: int, final: bool) -> bytes:
    if counter >= _COUNTER_LIMIT:
        raise ContainerError("too many chunks")
    return counter.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


class Encryptor:
    """Turns a plaintext stream into a container, in constant memory.

    Usage: `out = enc.header; out += enc.update(data)...; out += enc.finalize()`.
    """

    def __init__(
        self,
        data_key: bytes,
        job_id: uuid.UUID,
        site: str,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> None:
        if not 0 < chunk_bytes <= _MAX_CHUNK_BYTES:
            raise ValueError("chunk size out of range")
        if len(site.encode()) > 255:
            raise ValueError("site name too long")
        self._hdr = Header(job_id, site, chunk_bytes, os.urandom(SALT_BYTES))
        self.header = self._hdr.encode()
        self._aead = _chunk_cipher(data_key, self._hdr)
        self._buf = bytearray()
        self._counter = 0
        self._done = False
        self.plaintext_bytes = 0

    def update(self, data: bytes) -> bytes:
        """Encrypt what can be encrypted so far; keeps at least one chunk's worth back.

        The last chunk must carry the final flag, so a full chunk is only sealed once we know
        more data follows it. Linear in len(data): whole chunks are sealed straight from a view
        of `data`, and only a partial chunk is buffered (cutting chunk after chunk off the front
        of one growing buffer moved the rest each time: 4-5x slower for 256 KiB pieces).
        """
        if self._done:
            raise ContainerError("encryptor already finalized")
        self.plaintext_bytes += len(data)
        size = self._hdr.chunk_bytes
        if len(self._buf) + len(data) <= size:
            self._buf += data
            return b""
        view = memoryview(data)
        out: list[bytes] = []
        if self._buf:  # complete the buffered chunk; more data follows it, so seal it
            need = size - len(self._buf)
            self._buf += view[:need]
            view = view[need:]
            out.append(self._seal(self._buf, final=False))
            self._buf = bytearray()
        start = 0
        while len(view) - start > size:
            out.append(self._seal(view[start : start + size], final=False))
            start += size
        self._buf += view[start:]
        return b"".join(out)

    def finalize(self) -> bytes:
        """Seal the last (possibly empty) chunk with the final flag."""
        if self._done:
            raise ContainerError("encryptor already finalized")
        self._done = True
        return self._seal(bytes(self._buf), final=True)

    def _seal(self, chunk: bytes | bytearray | memoryview, *, final: bool) -> bytes:
        sealed = self._aead.encrypt(_nonce(self._counter, final), chunk, None)
        self._counter += 1
        return sealed


class Decryptor:
    """Turns a container stream back into plaintext, releasing only authenticated bytes.

    `expected_job_id` (and `expected_site`) guard against a container of another job being served
    in place of this one.
    """

    def __init__(
        self, data_key: bytes, expected_job_id: uuid.UUID, expected_site: str | None = None
    ) -> None:
        self._key = data_key
        self._expected_job_id = expected_job_id
        self._expected_site = expected_site
        self._buf = bytearray()
        self._aead: AESGCM | None = None
        self._chunk_cipher_bytes = 0
        self._counter = 0
        self._done = False
        self.header: Header | None = None

    def update(self, data: bytes) -> bytes:
        """Feed container bytes; return the plaintext of every chunk known not to be the last."""
        if self._done:
            raise ContainerIntegrityError("data after the final chunk")
        self._buf += data
        if self._aead is None and not self._read_header():
            return b""
        # Hold back one full chunk: only EOF tells whether it is the final one. Chunks are opened
        # from a view and the rest is cut off once, so the work stays linear in len(data).
        size = self._chunk_cipher_bytes
        out: list[bytes] = []
        start = 0
        with memoryview(self._buf) as view:
            while len(view) - start > size:
                out.append(self._open(view[start : start + size], final=False))
                start += size
        if start:
            del self._buf[:start]
        return b"".join(out)

    def finalize(self) -> bytes:
        """Authenticate the final chunk; raises if the stream was cut short."""
        if self._done:
            raise ContainerIntegrityError("decryptor already finalized")
        if self._aead is None and not self._read_header():
            raise ContainerIntegrityError("container truncated inside its header")
        self._done = True
        if len(self._buf) < TAG_BYTES:
            raise ContainerIntegrityError("container truncated: final chunk missing")
        return self._open(bytes(self._buf), final=True)

    def _read_header(self) -> bool:
        parsed = Header.parse(bytes(self._buf[: _FIXED.size + 255 + SALT_BYTES]))
        if parsed is None:
            return False
        header, used = parsed
        if header.job_id != self._expected_job_id:
            raise ContainerIntegrityError("container belongs to another job")
        if self._expected_site is not None and header.site != self._expected_site:
            raise ContainerIntegrityError("container belongs to another site")
        self.header = header
        self._aead = _chunk_cipher(self._key, header)
        self._chunk_cipher_bytes = header.chunk_bytes + TAG_BYTES
        del self._buf[:used]
        return True

    def _open(self, sealed: bytes | bytearray | memoryview, *, final: bool) -> bytes:
        assert self._aead is not None
        try:
            plain = self._aead.decrypt(_nonce(self._counter, final), sealed, None)
        except InvalidTag as exc:
            raise ContainerIntegrityError(
                f"chunk {self._counter} failed to authenticate (tampered, truncated or reordered)"
            ) from exc
        self._counter += 1
        return plain


def ciphertext_size(plaintext_bytes: int, header_bytes: int, chunk_bytes: int) -> int:
    """Size of the container for a document of `plaintext_bytes`."""
    # Every chunk but the last is full; the last holds the rest (a full chunk, or an empty one for
    # an empty document).
    chunks = max(1, -(-plaintext_bytes // chunk_bytes))
    return header_bytes + plaintext_bytes + chunks * TAG_BYTES


def wrap_key(master_key: bytes, data_key: bytes, job_id: uuid.UUID) -> bytes:
    """Wrap a data key under the master key, bound to the job id."""
    nonce = os.urandom(_WRAP_NONCE_BYTES)
    return nonce + AESGCM(master_key).encrypt(nonce, data_key, b"pullprint/wrap/v1|" + job_id.bytes)


def unwrap_key(master_key: bytes, wrapped: bytes, job_id: uuid.UUID) -> bytes:
    """Recover a data key; raises ContainerIntegrityError if it was not wrapped for this job."""
    nonce, sealed = wrapped[:_WRAP_NONCE_BYTES], wrapped[_WRAP_NONCE_BYTES:]
    try:
        return AESGCM(master_key).decrypt(nonce, sealed, b"pullprint/wrap/v1|" + job_id.bytes)
    except InvalidTag as exc:
        raise ContainerIntegrityError("data key was not wrapped for this job") from exc


class KeyWrap(StrEnum):
    """How a job's data key is wrapped at rest (see the module docstring)."""

    MASTER = "master"
    HPKE = "hpke"


# RFC 9180 suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM (a KEM output of 32 bytes
# followed by the 32-byte key and its 16-byte tag).
_HPKE_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
HPKE_WRAPPED_BYTES = 32 + KEY_BYTES + TAG_BYTES
PUBLIC_KEY_BYTES = 32


def _hpke_info(site: str, job_id: uuid.UUID) -> bytes:
    return b"pullprint/job-key/v1|" + site.encode() + b"|" + job_id.bytes


def hpke_wrap_key(site_public_key: bytes, data_key: bytes, job_id: uuid.UUID, site: str) -> bytes:
    """Wrap a data key to a site's raw X25519 public key, bound to the site and the job id.

    Raises:
        ValueError: the public key or the data key has the wrong length.
    """
    if len(data_key) != KEY_BYTES:
        raise ValueError("data key must be 32 bytes")
    public = X25519PublicKey.from_public_bytes(site_public_key)
    return _HPKE_SUITE.encrypt(data_key, public, info=_hpke_info(site, job_id))


def hpke_unwrap_key(
    site_private_key: X25519PrivateKey, wrapped: bytes, job_id: uuid.UUID, site: str
) -> bytes:
    """Recover a data key wrapped by `hpke_wrap_key`.

    Raises:
        ContainerIntegrityError: not wrapped to this key, or for another job or site.
    """
    if len(wrapped) != HPKE_WRAPPED_BYTES:
        raise ContainerIntegrityError("a wrapped job key has the wrong length")
    try:
        key = _HPKE_SUITE.decrypt(wrapped, site_private_key, info=_hpke_info(site, job_id))
    except (InvalidTag, ValueError) as exc:
        raise ContainerIntegrityError("the job key was not wrapped for this site and job") from exc
    if len(key) != KEY_BYTES:
        raise ContainerIntegrityError("a wrapped job key has the wrong length")
    return key


def body_plaintext_bytes(body_bytes: int, chunk_bytes: int) -> int | None:
    """The document size a container body (everything after the header) of `body_bytes` holds.

    None if no sequence of full chunks plus one final chunk has that size (cut short or padded).
    """
    sealed = chunk_bytes + TAG_BYTES
    if body_bytes < TAG_BYTES:
        return None
    full, rest = divmod(body_bytes, sealed)
    if rest == 0:
        # Only full chunks: the last of them is the final chunk (a document of exact chunks).
        return full * chunk_bytes if full else None
    if rest < TAG_BYTES:
        return None
    return full * chunk_bytes + rest - TAG_BYTES
