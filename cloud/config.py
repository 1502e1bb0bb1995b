"""The cloud's configuration: a frozen, validated object built from TOML plus environment.

Precedence, lowest first: built-in defaults (never for secrets), the TOML file, the secrets file
(`secrets_file`, else `<data_dir>/secrets.toml` when present), then `PULLPRINT_*` variables.

The TOML file holds top-level keys (`data_dir`, `database_url`, `site`, `job_expiry_h`,
`session_ttl_s`, `release_lease_s`, `sweep_interval_s`, `signature_skew_s`, `secrets_file`, and
for the IPP endpoint `printer_uuid`, `printer_name`, `printer_location`; for TLS `tls`,
`tls_cert_file`, `tls_key_file`, `tls_hostnames`, `tls_cert_days`, `tls_renew_days`, see
`cloud.tls`; for the blob store `blob_store`, `s3_bucket`, `s3_prefix`, `s3_endpoint_url`,
`s3_region`) and a `[secrets]` table
(`master_key`, `pepper`: 64 hex chars each; `admin_token`: at least 32 characters). A secrets file
has the same `[secrets]` table. Secrets have no defaults: a cloud that starts with a guessable key
would protect nothing, so a missing secret refuses to start with a message saying how to set it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import stat
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from cloud.errors import ConfigError, SecretsExistError

ENV_PREFIX = "PULLPRINT_"
SECRETS_FILE_NAME = "secrets.toml"
_KEY_BYTES = 32
_MIN_ADMIN_TOKEN_CHARS = 32
_SITE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_INT_FIELDS = (
    "job_expiry_h",
    "session_ttl_s",
    "release_lease_s",
    "sweep_interval_s",
    "signature_skew_s",
    "tls_cert_days",
    "tls_renew_days",
)
_STR_FIELDS = (
    "data_dir",
    "database_url",
    "site",
    "secrets_file",
    "printer_uuid",
    "printer_name",
    "printer_location",
    "tls",
    "tls_cert_file",
    "tls_key_file",
    "tls_hostnames",
    "blob_store",
    "s3_bucket",
    "s3_prefix",
    "s3_endpoint_url",
    "s3_region",
)
_PATH_FIELDS = ("data_dir", "secrets_file", "tls_cert_file", "tls_key_file")
_TLS_MODES = ("off", "self-signed", "files")
_BLOB_STORES = ("filesystem", "s3")
_S3_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MAX_PRINTER_TEXT = 127  # RFC 8011 §5.4.4 / §5.4.5: text(127)
_SECRET_FIELDS = ("master_key", "pepper", "admin_token", "metrics_token")
_HOW_TO_SET = (
    "set it in the config file's [secrets] table, in the environment variable {env}, or in a "
    "secrets file (<data_dir>/secrets.toml, or the path in secrets_file / PULLPRINT_SECRETS_FILE; "
    "`pullprint cloud init` writes one)"
)


@dataclass(frozen=True, slots=True)
class CloudConfig:
    """Everything the cloud needs to start. Secrets are excluded from the repr."""

    data_dir: Path
    database_url: str
    master_key: bytes = field(repr=False)
    pepper: bytes = field(repr=False)
    admin_token: str = field(repr=False)
    site: str = "default"
    job_expiry_h: int = 24
    session_ttl_s: int = 120
    release_lease_s: int = 300
    sweep_interval_s: int = 60
    # How far a station request's RFC 9421 `created` may be from the cloud's clock (either way).
    signature_skew_s: int = 60
    # The IPP queue's identity (PWG 5100.13 printer-uuid: stable per site, so clients keep
    # recognising the queue); empty means "derived from the site and the pepper".
    printer_uuid: str = ""
    printer_name: str = "PullPrint Secure Queue"
    printer_location: str = ""
    # Bearer token for Prometheus scrapes of /metrics; empty means /metrics is not served.
    metrics_token: str = field(default="", repr=False)
    # TLS (cloud/tls.py): "off", "self-signed" (a managed certificate in <data_dir>/tls) or
    # "files" (tls_cert_file + tls_key_file, e.g. from an ACME client). Setting the files
    # without `tls` means "files".
    tls: str = "off"
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Names a managed certificate covers (comma-separated in TOML and the environment); empty
    # means this host's name, localhost, 127.0.0.1 and ::1.
    tls_hostnames: tuple[str, ...] = ()
    tls_cert_days: int = 397  # validity of a managed certificate
    tls_renew_days: int = 30  # renew a managed certificate this long before it expires
    # Where job containers go: "filesystem" (under data_dir/blobs) or "s3" (the bucket below;
    # credentials from boto3's usual chain, never from this file). `database_url` may name
    # SQLite (the default) or PostgreSQL (`postgresql://...`, driven by psycopg 3).
    blob_store: str = "filesystem"
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""

    @property
    def blobs_dir(self) -> Path:
        """Where the filesystem blob store keeps encrypted job containers."""
        return self.data_dir / "blobs"


def load_config(path: Path | None, env: Mapping[str, str]) -> CloudConfig:
    """Build and validate the cloud configuration.

    Args:
        path: a TOML config file, or None to use only the environment.
        env: the environment (pass `os.environ`; tests pass a dict).

    Returns:
        The validated configuration.

    Raises:
        ConfigError: a file is unreadable or malformed, a value is invalid, a secrets file is
            readable by others, or a secret is missing.
    """
    values: dict[str, Any] = {}
    base_dir = Path.cwd()
    if path is not None:
        file_values = _read_toml(path)
        base_dir = path.resolve().parent
        _merge_table(values, file_values, source=str(path), base_dir=base_dir)

    env_values = _from_env(env)
    data_dir_raw = env_values.get("data_dir", values.get("data_dir"))
    if data_dir_raw is None:
        raise ConfigError(
            "data_dir is not set: set data_dir in the config file or PULLPRINT_DATA_DIR"
        )
    data_dir = Path(str(data_dir_raw)).expanduser().resolve()

    secrets_file_raw = env_values.get("secrets_file", values.get("secrets_file"))
    secrets_path = (
        Path(str(secrets_file_raw)).expanduser().resolve()
        if secrets_file_raw is not None
        else data_dir / SECRETS_FILE_NAME
    )
    if secrets_file_raw is not None or secrets_path.exists():
        secret_values = _read_toml(secrets_path, private=True)
        _merge_table(values, secret_values, source=str(secrets_path), base_dir=base_dir)

    values.update(env_values)
    values["data_dir"] = data_dir
    return _build(values)


def generate_secrets(path: Path) -> None:
    """Write a fresh random secrets file (mode 0600), refusing to overwrite an existing one.

    Overwriting would replace the master key and so orphan every parked job; the caller must
    remove an old file deliberately.

    Raises:
        SecretsExistError: `path` already exists.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "# PullPrint cloud secrets: keep private (mode 0600), back up the master key.\n"
        "[secrets]\n"
        f'master_key = "{secrets.token_hex(_KEY_BYTES)}"\n'
        f'pepper = "{secrets.token_hex(_KEY_BYTES)}"\n'
        f'admin_token = "ppa_{secrets.token_urlsafe(32)}"\n'
        f'metrics_token = "ppm_{secrets.token_urlsafe(32)}"\n'
    )
    try:
        # O_EXCL: never clobber; the mode is applied at creation so the file is never readable
        # by others, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise SecretsExistError(f"{path} already exists; remove it first to rotate") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _read_toml(path: Path, *, private: bool = False) -> dict[str, Any]:
    try:
        if private:
            _check_private(path)
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def _check_private(path: Path) -> None:
    """Refuse a secrets file that group or others can read (as ssh does for private keys)."""
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} is readable by other users; run: chmod 600 {path}")


def _merge_table(
    into: dict[str, Any], table: Mapping[str, Any], *, source: str, base_dir: Path
) -> None:
    for key, value in table.items():
        if key == "secrets":
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: [secrets] must be a table")
            for name, secret in value.items():
                if name not in _SECRET_FIELDS:
                    raise ConfigError(f"{source}: unknown key secrets.{name}")
                into[name] = secret
        elif key in _SECRET_FIELDS:
            raise ConfigError(f"{source}: {key} belongs in the [secrets] table")
        elif key in _STR_FIELDS or key in _INT_FIELDS:
            if key in _PATH_FIELDS and isinstance(value, str):
                # Relative paths in a file are relative to that file, not to the cwd.
                into[key] = str(base_dir / Path(value).expanduser())
            else:
                into[key] = value
        else:
            raise ConfigError(f"{source}: unknown key {key}")


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in (*_STR_FIELDS, *_INT_FIELDS, *_SECRET_FIELDS):
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            out[name] = raw
    return out


def _build(values: Mapping[str, Any]) -> CloudConfig:
    data_dir: Path = values["data_dir"]
    ints = {name: _positive_int(name, values[name]) for name in _INT_FIELDS if name in values}
    site = _str("site", values.get("site", "default"))
    if not _SITE_RE.match(site):
        raise ConfigError("site must be 1-63 lowercase letters, digits or '-'")
    database_url = _str("database_url", values.get("database_url", ""))
    if not database_url:
        database_url = f"sqlite:///{data_dir / 'pullprint.db'}"
    printer = {
        name: _str(name, values[name])
        for name in ("printer_uuid", "printer_name", "printer_location")
        if name in values
    }
    if printer.get("printer_uuid"):
        try:
            printer["printer_uuid"] = str(uuid.UUID(printer["printer_uuid"]))
        except ValueError:
            raise ConfigError("printer_uuid must be a UUID") from None
    for name in ("printer_name", "printer_location"):
        if len(printer.get(name, "")) > _MAX_PRINTER_TEXT:
            raise ConfigError(f"{name} must be at most {_MAX_PRINTER_TEXT} characters")
    if "printer_name" in printer and not printer["printer_name"].strip():
        raise ConfigError("printer_name must not be empty")
    blobs = _blob_settings(values)
    config = CloudConfig(
        data_dir=data_dir,
        database_url=database_url,
        master_key=_hex_key("master_key", values.get("master_key")),
        pepper=_hex_key("pepper", values.get("pepper")),
        admin_token=_admin_token(values.get("admin_token")),
        site=site,
        **cast(dict[str, Any], ints),
        **cast(dict[str, Any], blobs),
    )
    return dataclasses.replace(
        config,
        printer_uuid=printer.get("printer_uuid", config.printer_uuid),
        printer_name=printer.get("printer_name", config.printer_name),
        printer_location=printer.get("printer_location", config.printer_location),
        metrics_token=_metrics_token(values.get("metrics_token")),
        **_tls(values, config),
    )


def _tls(values: Mapping[str, Any], config: CloudConfig) -> dict[str, Any]:
    """The TLS settings, checked together (a half-configured TLS must not start as plain)."""
    cert, key = values.get("tls_cert_file"), values.get("tls_key_file")
    paths = {
        name: Path(_str(name, raw)).expanduser().resolve()
        for name, raw in (("tls_cert_file", cert), ("tls_key_file", key))
        if raw
    }
    mode = _str("tls", values.get("tls", "files" if paths else config.tls)).strip().lower()
    if mode not in _TLS_MODES:
        raise ConfigError(f"tls must be one of {', '.join(_TLS_MODES)}")
    if mode == "files" and len(paths) != 2:
        raise ConfigError("tls = files needs both tls_cert_file and tls_key_file")
    if mode != "files" and paths:
        raise ConfigError(
            f"tls_cert_file / tls_key_file are only used with tls = files, not {mode}"
        )
    raw_names = values.get("tls_hostnames", "")
    if isinstance(raw_names, list) and all(isinstance(name, str) for name in raw_names):
        raw_names = ",".join(raw_names)  # a TOML array is fine too
    names = tuple(
        name.strip() for name in _str("tls_hostnames", raw_names).split(",") if name.strip()
    )
    if config.tls_renew_days >= config.tls_cert_days:  # the ints are checked already
        raise ConfigError("tls_renew_days must be less than tls_cert_days")
    return {"tls": mode, "tls_hostnames": names, **paths}


def _blob_settings(values: Mapping[str, Any]) -> dict[str, str]:
    out = {
        name: _str(name, values[name])
        for name in ("blob_store", "s3_bucket", "s3_prefix", "s3_endpoint_url", "s3_region")
        if name in values
    }
    store = out.get("blob_store", "filesystem")
    if store not in _BLOB_STORES:
        raise ConfigError(f"blob_store must be one of {', '.join(_BLOB_STORES)}")
    if store == "s3" and not _S3_BUCKET_RE.match(out.get("s3_bucket", "")):
        raise ConfigError(
            "blob_store = 's3' needs s3_bucket (3-63 lowercase letters, digits, '.-')"
        )
    endpoint = out.get("s3_endpoint_url", "")
    if endpoint and not endpoint.startswith(("https://", "http://")):
        raise ConfigError("s3_endpoint_url must be an http(s) URL")
    return out


def _str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string")
    return value


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a positive integer")
    if isinstance(value, str):
        try:
            value = int(value, 10)
        except ValueError:
            raise ConfigError(f"{name} must be a positive integer") from None
    if not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer")
    return value


def _missing(name: str) -> ConfigError:
    env = ENV_PREFIX + name.upper()
    return ConfigError(f"secret {name} is not set: " + _HOW_TO_SET.format(env=env))


def _hex_key(name: str, value: object) -> bytes:
    if value is None:
        raise _missing(name)
    # The message never includes the value: it may be a real key with a typo.
    if not isinstance(value, str):
        raise ConfigError(f"secret {name} must be a string of {2 * _KEY_BYTES} hex characters")
    try:
        key = bytes.fromhex(value.strip())
    except ValueError:
        raise ConfigError(
            f"secret {name} must be {2 * _KEY_BYTES} hex characters ({_KEY_BYTES} bytes)"
        ) from None
    if len(key) != _KEY_BYTES:
        raise ConfigError(
            f"secret {name} must be {2 * _KEY_BYTES} hex characters ({_KEY_BYTES} bytes)"
        )
    return key


def _metrics_token(value: object) -> str:
    # Optional (metrics are off without it), but never weak when set: it guards counts that
    # describe every site's activity.
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) < _MIN_ADMIN_TOKEN_CHARS:
        raise ConfigError(
            f"secret metrics_token must be at least {_MIN_ADMIN_TOKEN_CHARS} characters"
        )
    return value


def _admin_token(value: object) -> str:
    if value is None:
        raise _missing("admin_token")
    if not isinstance(value, str) or len(value) < _MIN_ADMIN_TOKEN_CHARS:
        raise ConfigError(
            f"secret admin_token must be at least {_MIN_ADMIN_TOKEN_CHARS} characters"
        )
    return value
