"""Verifying station requests: RFC 9421 HTTP Message Signatures over an RFC 9530 Content-Digest.

A paired station signs every request with its Ed25519 key (station side: `station.signing`, which
must build the same signature base byte for byte). The profile, fixed on both sides:

* `Content-Digest: sha-256=:<base64>:` (RFC 9530 §2) of the request body as sent (empty for GET
  and DELETE);
* `Signature-Input: sig1=("@method" "@path" "@query" "content-digest");created=<unix s>;`
  `nonce="<random>";keyid="<station id>";alg="ed25519"` (RFC 9421 §4.1), and
  `Signature: sig1=:<base64 of the 64-byte Ed25519 signature>:` (RFC 9421 §4.2);
* the signature base (RFC 9421 §2.5): one line per covered component, `"<name>": <value>`, then
  `"@signature-params": <the inner list as sent>`, joined with LF, no trailing LF. `@path` is the
  raw (still percent-encoded) path, `@query` is `?` plus the raw query, or `?` alone (§2.2.7).

This module is pure: it parses and checks, and leaves the station lookup, the clock window and the
nonce store to `cloud.stations`. A malformed header is an `InvalidSignatureError` that never
echoes the header (it may carry a signature worth replaying).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cloud.errors import ContentDigestMismatchError, InvalidSignatureError

#: The components every station signature must cover, in this order.
COVERED_COMPONENTS = ("@method", "@path", "@query", "content-digest")
ALGORITHM = "ed25519"
_LABEL_RE = re.compile(r"^([a-z*][a-z0-9_\-.*]{0,63})=(.*)$", re.DOTALL)
_INNER_LIST_RE = re.compile(r'^\(((?:"[^"\\]*"\s*)*)\)((?:;[a-z][a-z0-9_\-.*]*=[^;]+)*)$')
_ITEM_RE = re.compile(r'"([^"\\]*)"')
_PARAM_RE = re.compile(r';([a-z][a-z0-9_\-.*]*)=("[^"\\]*"|-?[0-9]{1,15})')
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_BYTE_SEQUENCE_RE = re.compile(r"^:([A-Za-z0-9+/=]*):$")


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What a station's signature claims, parsed but not yet trusted."""

    station_id: uuid.UUID
    created: int  # unix seconds
    nonce: str
    signature_params: str  # the inner list exactly as sent: it is part of the signed base
    signature: bytes


def content_digest(body: bytes) -> str:
    """The RFC 9530 `Content-Digest` field value of `body` (sha-256)."""
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
    return f"sha-256=:{digest}:"


def parse_signature(headers: Mapping[str, str]) -> SignedRequest:
    """Parse `Signature-Input` and `Signature` (one signature, our profile only).

    Raises:
        InvalidSignatureError: a header is missing or does not follow the profile.
    """
    raw_input = headers.get("signature-input")
    raw_signature = headers.get("signature")
    if not raw_input or not raw_signature:
        raise InvalidSignatureError("station requests must carry Signature-Input and Signature")
    label, params = _labelled(raw_input.strip())
    signature_label, signature_value = _labelled(raw_signature.strip())
    if signature_label != label:
        raise InvalidSignatureError("Signature and Signature-Input labels differ")
    inner = _INNER_LIST_RE.match(params)
    if inner is None:
        raise InvalidSignatureError("Signature-Input is not an inner list with parameters")
    components = tuple(_ITEM_RE.findall(inner.group(1)))
    if components != COVERED_COMPONENTS:
        raise InvalidSignatureError(
            "the signature must cover " + " ".join(f'"{c}"' for c in COVERED_COMPONENTS)
        )
    values: dict[str, str] = {}
    for name, value in _PARAM_RE.findall(inner.group(2)):
        if name in values:
            raise InvalidSignatureError(f"signature parameter {name} is repeated")
        values[name] = value
    if "".join(f";{k}={v}" for k, v in values.items()) != inner.group(2):
        raise InvalidSignatureError("signature parameters are malformed")
    try:
        created = int(values["created"])
        nonce = _unquote(values["nonce"])
        station_id = uuid.UUID(_unquote(values["keyid"]))
        alg = _unquote(values["alg"])
    except (KeyError, ValueError):
        raise InvalidSignatureError("created, nonce, keyid and alg are required") from None
    if alg != ALGORITHM:
        raise InvalidSignatureError("alg must be ed25519")
    if not _NONCE_RE.match(nonce):
        raise InvalidSignatureError("nonce must be 16-64 URL-safe characters")
    return SignedRequest(station_id, created, nonce, params, _byte_sequence(signature_value))


def signature_base(
    request: SignedRequest, method: str, raw_path: str, raw_query: str, digest_field: str
) -> bytes:
    """The RFC 9421 §2.5 signature base of a request, as the station signed it."""
    values = (method.upper(), raw_path, "?" + raw_query, digest_field.strip())
    lines = [f'"{name}": {value}' for name, value in zip(COVERED_COMPONENTS, values, strict=True)]
    lines.append(f'"@signature-params": {request.signature_params}')
    try:
        return "\n".join(lines).encode("ascii")
    except UnicodeEncodeError:
        raise InvalidSignatureError("the request target is not ASCII") from None


def verify_signature(public_key: bytes, request: SignedRequest, base: bytes) -> None:
    """Check the Ed25519 signature over the base.

    Raises:
        InvalidSignatureError: the signature does not verify with this key.
    """
    try:
        _public_key(public_key).verify(request.signature, base)
    except (InvalidSignature, ValueError):
        raise InvalidSignatureError("the signature does not verify") from None


@functools.lru_cache(maxsize=4096)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    # Keyed by the key's bytes, so a re-paired station (new key) gets a new entry, and a key is
    # only ever used with the bytes read from the station's row on this request.
    return Ed25519PublicKey.from_public_bytes(raw)


def check_content_digest(digest_field: str | None, body: bytes) -> None:
    """Check the signed `Content-Digest` against the body actually received (RFC 9530 §2).

    Raises:
        InvalidSignatureError: the header is missing or has no sha-256 entry.
        ContentDigestMismatchError: the body is not the one the station signed.
    """
    if not digest_field:
        raise InvalidSignatureError("station requests must carry Content-Digest")
    claimed: bytes | None = None
    for member in digest_field.split(","):
        name, sep, value = member.strip().partition("=")
        if sep and name.strip() == "sha-256":
            claimed = _byte_sequence(value.strip())
    if claimed is None:
        raise InvalidSignatureError("Content-Digest must have a sha-256 entry")
    if not hmac.compare_digest(claimed, hashlib.sha256(body).digest()):
        raise ContentDigestMismatchError("the body does not match its Content-Digest")


def _labelled(field: str) -> tuple[str, str]:
    match = _LABEL_RE.match(field)
    if match is None or "," in field:
        # One signature per request: a dictionary with several members is not our profile.
        raise InvalidSignatureError("expected exactly one labelled signature")
    return match.group(1), match.group(2)


def _unquote(value: str) -> str:
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        raise ValueError("not a string")
    return value[1:-1]


def _byte_sequence(value: str) -> bytes:
    match = _BYTE_SEQUENCE_RE.match(value)
    if match is None:
        raise InvalidSignatureError("expected a byte sequence (:base64:)")
    try:
        return base64.b64decode(match.group(1), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSignatureError("invalid base64 in a byte sequence") from None
