"""`pullprint policy zk-init|set|show`, and `pullprint pair` handing a zero-knowledge site's
private key to the new station (sealed in its grant)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud.config import generate_secrets, load_config
from cloud.service import CloudService
from station.pairing import open_grant
from tests.cloud.conftest import new_identity
from tools.cli import main


def test_zk_init_then_pair_gives_the_station_the_private_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "cloud"
    data.mkdir()
    generate_secrets(data / "secrets.toml")
    site_key_file = tmp_path / "admin" / "site.key"
    private_file = tmp_path / "admin" / "site.zk.key"
    base = ["--data-dir", str(data)]
    assert main(["admin", "site", "init", *base, "--site-key-file", str(site_key_file)]) == 0
    zk = ["policy", "zk-init", *base, "--site-private-key-file", str(private_file)]
    assert main(zk) == 0
    assert stat.S_IMODE(private_file.stat().st_mode) == 0o600
    assert main(zk) == 1  # never twice: held jobs may need the first key
    private = bytes.fromhex(private_file.read_text().strip())
    public = (
        X25519PrivateKey.from_private_bytes(private)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    assert main(["policy", "set", *base, "--keep-printed", "--quota-bytes", "1000"]) == 0
    capsys.readouterr()
    assert main(["policy", "show", *base]) == 0
    shown = capsys.readouterr().out
    assert "zero-knowledge:     yes" in shown and "1000 bytes per user" in shown
    assert private.hex() not in shown

    service = CloudService.open(load_config(None, {"PULLPRINT_DATA_DIR": str(data)}))
    try:
        assert service.policies.get(service.config.site).public_key == public
        identity = new_identity()
        issued = service.pairing.request(identity.signing_public, identity.exchange_public, "x")
    finally:
        service.close()
    pair = ["pair", issued.user_code, "--printer", "P", "--printer-uri", "ipp://p/ipp", *base]
    pair += ["--site-key-file", str(site_key_file), "--yes"]
    assert main([*pair, "--site-private-key-file", str(tmp_path / "missing.key")]) == 1
    assert main([*pair, "--site-private-key-file", str(private_file)]) == 0
    assert private.hex() not in capsys.readouterr().out
    service = CloudService.open(load_config(None, {"PULLPRINT_DATA_DIR": str(data)}))
    try:
        sealed = service.pairing.poll(issued.device_code)
    finally:
        service.close()
    grant = open_grant(identity, str(issued.request_id), sealed.sealed)
    assert grant.site_private_key == private
    # The cloud's files never hold the private key.
    for path in data.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert private not in content and private.hex().encode() not in content
