"""Station update bundles: what is in one, how an admin signs it, how a station checks it.

A bundle is one uncompressed tar (its wheels are compressed already)::

    manifest.json     format, version, min_version, created, and every payload file's
                      sha256 and size
    manifest.sig      Ed25519 over DOMAIN + the manifest's exact bytes (64 bytes, raw)
    payload/...       the wheelhouse: pullprint's wheel, its dependencies, requirements.txt

Invariants:

* the signing key stays with the admin (`pullprint update keygen|sign`); the cloud only stores
  and serves bundles, and stations trust nothing but the update keys pinned in their image;
* nothing from a bundle is used before the manifest's signature verifies, and a payload file
  only counts once its bytes hash to the signed sha256 and size; a member that is not a regular
  file under `payload/`, a file the manifest does not list, or a listed file that is missing
  fails the whole bundle;
* the signature covers a domain string, so a manifest signature can never be replayed as any
  other Ed25519 signature the admin makes (or the reverse).

Keys are text: `ed25519:<base64 of the 32 raw public bytes>` for public keys (one a line in the
station's pinned key file), PKCS#8 PEM for the admin's private key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from packaging.version import InvalidVersion, Version

from station.errors import (
    BundleFormatError,
    BundleSignatureError,
    BundleTamperedError,
    TruncatedBundleError,
)

FORMAT = "pullprint-update/1"
DOMAIN = b"pullprint-update-manifest/v1\x00"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PAYLOAD = "payload/"
REQUIREMENTS = "requirements.txt"
PUBLIC_PREFIX = "ed25519:"
# A manifest lists a wheelhouse: a few dozen files. Bounds keep a hostile bundle from making the
# station read megabytes of JSON before the signature check.
MAX_MANIFEST_BYTES = 256 * 1024
MAX_FILES = 1000
_CHUNK = 1024 * 1024
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One payload file as the manifest lists it."""

    name: str  # a plain file name inside payload/ (no folders)
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """A bundle's signed description."""

    version: str
    min_version: str
    created: datetime
    files: tuple[FileEntry, ...]

    def to_bytes(self) -> bytes:
        """The manifest as stored and signed (sorted keys: the same manifest, the same bytes)."""
        doc = {
            "format": FORMAT,
            "version": self.version,
            "min_version": self.min_version,
            "created": self.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "files": {f.name: {"sha256": f.sha256, "size": f.size} for f in self.files},
        }
        return json.dumps(doc, indent=1, sort_keys=True).encode("utf-8") + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        """Read a manifest (only after its signature verified: the JSON is then trusted input).

        Raises:
            BundleFormatError: not this format, or a field is missing or malformed.
        """
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleFormatError("the manifest is not JSON") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise BundleFormatError(f"the manifest is not {FORMAT}")
        try:
            version, min_version = str(doc["version"]), str(doc["min_version"])
            parse_version(version)
            parse_version(min_version)
            created = datetime.strptime(str(doc["created"]), "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=UTC
            )
            raw_files = doc["files"]
            if not isinstance(raw_files, dict) or not raw_files or len(raw_files) > MAX_FILES:
                raise BundleFormatError(f"the manifest must list 1 to {MAX_FILES} files")
            files = tuple(
                FileEntry(_check_name(name), _check_digest(e["sha256"]), _check_size(e["size"]))
                for name, e in sorted(raw_files.items())
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, BundleFormatError):
                raise
            raise BundleFormatError(f"the manifest is malformed ({type(exc).__name__})") from exc
        if REQUIREMENTS not in {f.name for f in files}:
            raise BundleFormatError(f"the manifest lists no {REQUIREMENTS}")
        if parse_version(version) < parse_version(min_version):
            raise BundleFormatError("the manifest's version is below its own min_version")
        return cls(version, min_version, created, files)


def parse_version(text: str) -> Version:
    """A PEP 440 version, or BundleFormatError."""
    try:
        return Version(text)
    except InvalidVersion as exc:
        raise BundleFormatError(f"{text!r} is not a version") from exc


def _check_name(name: object) -> str:
    # Plain names only: a path with a folder, '..' or a leading '/' could escape the slot.
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise BundleFormatError("a payload file name is not a plain file name")
    return name


def _check_digest(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
        raise BundleFormatError("a payload sha256 is not 64 lowercase hex digits")
    return value


def _check_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BundleFormatError("a payload size is not a non-negative integer")
    return value


# ---- keys ----


def public_key_text(key: Ed25519PublicKey) -> str:
    """`ed25519:<base64>`: how a public update key is written and pinned."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode("ascii")


def key_id(key: Ed25519PublicKey) -> str:
    """A short name for a public key: the first 16 hex digits of its sha256."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def parse_public_key(text: str) -> Ed25519PublicKey:
    """Read one `ed25519:<base64>` key.

    Raises:
        BundleFormatError: not such a key.
    """
    text = text.strip()
    if not text.startswith(PUBLIC_PREFIX):
        raise BundleFormatError(f"an update key starts with {PUBLIC_PREFIX!r}")
    try:
        raw = base64.b64decode(text[len(PUBLIC_PREFIX) :], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise BundleFormatError("an update key is not 32 bytes of base64") from exc


def read_public_keys(text: str) -> list[Ed25519PublicKey]:
    """Every key of a pinned key file: one a line; blanks and `#` comments (whole or trailing)
    ignored."""
    words = (line.split("#", 1)[0].strip() for line in text.splitlines())
    keys = [parse_public_key(word) for word in words if word]
    if not keys:
        raise BundleFormatError("the update key file holds no key")
    return keys


def new_private_key() -> Ed25519PrivateKey:
    """A fresh signing key."""
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey, passphrase: bytes | None = None) -> bytes:
    """The private key as PKCS#8 PEM, encrypted when a passphrase is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_private_key(pem: bytes, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """Read a PKCS#8 PEM Ed25519 key (BundleFormatError if it is not one)."""
    try:
        key = serialization.load_pem_private_key(pem, passphrase)
    except (ValueError, TypeError) as exc:
        raise BundleFormatError(f"not a usable private key ({type(exc).__name__})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleFormatError("the signing key is not an Ed25519 key")
    return key


# ---- building (the admin's side) ----


def manifest_for(
    files: Iterable[Path], version: str, min_version: str, created: datetime
) -> Manifest:
    """The manifest of a wheelhouse's files (hashed here)."""
    entries = []
    for path in sorted(files, key=lambda p: p.name):
        digest, size = hashlib.sha256(), 0
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        entries.append(FileEntry(_check_name(path.name), digest.hexdigest(), size))
    manifest = Manifest(version, min_version, created, tuple(entries))
    return Manifest.parse(manifest.to_bytes())  # the same checks a station makes


def sign_manifest(manifest: bytes, key: Ed25519PrivateKey) -> bytes:
    """The 64-byte signature over the domain string and the manifest's bytes."""
    return key.sign(DOMAIN + manifest)


def write_bundle(
    out: Path, manifest: bytes, signature: bytes | None, files: Mapping[str, Path]
) -> None:
    """Write a bundle tar: manifest, signature (when signed), then each payload file.

    Members carry no owner, a fixed mode and the manifest's time, so the same inputs make the
    same bytes.
    """
    created = Manifest.parse(manifest).created.timestamp()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, MANIFEST, manifest, created)
        if signature is not None:
            _add_bytes(tar, SIGNATURE, signature, created)
        for name in sorted(files):
            info = tarfile.TarInfo(PAYLOAD + name)
            info.size = files[name].stat().st_size
            info.mode, info.mtime = 0o644, int(created)
            with files[name].open("rb") as fh:
                tar.addfile(info, fh)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(mtime)
    tar.addfile(info, io.BytesIO(data))


def read_unsigned(bundle: Path) -> tuple[bytes, bytes | None]:
    """The manifest bytes and the signature (None if unsigned) of a bundle, unverified."""
    with _open_tar(bundle) as tar:
        manifest, signature = _head(tar)
    return manifest, signature


def sign_bundle(bundle: Path, out: Path, key: Ed25519PrivateKey) -> Manifest:
    """Sign an unsigned (or re-sign a signed) bundle into `out`; the payload is re-hashed first.

    Raises:
        BundleTamperedError: the payload no longer matches the manifest it is about to sign.
    """
    manifest_bytes, _ = read_unsigned(bundle)
    manifest = Manifest.parse(manifest_bytes)
    signature = sign_manifest(manifest_bytes, key)
    with _open_tar(bundle) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        when = manifest.created.timestamp()
        _add_bytes(dst, MANIFEST, manifest_bytes, when)
        _add_bytes(dst, SIGNATURE, signature, when)
        expected = {f.name: f for f in manifest.files}
        seen: set[str] = set()
        for member in src:
            if member.name in (MANIFEST, SIGNATURE):
                continue
            name = _payload_name(member, expected, seen)
            fh = src.extractfile(member)
            assert fh is not None  # a regular file (checked)
            data = fh.read()
            _check_bytes(expected[name], hashlib.sha256(data).hexdigest(), len(data))
            info = tarfile.TarInfo(member.name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(when)
            dst.addfile(info, io.BytesIO(data))
        _all_seen(expected, seen)
    return manifest


# ---- checking (the station's side) ----


def verify_bundle(
    bundle: Path,
    keys: Iterable[Ed25519PublicKey],
    extract_to: Path | None = None,
) -> Manifest:
    """Check a bundle completely; optionally write its payload files into `extract_to`.

    The signature is checked before the manifest is parsed; every payload byte is hashed as it
    is read (and written), so a file is only ever used after the whole bundle has checked out
    (the caller installs from `extract_to` only when this returns).

    Raises:
        TruncatedBundleError: the tar ends early.
        BundleFormatError: not a bundle (no manifest first, unsafe member, bad manifest).
        BundleSignatureError: no pinned key verifies the manifest.
        BundleTamperedError: a payload file differs from the manifest, is missing or is extra.
    """
    with _open_tar(bundle) as tar:
        manifest_bytes, signature = _head(tar)
        if signature is None:
            raise BundleSignatureError("the bundle is not signed")
        if not any(_verifies(k, signature, manifest_bytes) for k in keys):
            raise BundleSignatureError("the bundle's signature does not match any pinned key")
        manifest = Manifest.parse(manifest_bytes)
        expected = {f.name: f for f in manifest.files}
        seen: set[str] = set()
        for member in _members(tar):
            name = _payload_name(member, expected, seen)
            if member.size != expected[name].size:  # before reading a byte of it
                _check_bytes(expected[name], expected[name].sha256, member.size)
            fh = tar.extractfile(member)
            assert fh is not None
            digest, size = hashlib.sha256(), 0
            out = (extract_to / name).open("xb") if extract_to is not None else None
            try:
                while chunk := _read(fh, _CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    if out is not None:
                        out.write(chunk)
            finally:
                if out is not None:
                    out.close()
            _check_bytes(expected[name], digest.hexdigest(), size)
        _all_seen(expected, seen)
    return manifest


def _verifies(key: Ed25519PublicKey, signature: bytes, manifest: bytes) -> bool:
    try:
        key.verify(signature, DOMAIN + manifest)
    except InvalidSignature:
        return False
    return True


def _open_tar(path: Path) -> tarfile.TarFile:
    _check_complete(path)
    try:
        # "r:" (no compression): a bundle is a plain tar, so nothing decompresses unbounded.
        return tarfile.open(path, "r:")
    except tarfile.ReadError as exc:
        if path.stat().st_size == 0:
            raise TruncatedBundleError("the bundle is empty") from exc
        raise BundleFormatError(f"not an update bundle ({exc})") from exc
    except EOFError as exc:
        raise TruncatedBundleError("the bundle ends early") from exc


def _check_complete(path: Path) -> None:
    """A tar ends with two zero blocks; without them it was cut off.

    tarfile itself reads a tar cut at a header as one that simply ends there, which would
    misname a truncated download "unsigned" or "a file is missing".
    """
    size = path.stat().st_size
    if size == 0:
        raise TruncatedBundleError("the bundle is empty")
    with path.open("rb") as fh:
        fh.seek(max(0, size - 1024))
        tail = fh.read(1024)
    if size % 512 or len(tail) < 1024 or tail.count(0) != len(tail):
        with path.open("rb") as fh:
            head = fh.read(512)
        if len(head) == 512 and head[257:262] == b"ustar":
            raise TruncatedBundleError(f"the bundle ends early (after {size} bytes)")
        raise BundleFormatError("not an update bundle (not a tar)")


def _members(tar: tarfile.TarFile) -> Iterable[tarfile.TarInfo]:
    try:
        while (member := tar.next()) is not None:
            yield member
    except (tarfile.ReadError, EOFError) as exc:
        raise TruncatedBundleError(f"the bundle ends early ({exc})") from exc


def _read(fh: IO[bytes], n: int) -> bytes:
    try:
        data = fh.read(n)
    except (tarfile.ReadError, EOFError) as exc:
        raise TruncatedBundleError(f"the bundle ends early ({exc})") from exc
    return data


def _head(tar: tarfile.TarFile) -> tuple[bytes, bytes | None]:
    """The manifest (first member) and the signature (second, if present)."""
    members = iter(_members(tar))
    first = next(members, None)
    if first is None or first.name != MANIFEST or not first.isfile():
        raise BundleFormatError(f"a bundle starts with {MANIFEST}")
    if first.size > MAX_MANIFEST_BYTES:
        raise BundleFormatError("the manifest is too large")
    manifest = _member_bytes(tar, first)
    second = next(members, None)
    if second is None or second.name != SIGNATURE:
        return manifest, None
    if not second.isfile() or second.size != 64:
        raise BundleFormatError(f"{SIGNATURE} is not a 64-byte Ed25519 signature")
    return manifest, _member_bytes(tar, second)


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    fh = tar.extractfile(member)
    assert fh is not None
    data = _read(fh, member.size)
    if len(data) != member.size:
        raise TruncatedBundleError(f"{member.name} ends early")
    return data


def _payload_name(
    member: tarfile.TarInfo, expected: Mapping[str, FileEntry], seen: set[str]
) -> str:
    if member.name in (MANIFEST, SIGNATURE):
        raise BundleFormatError(f"{member.name} appears twice")
    path = PurePosixPath(member.name)
    name = member.name[len(PAYLOAD) :]
    if not member.name.startswith(PAYLOAD) or path.parent != PurePosixPath(PAYLOAD):
        raise BundleTamperedError(f"{member.name!r} is not a payload file")
    if not member.isfile():
        raise BundleTamperedError(f"{member.name!r} is not a regular file")
    if name not in expected:
        raise BundleTamperedError(f"{name!r} is not in the signed manifest")
    if name in seen:
        raise BundleTamperedError(f"{name!r} appears twice")
    seen.add(name)
    return name


def _check_bytes(entry: FileEntry, sha256: str, size: int) -> None:
    if size != entry.size:
        raise BundleTamperedError(
            f"{entry.name}: {size} bytes, the signed manifest says {entry.size}"
        )
    if sha256 != entry.sha256:
        raise BundleTamperedError(f"{entry.name}: sha256 differs from the signed manifest")


def _all_seen(expected: Mapping[str, FileEntry], seen: set[str]) -> None:
    missing = sorted(set(expected) - seen)
    if missing:
        raise BundleTamperedError(f"{missing[0]} is in the signed manifest but not in the bundle")
