"""`pullprint admin site init`, `pullprint pair` and `pullprint admin station list|revoke`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cloud.config import generate_secrets, load_config
from cloud.service import CloudService
from station.pairing import open_grant
from tests.cloud.conftest import new_identity
from tools.cli import main


def test_site_init_pair_list_and_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "cloud"
    data.mkdir()
    generate_secrets(data / "secrets.toml")
    key_file = tmp_path / "admin" / "site.key"
    assert (
        main(["admin", "site", "init", "--data-dir", str(data), "--site-key-file", str(key_file)])
        == 0
    )
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (
        main(["admin", "site", "init", "--data-dir", str(data), "--site-key-file", str(key_file)])
        == 1
    )
    site_key = bytes.fromhex(key_file.read_text().strip())

    service = CloudService.open(load_config(None, {"PULLPRINT_DATA_DIR": str(data)}))
    try:
        identity = new_identity()
        issued = service.pairing.request(identity.signing_public, identity.exchange_public, "x")
    finally:
        service.close()
    capsys.readouterr()
    common = ["--data-dir", str(data), "--site-key-file", str(key_file)]
    args = ["pair", issued.user_code, "--printer", "Floor 2", "--printer-uri", "ipp://p/ipp"]
    assert main([*args, *common, "--yes"]) == 0
    out = capsys.readouterr().out
    assert identity.fingerprint in out
    assert site_key.hex() not in out

    service = CloudService.open(load_config(None, {"PULLPRINT_DATA_DIR": str(data)}))
    try:
        grant = service.pairing.poll(issued.device_code)
    finally:
        service.close()
    assert open_grant(identity, str(issued.request_id), grant.sealed).site_key == site_key

    assert main(["admin", "station", "list", "--data-dir", str(data)]) == 0
    assert str(grant.station_id) in capsys.readouterr().out
    assert main(["admin", "station", "revoke", str(grant.station_id), "--data-dir", str(data)]) == 0
    assert main(["admin", "station", "list", "--data-dir", str(data)]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main([*args, *common, "--yes"]) == 1  # the code is used up


def test_pair_denies_when_the_admin_says_no(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "cloud"
    data.mkdir()
    generate_secrets(data / "secrets.toml")
    key_file = tmp_path / "site.key"
    assert (
        main(["admin", "site", "init", "--data-dir", str(data), "--site-key-file", str(key_file)])
        == 0
    )
    service = CloudService.open(load_config(None, {"PULLPRINT_DATA_DIR": str(data)}))
    try:
        identity = new_identity()
        issued = service.pairing.request(identity.signing_public, identity.exchange_public, "x")
        monkeypatch.setattr("builtins.input", lambda _prompt: "n")
        code = main(
            [
                "pair",
                issued.user_code,
                "--printer",
                "P",
                "--printer-uri",
                "ipp://p",
                "--data-dir",
                str(data),
                "--site-key-file",
                str(key_file),
            ]
        )
        assert code == 1
        from cloud.errors import AccessDeniedError

        with pytest.raises(AccessDeniedError):
            service.pairing.poll(issued.device_code)
    finally:
        service.close()
