"""The station's identity keys, and RFC 9421 signatures on every request it sends to the cloud.

Identity: on first start the station makes an Ed25519 key (its identity: it signs requests) and an
X25519 key (pairing grants are sealed to it; Ed25519 keys cannot encrypt, and reusing one key for
two algorithms is avoided on purpose). Both are kept in one file, mode 0600, as 64 raw bytes:
the Ed25519 seed, then the X25519 private key. A file that is readable by others is refused.

Signing (the cloud side is `cloud.http_signatures`; the two must build the same base byte for
byte): `Content-Digest: sha-256=:<b64>:` (RFC 9530) of the body as sent, then
`Signature-Input: sig1=("@method" "@path" "@query" "content-digest");created=..;nonce="..";`
`keyid="<station id>";alg="ed25519"` and `Signature: sig1=:<b64>:` (RFC 9421 §2.5, §4). Every
signature has a fresh nonce, so a request is signed again for every attempt (the cloud refuses a
reused nonce); `CloudClient` retries by sending again, never by replaying prepared bytes.
`SignatureAuth` is what the HTTP side (`station.cloud_http`) holds: it signs the method, target
and body it is given, with the current time and a fresh nonce, and returns the three headers.

No key, signature or body is ever logged.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from station.errors import ConfigError

COVERED_COMPONENTS = ("@method", "@path", "@query", "content-digest")
_KEY_FILE_BYTES = 64


@dataclass(frozen=True)
class StationIdentity:
    """The station's two key pairs (private halves never in a repr)."""

    signing_key: Ed25519PrivateKey = field(repr=False)
    exchange_key: X25519PrivateKey = field(repr=False)

    @property
    def signing_public(self) -> bytes:
        """The raw 32-byte Ed25519 public key (the station's identity)."""
        return self.signing_key.public_key().public_bytes_raw()

    @property
    def exchange_public(self) -> bytes:
        """The raw 32-byte X25519 public key (pairing grants are sealed to it)."""
        return self.exchange_key.public_key().public_bytes_raw()

    @property
    def fingerprint(self) -> str:
        """What the admin compares when approving: see `fingerprint`."""
        return fingerprint(self.signing_public)


def fingerprint(public_key: bytes) -> str:
    """SHA-256 of the raw public key, first 128 bits, as eight dash-separated groups of 4 hex."""
    digest = hashlib.sha256(public_key).hexdigest()[:32]
    return "-".join(digest[i : i + 4] for i in range(0, 32, 4))


def load_or_create_identity(path: Path) -> StationIdentity:
    """Load the station's keys, making them (mode 0600, never overwritten) if the file is absent.

    Raises:
        ConfigError: the file is unreadable, readable by others, or not 64 bytes.
    """
    try:
        return _load(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    exchange = X25519PrivateKey.generate().private_bytes_raw()
    try:
        # O_EXCL: two starts racing never end up with two identities.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load(path)
    except OSError as exc:
        raise ConfigError(f"cannot create the station key {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(seed + exchange)
        fh.flush()
        os.fsync(fh.fileno())
    return _load(path)


def load_identity(path: Path) -> StationIdentity:
    """Load existing station keys.

    Raises:
        ConfigError: the file is missing, unreadable, readable by others, or not 64 bytes.
    """
    try:
        return _load(path)
    except FileNotFoundError:
        raise ConfigError(f"the station key {path} does not exist: pair the station") from None


def _load(path: Path) -> StationIdentity:
    try:
        mode = path.stat().st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"the station key {path} is readable by others; chmod 600 it")
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot read the station key {path}: {exc.strerror}") from exc
    if len(data) != _KEY_FILE_BYTES:
        raise ConfigError(f"the station key {path} is not a PullPrint station key")
    return StationIdentity(
        Ed25519PrivateKey.from_private_bytes(data[:32]),
        X25519PrivateKey.from_private_bytes(data[32:]),
    )


def content_digest(body: bytes) -> str:
    """The RFC 9530 `Content-Digest` value of `body` (sha-256)."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def signature_headers(
    identity: StationIdentity,
    station_id: str,
    method: str,
    path_with_query: str,
    body: bytes,
    *,
    created: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The three headers that sign one request (RFC 9421 + RFC 9530).

    Args:
        identity: the station's keys.
        station_id: the `keyid` (the id the cloud gave at pairing).
        method: the HTTP method.
        path_with_query: the request target as sent, still percent-encoded.
        body: the body as sent (b"" for none).
        created: unix seconds (default: now).
        nonce: a unique nonce (default: 128 random bits).
    """
    path, _, query = path_with_query.partition("?")
    digest = content_digest(body)
    params = (
        "(" + " ".join(f'"{c}"' for c in COVERED_COMPONENTS) + ")"
        f";created={int(time.time()) if created is None else created}"
        f';nonce="{nonce or secrets.token_urlsafe(16)}"'
        f';keyid="{station_id}";alg="ed25519"'
    )
    values = (method.upper(), path, "?" + query, digest)
    lines = [f'"{name}": {value}' for name, value in zip(COVERED_COMPONENTS, values, strict=True)]
    lines.append(f'"@signature-params": {params}')
    signature = identity.signing_key.sign("\n".join(lines).encode("ascii"))
    return {
        "Content-Digest": digest,
        "Signature-Input": f"sig1={params}",
        "Signature": "sig1=:" + base64.b64encode(signature).decode("ascii") + ":",
    }


class SignatureAuth:
    """Signs each request the station sends (called once per attempt: a fresh nonce each time)."""

    def __init__(
        self,
        identity: StationIdentity,
        station_id: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._identity = identity
        self.station_id = station_id
        self._clock = clock

    def __repr__(self) -> str:
        return f"SignatureAuth(station_id={self.station_id!r})"

    def sign(self, method: str, target: str, body: bytes) -> dict[str, str]:
        """The `Content-Digest`, `Signature-Input` and `Signature` headers of one request.

        `target` is the path and query as sent (still percent-encoded); `body` the body as sent
        (b"" for none). A streamed body would have to be read twice: station requests that are
        signed always have their body in memory.
        """
        return signature_headers(
            self._identity,
            self.station_id,
            method,
            target,
            body,
            created=int(self._clock()),
        )
