"""Configuration: secrets are required, env overrides the file, values are validated."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cloud.config import CloudConfig, generate_secrets, load_config
from cloud.errors import ConfigError, SecretsExistError

KEY_A = "11" * 32
KEY_B = "22" * 32
TOKEN = "t" * 32


def secret_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        "PULLPRINT_DATA_DIR": str(data_dir),
        "PULLPRINT_MASTER_KEY": KEY_A,
        "PULLPRINT_PEPPER": KEY_B,
        "PULLPRINT_ADMIN_TOKEN": TOKEN,
    }
    env.update(extra)
    return env


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_defaults_from_environment_only(tmp_path: Path) -> None:
    config = load_config(None, secret_env(tmp_path))
    assert config.data_dir == tmp_path.resolve()
    assert config.database_url == f"sqlite:///{tmp_path.resolve() / 'pullprint.db'}"
    assert (config.site, config.job_expiry_h, config.session_ttl_s) == ("default", 24, 120)
    assert (config.release_lease_s, config.sweep_interval_s) == (300, 60)
    assert config.master_key == bytes.fromhex(KEY_A)
    assert config.pepper == bytes.fromhex(KEY_B)
    assert config.blobs_dir == tmp_path.resolve() / "blobs"


@pytest.mark.parametrize("missing", ["MASTER_KEY", "PEPPER", "ADMIN_TOKEN"])
def test_missing_secret_is_refused_with_instructions(tmp_path: Path, missing: str) -> None:
    env = secret_env(tmp_path)
    del env[f"PULLPRINT_{missing}"]
    with pytest.raises(ConfigError) as info:
        load_config(None, env)
    message = str(info.value)
    assert f"PULLPRINT_{missing}" in message
    assert "[secrets]" in message
    assert "secrets.toml" in message


def test_data_dir_is_required(tmp_path: Path) -> None:
    env = secret_env(tmp_path)
    del env["PULLPRINT_DATA_DIR"]
    with pytest.raises(ConfigError, match="PULLPRINT_DATA_DIR"):
        load_config(None, env)


def test_file_values_and_env_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path / "cloud.toml",
        'data_dir = "data"\nsite = "hq"\njob_expiry_h = 48\nsession_ttl_s = 30\n'
        f'[secrets]\nmaster_key = "{KEY_A}"\npepper = "{KEY_B}"\nadmin_token = "{TOKEN}"\n',
    )
    config = load_config(path, {})
    assert config.data_dir == (tmp_path / "data").resolve()  # relative to the file
    assert (config.site, config.job_expiry_h, config.session_ttl_s) == ("hq", 48, 30)

    env = {
        "PULLPRINT_SITE": "branch-2",
        "PULLPRINT_JOB_EXPIRY_H": "12",
        "PULLPRINT_DATABASE_URL": "sqlite:///:memory:",
        "PULLPRINT_PEPPER": "33" * 32,
    }
    config = load_config(path, env)
    assert (config.site, config.job_expiry_h) == ("branch-2", 12)
    assert config.database_url == "sqlite:///:memory:"
    assert config.pepper == bytes.fromhex("33" * 32)
    assert config.session_ttl_s == 30


def test_secrets_file_in_data_dir_is_picked_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    generate_secrets(data_dir / "secrets.toml")
    config = load_config(None, {"PULLPRINT_DATA_DIR": str(data_dir)})
    assert len(config.master_key) == 32
    assert len(config.pepper) == 32
    assert config.admin_token.startswith("ppa_")
    assert len(config.admin_token) >= 32


def test_explicit_secrets_file(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.toml"
    generate_secrets(path)
    config = load_config(
        None, {"PULLPRINT_DATA_DIR": str(tmp_path), "PULLPRINT_SECRETS_FILE": str(path)}
    )
    assert len(config.master_key) == 32


def test_generate_secrets_mode_and_freshness(tmp_path: Path) -> None:
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    generate_secrets(first)
    generate_secrets(second)
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert first.read_text() != second.read_text()


def test_generate_secrets_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    generate_secrets(path)
    before = path.read_text()
    with pytest.raises(SecretsExistError):
        generate_secrets(path)
    with pytest.raises(FileExistsError):  # the builtin it resembles
        generate_secrets(path)
    assert path.read_text() == before


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_secrets_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    generate_secrets(path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config(None, {"PULLPRINT_DATA_DIR": str(tmp_path)})


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("PULLPRINT_MASTER_KEY", "abcd", "64 hex"),
        ("PULLPRINT_PEPPER", "zz" * 32, "64 hex"),
        ("PULLPRINT_ADMIN_TOKEN", "short", "at least 32"),
        ("PULLPRINT_JOB_EXPIRY_H", "0", "positive"),
        ("PULLPRINT_SESSION_TTL_S", "soon", "positive"),
        ("PULLPRINT_SITE", "Not A Site", "site"),
    ],
)
def test_invalid_values_are_refused(tmp_path: Path, name: str, value: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        load_config(None, secret_env(tmp_path, **{name: value}))
    if "KEY" in name or "PEPPER" in name:
        assert value not in str(info.value)  # a near-miss secret is not echoed


def test_unknown_keys_and_misplaced_secrets_are_refused(tmp_path: Path) -> None:
    typo = write(tmp_path / "typo.toml", "job_expiry = 3\n")
    with pytest.raises(ConfigError, match="unknown key job_expiry"):
        load_config(typo, secret_env(tmp_path))
    misplaced = write(tmp_path / "mis.toml", f'master_key = "{KEY_A}"\n')
    with pytest.raises(ConfigError, match=r"\[secrets\] table"):
        load_config(misplaced, secret_env(tmp_path))


def test_malformed_toml_and_missing_file(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.toml", "data_dir = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, secret_env(tmp_path))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml", secret_env(tmp_path))


def test_secrets_hidden_from_repr(tmp_path: Path) -> None:
    config = load_config(None, secret_env(tmp_path))
    text = repr(config) + str(config)
    assert KEY_A not in text
    assert KEY_B not in text
    assert TOKEN not in text
    assert repr(bytes.fromhex(KEY_A)) not in text


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(None, secret_env(tmp_path))
    with pytest.raises(AttributeError):
        config.site = "other"  # type: ignore[misc]
    assert isinstance(config, CloudConfig)
