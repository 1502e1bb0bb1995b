"""Credential tags: a fixed test vector (checked with `openssl dgst -sha256 -mac HMAC`)."""

from __future__ import annotations

import pytest

from hardware.readers.base import Credential
from station.credentials import credential_tag

SITE_KEY = bytes(range(32))
BADGE = Credential("h10301", 26, bytes.fromhex("0204d2c5"))


def test_vector():
    # printf 'card/v1|h10301/26/0204d2c5' | openssl dgst -sha256 -mac HMAC -macopt hexkey:0001..1f
    assert credential_tag(SITE_KEY, BADGE) == (
        "4576ecc6d5da785c5c07563c20562c4445f41fef7c60059dd5153cb1c58d98e1"
    )


def test_tag_depends_on_the_site_key_and_the_badge():
    other_key = bytes(32)
    other_badge = Credential("h10301", 26, bytes.fromhex("0204d2c6"))
    tag = credential_tag(SITE_KEY, BADGE)
    assert credential_tag(other_key, BADGE) != tag
    assert credential_tag(SITE_KEY, other_badge) != tag
    assert len(tag) == 64
    assert tag == tag.lower()


def test_short_site_key_is_refused():
    with pytest.raises(ValueError):
        credential_tag(b"short", BADGE)


def test_the_pin_tag_is_the_one_the_cloud_verifies():
    """The station keys a PIN exactly as `cloud.pins` does when an admin sets it."""
    from cloud.pins import pin_tag as cloud_pin_tag
    from station.credentials import pin_tag

    for email, pin in (("Ada@Example.org ", "402817"), ("b@c.d", "0000")):
        assert pin_tag(SITE_KEY, email, pin) == cloud_pin_tag(SITE_KEY, email, pin)
    assert pin_tag(SITE_KEY, "ada@example.org", "402817") != pin_tag(
        SITE_KEY, "ada@example.org", "402818"
    )
    with pytest.raises(ValueError):
        pin_tag(b"short", "a@b.c", "1234")
