"""Credential tags: what the station sends to the cloud instead of a badge number.

A badge number has so few possible values that a plain hash of it is reversed in milliseconds, so
the tag is keyed with the site key, a 256-bit secret the cloud never stores (DESIGN.md, "Security
constructions"). The `card/v1|` prefix separates credential kinds (a PIN tag will use its own
prefix) and versions the construction.

Never log a tag: it identifies a person's badge at this site.
"""

from __future__ import annotations

import hashlib
import hmac

from hardware.readers.base import Credential

CARD_TAG_PREFIX = b"card/v1|"
PIN_TAG_PREFIX = b"pin/v1|"


def credential_tag(site_key: bytes, credential: Credential) -> str:
    """The keyed tag of a badge: HMAC-SHA256(site_key, "card/v1|" + canonical), 64 lowercase hex.

    Raises:
        ValueError: the site key is not 32 bytes.
    """
    if len(site_key) != 32:
        raise ValueError("site key must be 32 bytes")
    message = CARD_TAG_PREFIX + credential.canonical().encode()
    return hmac.new(site_key, message, hashlib.sha256).hexdigest()


def pin_tag(site_key: bytes, email: str, pin: str) -> str:
    """The keyed tag of a PIN: HMAC-SHA256(site_key, "pin/v1|" + lower-case email + "|" + PIN).

    The cloud keeps an Argon2id verifier of this tag's bytes (`cloud.pins`, which computes the
    same construction when an admin sets a PIN); the PIN itself never leaves the station.

    Raises:
        ValueError: the site key is not 32 bytes.
    """
    if len(site_key) != 32:
        raise ValueError("site key must be 32 bytes")
    message = PIN_TAG_PREFIX + email.strip().lower().encode() + b"|" + pin.encode()
    return hmac.new(site_key, message, hashlib.sha256).hexdigest()
