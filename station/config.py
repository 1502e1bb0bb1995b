"""The station configuration: a typed, frozen `StationConfig` built from TOML plus the environment.

Invariants:

* there is no default secret: the station's identity key (`[identity] key_file`, default
  `<[spool] dir>/station.key`, made at pairing) and the site key (`[site] key_hex` or `key_file`,
  received at pairing) must be provided, or loading fails;
* a paired station has `[cloud] station_id` (the RFC 9421 `keyid` it signs with); bearer tokens
  are not accepted from stations any more, so there is no token key;
* every key is known: a misspelt key in the file or in a `PULLPRINT_STATION_*` variable is an
  error, not silently ignored (a typo in a secret override must not fall back to the file);
* secrets never appear in a repr, so a config can be logged or shown in a traceback.

Where the settings come from, later winning: the file; its drop-ins, `conf.d/*.toml` beside it in
name order (a fleet tool or an admin adds one file instead of editing the main one); the drop-ins
the caller passes (what pairing on first start wrote to the state directory); the environment;
and systemd credentials. Under systemd the keys need not be files the TOML names at all: with
`LoadCredential=` / `LoadCredentialEncrypted=` in the unit, `$CREDENTIALS_DIRECTORY` holds
`station.key`, `site.key` and (zero-knowledge sites) `site-private.key`, and those win over any
`key_file` / `key_hex` in the TOML (systemd.exec(5), "Credentials").

Environment overrides are named `PULLPRINT_STATION_<SECTION>_<KEY>` in upper case, for example
`PULLPRINT_STATION_CLOUD_STATION_ID` or `PULLPRINT_STATION_HARDWARE_DISPLAY_WIDTH`, and win over the
file. `PULLPRINT_STATION_CONFIG` is reserved for the CLI (the path of the file).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from hardware.display.registry import DISPLAY_KINDS
from hardware.readers.registry import READER_KINDS
from station.errors import ConfigError

ENV_PREFIX = "PULLPRINT_STATION_"
_RESERVED_ENV = {"PULLPRINT_STATION_CONFIG"}

READERS = READER_KINDS
DISPLAYS = DISPLAY_KINDS
PANEL_DRIVERS = ("none", "simulated", "gpio")
PRINTER_MODES = ("ipps-only", "ipps-then-ipp", "any")
DISPLAY_MODES = ("1", "RGB")

# The schema: section -> key -> type. Types drive the parsing of environment strings.
_SCHEMA: dict[str, dict[str, type]] = {
    "station": {"name": str},
    "cloud": {
        "url": str,
        "station_id": str,
        "timeout_s": float,
        "allow_insecure_http": bool,
        "long_poll": bool,
    },
    "identity": {"key_file": Path},
    "site": {"key_hex": str, "key_file": Path, "private_key_hex": str, "private_key_file": Path},
    "printer": {
        "uri": str,
        "timeout_s": float,
        "pin": str,
        "mode": str,
        "ipp_uri": str,
        "raw_uri": str,
        "raw_pjl": bool,
        "snmp_community": str,
    },
    "hardware": {
        "reader": str,
        "display": str,
        "display_width": int,
        "display_height": int,
        "display_mode": str,
        "frames_dir": Path,
    },
    "session": {
        "identify_s": float,
        "timeout_s": float,
        "done_s": float,
        "error_s": float,
        "pin_s": float,
    },
    # Heartbeat and device data (station.heartbeat, station.device_data); 0 switches one off.
    "devices": {
        "heartbeat_s": float,
        "poll_s": float,
        "status_s": float,
        "meters_s": float,
        "snmp_port": int,
    },
    # A real display's options (hardware.display.registry checks them per kind); wiring left
    # out comes from the panel's pin map.
    "display": {
        "width": int,
        "height": int,
        "rotate": int,
        "port": int,
        "address": int,
        "device": int,
        "dc": int,
        "reset": int,
        "backlight": int,
        "backlight_active_high": bool,
        "bus_speed_hz": int,
        "bgr": bool,
        "path": str,
        "sysfs_dir": str,
        "bits_per_pixel": int,
        "stride_bytes": int,
    },
    "panel": {
        "driver": str,
        "pin_map": str,
        "brightness": float,
        "keypad": str,
        "keyboard": bool,
    },
    # The reader driver's own options (hardware.readers.registry checks them per kind).
    "reader": {
        "device": str,
        "gap_ms": int,
        "port": str,
        "baudrate": int,
        "max_line_bytes": int,
        "handshake_timeout_s": float,
        "reopen_max_s": float,
        "technology": str,
        "encoding": str,
        "bit_length": int,
        "parity": str,
        "reversed_bytes": bool,
        "prefix": str,
        "suffix": str,
        "separator": str,
    },
    "spool": {"dir": Path},
}


@dataclass(frozen=True, slots=True)
class CloudConfig:
    """Where the cloud is and who the station is to it."""

    url: str
    timeout_s: float = 10.0
    station_id: str | None = None  # given at pairing; the keyid of every signed request
    key_file: Path | None = None  # the station's Ed25519 + X25519 keys (station.signing)
    # Long-poll GET /station/wait while idle, so jobs released from a phone print without a tap.
    # Off by default: an idle long-poll re-polls every 50 s, which costs far more than the
    # heartbeat's keep-alive budget (docs/station.md gives the measured bytes a month).
    long_poll: bool = False


@dataclass(frozen=True, slots=True)
class PrinterConfig:
    """The printer this station is paired with."""

    uri: str
    timeout_s: float = 30.0
    # How the printer may be reached, recorded at pairing (hardware.printers.fallback):
    pin: str | None = None  # base64 SHA-256 of the printer's public key (ipps://)
    mode: str | None = None  # ipps-only | ipps-then-ipp | any; None: only `uri`, no fallback
    ipp_uri: str | None = None
    raw_uri: str | None = None
    raw_pjl: bool = True
    snmp_community: str | None = field(default=None, repr=False)  # RAW page-count proof


@dataclass(frozen=True, slots=True)
class HardwareConfig:
    """Which reader and display drivers to use, by name."""

    reader: str = "simulated"
    display: str = "simulated"
    display_width: int = 320
    display_height: int = 240
    display_mode: Literal["1", "RGB"] = "RGB"
    frames_dir: Path | None = None  # where a simulated display writes PNG frames
    reader_options: tuple[tuple[str, object], ...] = ()  # the [reader] table, for the driver
    display_options: tuple[tuple[str, object], ...] = ()  # the [display] table (real displays)
    panel_driver: str = "none"  # buttons, status light and buzzer: none | simulated | gpio
    pin_map: str | None = None  # a bundled pin map name or a path to one
    brightness: float = 1.0  # of the status light, 0-1
    keypad: str | None = None  # a USB keypad for PINs and passcodes: device, or "simulated"
    # The keypad is a full keyboard: email + PIN sign-in is offered (a numeric keypad cannot
    # type an email, and a touchscreen-only station has no keyboard at all).
    keyboard: bool = False


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """How long each screen of the release workflow waits, in seconds."""

    identify_s: float = 10.0  # badge tap to job list before "Cloud not responding"
    timeout_s: float = 30.0  # job list inactivity before the session is ended
    done_s: float = 4.0
    error_s: float = 6.0
    pin_s: float = 20.0  # keypad inactivity before a half-typed PIN or passcode is dropped


@dataclass(frozen=True, slots=True)
class DevicesConfig:
    """How often the station beats and reports its printer (seconds; 0: off)."""

    # 45 min: a signed heartbeat costs ~0.7 kB (TLS, RFC 9421 headers); DESIGN.md allows the
    # keep-alive 1 MB a month (pullprint bench-heartbeat measures it).
    heartbeat_s: float = 2700.0
    poll_s: float = 60.0  # reading the printer over SNMP (LAN only)
    status_s: float = 900.0  # status and supplies, uploaded only when changed
    meters_s: float = 86400.0  # page counters, daily
    snmp_port: int = 161


@dataclass(frozen=True, slots=True)
class StationConfig:
    """Everything a station needs, validated."""

    name: str
    cloud: CloudConfig
    site_key: bytes = field(repr=False)  # 32 bytes: keys the credential tags
    printer: PrinterConfig
    hardware: HardwareConfig
    session: SessionConfig
    spool_dir: Path | None = None  # None: a private temporary directory made at start
    # Zero-knowledge sites only: the site's X25519 private key (32 bytes), which unwraps job keys.
    site_private_key: bytes | None = field(default=None, repr=False)
    devices: DevicesConfig = field(default_factory=DevicesConfig)


def load_config(
    path: str | Path | None,
    env: Mapping[str, str] | None = None,
    *,
    drop_ins: Sequence[Path] = (),
) -> StationConfig:
    """Read and validate the station config.

    Args:
        path: the TOML file (`/etc/pullprint/station.toml` on a station), or None for
            environment-only configuration.
        env: the environment to read `PULLPRINT_STATION_*` overrides from (default `os.environ`).
        drop_ins: more TOML files, read in order where they exist, whose keys override the
            file's (e.g. what pairing on first start wrote to the state directory).

    Raises:
        ConfigError: the file is unreadable or malformed, a key is unknown, a value is invalid,
            or a secret is missing.
    """
    raw: dict[str, dict[str, object]] = {}
    conf_d: list[Path] = []
    if path is not None:
        raw = _read_toml(Path(path))
        conf_d = sorted(Path(path).parent.joinpath(CONF_D).glob("*.toml"))
    env = os.environ if env is None else env
    _merge_drop_ins(raw, [*conf_d, *drop_ins])
    _apply_env(raw, env)
    _apply_credentials(raw, env)
    return _build(raw)


CONF_D = "conf.d"
# systemd credential name -> (section, key) it provides; `*_hex` forms it replaces.
CREDENTIALS = {
    "station.key": ("identity", "key_file"),
    "site.key": ("site", "key_file"),
    "site-private.key": ("site", "private_key_file"),
}


def _apply_credentials(raw: dict[str, dict[str, object]], env: Mapping[str, str]) -> None:
    directory = env.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return
    for name, (section, key) in CREDENTIALS.items():
        path = Path(directory) / name
        if not path.is_file():
            continue
        target = raw.setdefault(section, {})
        target.pop(key.replace("_file", "_hex"), None)
        target[key] = path


def _merge_drop_ins(raw: dict[str, dict[str, object]], drop_ins: Sequence[Path]) -> None:
    for drop_in in drop_ins:
        if not drop_in.exists():
            continue
        for section, values in _read_toml(drop_in).items():
            target = raw.setdefault(section, {})
            if "key_hex" in values or "key_file" in values:
                # A drop-in's secret replaces the file's, whichever way either gives it.
                target.pop("key_hex", None)
                target.pop("key_file", None)
            target.update(values)


def _read_toml(path: Path) -> dict[str, dict[str, object]]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
    out: dict[str, dict[str, object]] = {}
    for section, values in data.items():
        if section not in _SCHEMA:
            raise ConfigError(f"unknown section [{section}] (known: {', '.join(_SCHEMA)})")
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] must be a table")
        for key in values:
            if key not in _SCHEMA[section]:
                raise ConfigError(f"unknown key {key!r} in [{section}]")
        out[section] = dict(values)
    return out


def _apply_env(raw: dict[str, dict[str, object]], env: Mapping[str, str]) -> None:
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX) or name in _RESERVED_ENV:
            continue
        section, key = _env_target(name)
        raw.setdefault(section, {})[key] = _parse_env(name, text, _SCHEMA[section][key])


def _env_target(name: str) -> tuple[str, str]:
    rest = name[len(ENV_PREFIX) :].lower()
    for section, keys in _SCHEMA.items():
        if rest.startswith(section + "_") and rest[len(section) + 1 :] in keys:
            return section, rest[len(section) + 1 :]
    raise ConfigError(f"unknown environment override {name}")


def _parse_env(name: str, text: str, kind: type) -> object:
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ConfigError(f"{name} must be a number") from None
    return text


class _Section:
    """Typed access to one section of the merged raw config, naming the key in every error."""

    def __init__(self, name: str, values: Mapping[str, object]) -> None:
        self.name = name
        self.values = values

    def has(self, key: str) -> bool:
        return self.values.get(key) not in (None, "")

    def text(self, key: str, default: str | None = None) -> str:
        value = self.values.get(key, default)
        if value is None or value == "":
            raise ConfigError(f"[{self.name}] {key} is required")
        if not isinstance(value, str):
            raise ConfigError(f"[{self.name}] {key} must be a string")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"[{self.name}] {key} must be a number")
        if not value > 0:
            raise ConfigError(f"[{self.name}] {key} must be greater than 0")
        return float(value)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"[{self.name}] {key} must be an integer")
        if not low <= value <= high:
            raise ConfigError(f"[{self.name}] {key} must be between {low} and {high}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.values.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"[{self.name}] {key} must be true or false")
        return value

    def path(self, key: str) -> Path | None:
        value = self.values.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str | Path):
            raise ConfigError(f"[{self.name}] {key} must be a path")
        return Path(value).expanduser()

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(key, default)
        if value not in choices:
            raise ConfigError(
                f"[{self.name}] {key} = {value!r} is not one of: {', '.join(choices)}"
            )
        return value

    def secret(self, key: str, file_key: str) -> bytes:
        """A secret given inline or in a file; exactly one of the two."""
        inline, in_file = self.has(key), self.has(file_key)
        if inline and in_file:
            raise ConfigError(f"[{self.name}] set {key} or {file_key}, not both")
        if inline:
            return self.text(key).strip().encode()
        path = self.path(file_key)
        if path is None:
            raise ConfigError(
                f"[{self.name}] {key} (or {file_key}) is required: there is no default secret"
            )
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"[{self.name}] cannot read {file_key}: {exc.strerror}") from exc


def _build(raw: Mapping[str, Mapping[str, object]]) -> StationConfig:
    def section(name: str) -> _Section:
        return _Section(name, raw.get(name, {}))

    station, cloud, site = section("station"), section("cloud"), section("site")
    printer, session = section("printer"), section("session")
    spool_dir = section("spool").path("dir")
    return StationConfig(
        name=station.text("name"),
        cloud=_cloud(cloud, section("identity"), spool_dir),
        site_key=_site_key(site.secret("key_hex", "key_file")),
        site_private_key=_site_key(site.secret("private_key_hex", "private_key_file"))
        if site.has("private_key_hex") or site.has("private_key_file")
        else None,
        printer=PrinterConfig(
            uri=_printer_uri(printer.text("uri")),
            timeout_s=printer.number("timeout_s", 30.0),
            pin=printer.text("pin") if printer.has("pin") else None,
            mode=printer.choice("mode", "ipps-only", PRINTER_MODES)
            if printer.has("mode")
            else None,
            ipp_uri=_printer_uri(printer.text("ipp_uri")) if printer.has("ipp_uri") else None,
            raw_uri=_printer_uri(printer.text("raw_uri")) if printer.has("raw_uri") else None,
            raw_pjl=printer.values.get("raw_pjl", True) is not False,
            snmp_community=printer.text("snmp_community")
            if printer.has("snmp_community")
            else None,
        ),
        hardware=_hardware(raw),
        session=SessionConfig(
            identify_s=session.number("identify_s", 10.0),
            timeout_s=session.number("timeout_s", 30.0),
            done_s=session.number("done_s", 4.0),
            error_s=session.number("error_s", 6.0),
            pin_s=session.number("pin_s", 20.0),
        ),
        spool_dir=spool_dir,
        devices=_devices(section("devices")),
    )


def _devices(devices: _Section) -> DevicesConfig:
    values = {
        key: _seconds(devices, key, default)
        for key, default in (
            ("heartbeat_s", 2700.0),
            ("poll_s", 60.0),
            ("status_s", 900.0),
            ("meters_s", 86400.0),
        )
    }
    if any(v < 0 for v in values.values()) or 0 < values["heartbeat_s"] < 10:
        raise ConfigError("[devices] intervals are 0 (off) or positive; heartbeat_s at least 10")
    return DevicesConfig(**values, snmp_port=devices.integer("snmp_port", 161, 1, 65535))


def _seconds(section: _Section, key: str, default: float) -> float:
    value = section.values.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"[{section.name}] {key} must be a number of seconds")
    return float(value)


def _hardware(raw: Mapping[str, Mapping[str, object]]) -> HardwareConfig:
    def section(name: str) -> _Section:
        return _Section(name, raw.get(name, {}))

    hardware = section("hardware")
    return HardwareConfig(
        reader=hardware.choice("reader", "simulated", READERS),
        display=hardware.choice("display", "simulated", DISPLAYS),
        display_width=hardware.integer("display_width", 320, 16, 4096),
        display_height=hardware.integer("display_height", 240, 16, 4096),
        display_mode=_display_mode(hardware),
        frames_dir=hardware.path("frames_dir"),
        reader_options=tuple(sorted(raw.get("reader", {}).items())),
        display_options=tuple(sorted(raw.get("display", {}).items())),
        panel_driver=section("panel").choice("driver", "none", PANEL_DRIVERS),
        pin_map=_pin_map(section("panel")),
        brightness=_brightness(section("panel")),
        keypad=section("panel").text("keypad") if section("panel").has("keypad") else None,
        keyboard=_keyboard(section("panel")),
    )


def _keyboard(panel: _Section) -> bool:
    keyboard = panel.flag("keyboard", False)
    if keyboard and not panel.has("keypad"):
        raise ConfigError("[panel] keyboard = true needs the keyboard's device in keypad")
    return keyboard


def _cloud(cloud: _Section, identity: _Section, spool_dir: Path | None) -> CloudConfig:
    if not cloud.has("station_id"):
        raise ConfigError("[cloud] station_id is required: pair the station first")
    station_id = _station_id(cloud)
    key_file = identity.path("key_file")
    if key_file is None and spool_dir is not None:
        key_file = spool_dir / "station.key"
    return CloudConfig(
        url=_cloud_url(cloud),
        timeout_s=cloud.number("timeout_s", 10.0),
        station_id=station_id,
        key_file=key_file,
        long_poll=cloud.flag("long_poll", False),
    )


def _station_id(cloud: _Section) -> str:
    text = cloud.text("station_id").strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ConfigError("[cloud] station_id must be the UUID given at pairing") from None


def _pin_map(panel: _Section) -> str | None:
    if not panel.has("pin_map"):
        if panel.values.get("driver", "none") != "none":
            raise ConfigError("[panel] pin_map is required when a panel driver is set")
        return None
    return panel.text("pin_map")


def _brightness(panel: _Section) -> float:
    value = panel.number("brightness", 1.0)
    if not 0.0 <= value <= 1.0:
        raise ConfigError("[panel] brightness must be between 0 and 1")
    return value


def _cloud_url(cloud: _Section) -> str:
    url = cloud.text("url").rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("[cloud] url must be an http:// or https:// URL")
    # Tokens and data keys travel on this connection: plain HTTP only on this machine.
    insecure = parts.scheme == "http" and not _is_loopback(parts.hostname)
    if insecure and not cloud.flag("allow_insecure_http", False):
        raise ConfigError(
            "[cloud] url uses plain http to another host; use https "
            "(or set allow_insecure_http = true for a lab)"
        )
    return url


def _display_mode(hardware: _Section) -> Literal["1", "RGB"]:
    return "1" if hardware.choice("display_mode", "RGB", DISPLAY_MODES) == "1" else "RGB"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _site_key(value: bytes) -> bytes:
    if len(value) == 32 and not _looks_hex(value):
        return value  # a raw 32-byte key file
    text = value.decode("ascii", errors="replace").strip()
    if len(text) != 64 or not _looks_hex(text.encode()):
        raise ConfigError("[site] key_hex must be 64 hex characters (a 256-bit key)")
    return bytes.fromhex(text)


def _looks_hex(value: bytes) -> bool:
    return all(c in b"0123456789abcdefABCDEF \n\r\t" for c in value)


def _printer_uri(uri: str) -> str:
    if "://" not in uri:
        raise ConfigError("[printer] uri must be a URI such as ipps://printer.local/ipp/print")
    return uri


# --- identity: pairing on first start ---


@dataclass(frozen=True, slots=True)
class UnpairedConfig:
    """What a station that is not paired yet knows: where the cloud is, and its own parts.

    `identity_key_file` and `site_key_file` are where the config wants the keys (None: the
    caller's state directory).
    """

    name: str
    cloud_url: str
    hardware: HardwareConfig
    identity_key_file: Path | None
    site_key_file: Path | None
    spool_dir: Path | None


def load_unpaired(
    path: Path, env: Mapping[str, str] | None = None, *, drop_ins: Sequence[Path] = ()
) -> UnpairedConfig | None:
    """The config of a station still to be paired, or None when it names its station id.

    Raises:
        ConfigError: the file is unreadable or malformed, or lacks `[station] name` or
            `[cloud] url`.
    """
    raw = _read_toml(path)
    _merge_drop_ins(raw, drop_ins)
    _apply_env(raw, os.environ if env is None else env)
    cloud = _Section("cloud", raw.get("cloud", {}))
    if cloud.has("station_id"):
        return None
    return UnpairedConfig(
        name=_Section("station", raw.get("station", {})).text("name"),
        cloud_url=_cloud_url(cloud),
        hardware=_hardware(raw),
        identity_key_file=_Section("identity", raw.get("identity", {})).path("key_file"),
        site_key_file=_Section("site", raw.get("site", {})).path("key_file"),
        spool_dir=_Section("spool", raw.get("spool", {})).path("dir"),
    )
