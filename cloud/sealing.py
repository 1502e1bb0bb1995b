"""Sealing the pairing grant to a station's X25519 key, and key fingerprints.

The grant (station id, printer, and the site key for credential tags) travels to the station
encrypted to a key only the station holds. Ed25519 keys sign but cannot encrypt, so at pairing
time the station sends two public keys: its Ed25519 signing key (its identity) and a separate
X25519 key used only for this. (Converting Ed25519 to X25519 works, but reusing one key for two
algorithms is a cross-protocol risk we do not need to take.)

The construction is HPKE-shaped (RFC 9180 base mode, single shot) built from primitives, so it
runs on any `cryptography` >= 42; it is *not* wire-compatible with RFC 9180:

    enc        = a fresh ephemeral X25519 public key (32 bytes)
    shared     = X25519(ephemeral private, station public)
    key, nonce = HKDF-SHA256(ikm=shared, salt=enc || station public,
                             info="pullprint/pairing-grant/v1", length=32 + 12)
    sealed     = enc || AES-256-GCM(key, nonce, plaintext, aad="pullprint/pairing/v1|" + request id)

A key is used exactly once (the ephemeral key is fresh), so a derived nonce is safe. The AAD binds
the grant to its pairing request, so a grant cannot be replayed into another request.
The station side is `station.pairing.open_grant`; it must stay byte-compatible with `seal`.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
_NONCE_BYTES = 12
_INFO = b"pullprint/pairing-grant/v1"
_AAD_PREFIX = b"pullprint/pairing/v1|"


def fingerprint(public_key: bytes) -> str:
    """A key's fingerprint as people compare it: SHA-256 of the raw public key, first 128 bits,
    as eight groups of four hex digits (e.g. `3f2a-9c01-...`)."""
    digest = hashlib.sha256(public_key).hexdigest()[:32]
    return "-".join(digest[i : i + 4] for i in range(0, 32, 4))


def grant_aad(request_id: str) -> bytes:
    """The associated data binding a sealed grant to its pairing request."""
    return _AAD_PREFIX + request_id.encode("ascii")


def seal(recipient_public: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt `plaintext` to an X25519 public key (see the module docstring).

    Raises:
        ValueError: the public key is not 32 bytes.
    """
    recipient = X25519PublicKey.from_public_bytes(recipient_public)
    ephemeral = X25519PrivateKey.generate()
    enc = ephemeral.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key, nonce = _derive(ephemeral.exchange(recipient), enc, recipient_public)
    return enc + AESGCM(key).encrypt(nonce, plaintext, aad)


def _derive(shared: bytes, enc: bytes, recipient_public: bytes) -> tuple[bytes, bytes]:
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES + _NONCE_BYTES,
        salt=enc + recipient_public,
        info=_INFO,
    ).derive(shared)
    return okm[:KEY_BYTES], okm[KEY_BYTES:]
