"""Update bundles: signed by the admin's key, every payload byte checked, anything else refused."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.errors import (
    BundleFormatError,
    BundleSignatureError,
    BundleTamperedError,
    TruncatedBundleError,
)
from station.update_bundle import (
    DOMAIN,
    MANIFEST,
    SIGNATURE,
    Manifest,
    key_id,
    load_private_key,
    parse_public_key,
    private_key_pem,
    public_key_text,
    read_public_keys,
    read_unsigned,
    sign_bundle,
    verify_bundle,
)
from tests.support.updates import probe_bundle
from tools.cli import main


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def bundle(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    return probe_bundle(tmp_path / "b.bundle", key, "0.2.0", min_version="0.1.0")


def members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path) as tar:
        out = []
        for m in tar.getmembers():
            fh = tar.extractfile(m)
            out.append((m, fh.read() if fh else b""))
        return out


def rewrite(path: Path, out: Path, change) -> Path:
    """Copy a bundle member by member, letting `change(info, data)` alter or drop each."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members(path):
            changed = change(info, data)
            if changed is None:
                continue
            new_info, new_data = changed
            new_info.size = len(new_data)
            tar.addfile(new_info, io.BytesIO(new_data))
    return out


def test_a_signed_bundle_verifies_and_extracts_exactly_its_files(
    bundle: Path, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    dest = tmp_path / "x"
    dest.mkdir()
    manifest = verify_bundle(bundle, [key.public_key()], extract_to=dest)
    assert (manifest.version, manifest.min_version) == ("0.2.0", "0.1.0")
    names = sorted(p.name for p in dest.iterdir())
    assert names == sorted(f.name for f in manifest.files)
    assert names == ["pullprint-0.2.0-py3-none-any.whl", "requirements.txt"]
    assert (dest / "requirements.txt").read_text() == "pullprint==0.2.0\n"
    # The manifest and signature come first, and the signature covers the domain string.
    first = members(bundle)
    assert [m.name for m, _ in first[:2]] == [MANIFEST, SIGNATURE]
    key.public_key().verify(first[1][1], DOMAIN + first[0][1])


def test_a_flipped_payload_byte_is_refused(bundle: Path, key: Ed25519PrivateKey, tmp_path: Path):
    def flip(info: tarfile.TarInfo, data: bytes):
        if info.name.endswith(".whl"):
            data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
        return info, data

    tampered = rewrite(bundle, tmp_path / "t.bundle", flip)
    dest = tmp_path / "x"
    dest.mkdir()
    with pytest.raises(BundleTamperedError, match="sha256 differs"):
        verify_bundle(tampered, [key.public_key()], extract_to=dest)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        # A file the manifest does not list, appended after signing.
        ("extra", BundleTamperedError, "not in the signed manifest"),
        ("drop", BundleTamperedError, "not in the bundle"),
        ("grow", BundleTamperedError, "bytes, the signed manifest says"),
        ("symlink", BundleTamperedError, "not a regular file"),
        ("folder", BundleTamperedError, "not a payload file"),
        ("manifest", BundleSignatureError, "does not match any pinned key"),
        ("unsigned", BundleSignatureError, "not signed"),
    ],
)
def test_every_kind_of_tampering_is_refused(
    bundle: Path, key: Ed25519PrivateKey, tmp_path: Path, change: str, error: type, match: str
) -> None:
    def alter(info: tarfile.TarInfo, data: bytes):
        if change == "drop" and info.name == "payload/requirements.txt":
            return None
        if change == "grow" and info.name == "payload/requirements.txt":
            return info, data + b"evil==1\n"
        if change == "symlink" and info.name == "payload/requirements.txt":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
            return info, b""
        if change == "folder" and info.name == "payload/requirements.txt":
            info.name = "payload/../requirements.txt"
        if change == "manifest" and info.name == MANIFEST:
            doc = json.loads(data)
            doc["min_version"] = "0.0.1"
            return info, json.dumps(doc).encode()
        if change == "unsigned" and info.name == SIGNATURE:
            return None
        return info, data

    tampered = rewrite(bundle, tmp_path / "t.bundle", alter)
    if change == "extra":
        with tarfile.open(tampered, "a") as tar:
            info = tarfile.TarInfo("payload/sitecustomize.py")
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(error, match=match):
        verify_bundle(tampered, [key.public_key()])


def test_another_key_is_refused_and_a_second_pinned_key_is_accepted(
    bundle: Path, key: Ed25519PrivateKey
) -> None:
    stranger = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(BundleSignatureError):
        verify_bundle(bundle, [stranger])
    assert verify_bundle(bundle, [stranger, key.public_key()]).version == "0.2.0"


@pytest.mark.parametrize("keep", [0, 700, 1500, -600])
def test_a_truncated_bundle_is_refused_as_truncated(
    bundle: Path, key: Ed25519PrivateKey, tmp_path: Path, keep: int
) -> None:
    data = bundle.read_bytes()
    cut = tmp_path / "cut.bundle"
    cut.write_bytes(data[: keep if keep >= 0 else len(data) // 2 + keep])
    with pytest.raises((TruncatedBundleError, BundleFormatError)) as caught:
        verify_bundle(cut, [key.public_key()])
    # Cut anywhere past the first header, it is named a truncation, not a format error.
    if keep != 700:
        assert isinstance(caught.value, TruncatedBundleError), caught.value


def test_not_a_bundle(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"PK\x03\x04 not a tar at all" * 40)
    with pytest.raises(BundleFormatError):
        verify_bundle(junk, [key.public_key()])


def test_keys_round_trip_and_a_bad_key_file_is_refused(key: Ed25519PrivateKey) -> None:
    text = public_key_text(key.public_key())
    assert text.startswith("ed25519:")
    assert key_id(parse_public_key(text)) == key_id(key.public_key())
    assert len(read_public_keys(f"# comment\n\n{text}\n")) == 1
    with pytest.raises(BundleFormatError):
        read_public_keys("# nothing here\n")
    with pytest.raises(BundleFormatError):
        parse_public_key("ed25519:AAAA")
    pem = private_key_pem(key, b"pass phrase")
    assert b"ENCRYPTED" in pem
    assert key_id(load_private_key(pem, b"pass phrase").public_key()) == key_id(key.public_key())
    with pytest.raises(BundleFormatError):
        load_private_key(pem, b"wrong")


def test_a_manifest_below_its_own_minimum_is_malformed() -> None:
    from datetime import UTC, datetime

    bad = Manifest("0.1.0", "0.2.0", datetime(2026, 1, 1, tzinfo=UTC), ())
    with pytest.raises(BundleFormatError):
        Manifest.parse(bad.to_bytes())


def test_the_cli_builds_signs_and_verifies_a_bundle(tmp_path: Path, capsys) -> None:
    from tests.support.updates import probe_wheel

    wheels = tmp_path / "wheels"
    probe_wheel(wheels, "0.3.0")
    key = tmp_path / "keys" / "update.key"
    assert main(["update", "keygen", "--out", str(key)]) == 0
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    pub = key.with_name("update.key.pub")
    out = tmp_path / "p.bundle"
    argv = ["update", "build", "--wheelhouse", str(wheels), "--out", str(out)]
    assert main([*argv, "--min-version", "0.2.0"]) == 0
    assert "unsigned" in capsys.readouterr().out
    assert read_unsigned(out)[1] is None
    assert main(["update", "verify", str(out), "--pub", str(pub)]) == 1
    assert "REFUSED" in capsys.readouterr().err
    assert main(["update", "sign", str(out), "--key", str(key)]) == 0
    assert main(["update", "verify", str(out), "--pub", str(pub)]) == 0
    said = capsys.readouterr().out
    assert "OK: version 0.3.0, min_version 0.2.0" in said
    # Signing again with another key replaces the signature: the old key no longer verifies.
    other = tmp_path / "other.key"
    assert main(["update", "keygen", "--out", str(other)]) == 0
    assert main(["update", "sign", str(out), "--key", str(other)]) == 0
    assert main(["update", "verify", str(out), "--pub", str(pub)]) == 1
    assert main(["update", "keygen", "--out", str(key)]) == 1  # never replaced


def test_signing_refuses_a_payload_changed_since_it_was_built(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    unsigned = probe_bundle(tmp_path / "u.bundle", None, "0.2.0")

    def flip(info: tarfile.TarInfo, data: bytes):
        if info.name == "payload/requirements.txt":
            data = b"evil==1\n"[: len(data)].ljust(len(data), b"\n")
        return info, data

    changed = rewrite(unsigned, tmp_path / "c.bundle", flip)
    with pytest.raises(BundleTamperedError):
        sign_bundle(changed, tmp_path / "s.bundle", key)
