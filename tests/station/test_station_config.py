"""The station config: TOML plus PULLPRINT_STATION_* overrides, validated, secrets hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.config import load_config
from station.errors import ConfigError

STATION_ID = "6f1c2a54-9d3e-4c1b-8a7f-2b5d0e9c4a11"
KEY_HEX = "ab" * 32

FULL = f"""
[station]
name = "Floor 2 East"

[cloud]
url = "https://print.example.org/"
station_id = "{STATION_ID}"
timeout_s = 5

[site]
key_hex = "{KEY_HEX}"

[printer]
uri = "ipps://printer.local/ipp/print"
timeout_s = 60

[hardware]
reader = "simulated"
display = "simulated"
display_width = 128
display_height = 64
display_mode = "1"
frames_dir = "/tmp/frames"

[session]
timeout_s = 20
done_s = 3
error_s = 5

[spool]
dir = "/var/spool/pullprint"
"""

MINIMAL = f"""
[station]
name = "s"
[cloud]
url = "http://127.0.0.1:8080"
station_id = "{STATION_ID}"
[site]
key_hex = "{KEY_HEX}"
[printer]
uri = "ipp://127.0.0.1:8631/ipp/print"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text)
    return path


def test_full_config(tmp_path):
    config = load_config(write(tmp_path, FULL), {})
    assert config.name == "Floor 2 East"
    assert config.cloud.url == "https://print.example.org"
    assert config.cloud.station_id == STATION_ID
    assert config.cloud.timeout_s == 5.0
    assert config.site_key == bytes.fromhex(KEY_HEX)
    assert config.printer.uri == "ipps://printer.local/ipp/print"
    assert config.printer.timeout_s == 60.0
    assert config.hardware.display_mode == "1"
    assert (config.hardware.display_width, config.hardware.display_height) == (128, 64)
    assert config.hardware.frames_dir == Path("/tmp/frames")
    assert (config.session.timeout_s, config.session.done_s, config.session.error_s) == (20, 3, 5)
    assert config.spool_dir == Path("/var/spool/pullprint")


def test_defaults(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), {})
    assert config.cloud.timeout_s == 10.0
    assert config.hardware.reader == "simulated"
    assert config.hardware.display_mode == "RGB"
    assert config.session.timeout_s == 30.0
    assert config.session.done_s == 4.0
    assert config.session.error_s == 6.0
    assert config.spool_dir is None


def test_secrets_are_hidden_in_repr(tmp_path):
    config = load_config(write(tmp_path, FULL), {})
    text = repr(config)
    assert "s3cr3t" not in text
    assert KEY_HEX not in text
    assert "abab" not in text
    assert "Floor 2 East" in text


def test_config_is_frozen(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), {})
    with pytest.raises(AttributeError):
        config.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("drop", "message"), [("station_id", "station_id"), ("key_hex", "key_hex")]
)
def test_missing_secret_is_refused(tmp_path, drop, message):
    text = "\n".join(line for line in MINIMAL.splitlines() if not line.startswith(drop))
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), {})


def test_env_overrides_the_file(tmp_path):
    env = {
        "PULLPRINT_STATION_CLOUD_STATION_ID": "0b7e1c2a-0000-4000-8000-000000000001",
        "PULLPRINT_STATION_HARDWARE_DISPLAY_WIDTH": "240",
        "PULLPRINT_STATION_SESSION_TIMEOUT_S": "12.5",
        "PULLPRINT_STATION_CONFIG": "/ignored/path.toml",
        "UNRELATED": "x",
    }
    config = load_config(write(tmp_path, MINIMAL), env)
    assert config.cloud.station_id == "0b7e1c2a-0000-4000-8000-000000000001"
    assert config.hardware.display_width == 240
    assert config.session.timeout_s == 12.5


def test_env_only_config():
    env = {
        "PULLPRINT_STATION_STATION_NAME": "env",
        "PULLPRINT_STATION_CLOUD_URL": "https://cloud.example",
        "PULLPRINT_STATION_CLOUD_STATION_ID": STATION_ID,
        "PULLPRINT_STATION_SITE_KEY_HEX": KEY_HEX,
        "PULLPRINT_STATION_PRINTER_URI": "socket://printer:9100",
    }
    config = load_config(None, env)
    assert config.name == "env"
    assert config.printer.uri == "socket://printer:9100"


def test_secrets_from_files(tmp_path):
    (tmp_path / "key").write_bytes(bytes(range(32)))  # a raw key file
    text = MINIMAL.replace(f'key_hex = "{KEY_HEX}"', f'key_file = "{tmp_path / "key"}"')
    config = load_config(write(tmp_path, text), {})
    assert config.site_key == bytes(range(32))


def test_both_inline_and_file_secret_is_refused(tmp_path):
    text = MINIMAL.replace(f'key_hex = "{KEY_HEX}"', f'key_hex = "{KEY_HEX}"\nkey_file = "/x"')
    with pytest.raises(ConfigError, match="not both"):
        load_config(write(tmp_path, text), {})


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (f'key_hex = "{KEY_HEX}"', 'key_hex = "abcd"', "64 hex"),
        (f'station_id = "{STATION_ID}"', 'station_id = "not-a-uuid"', "UUID"),
        (f'station_id = "{STATION_ID}"', 'token = "pps_old.secret"', "unknown key"),
        ('url = "http://127.0.0.1:8080"', 'url = "http://cloud.example"', "https"),
        ('url = "http://127.0.0.1:8080"', 'url = "ftp://cloud"', "http"),
        ('uri = "ipp://127.0.0.1:8631/ipp/print"', 'uri = "printer"', "URI"),
        ("[station]", "[station]\ncolour = 1", "unknown key"),
        ("[station]", "[stations]\n[station]", "unknown section"),
        ("[station]", '[hardware]\nreader = "evdev"\n[station]', "simulated"),
        ("[station]", '[hardware]\ndisplay_mode = "L"\n[station]', "RGB"),
        ("[station]", "[hardware]\ndisplay_width = 2\n[station]", "between"),
        ("[station]", "[session]\ntimeout_s = 0\n[station]", "greater than 0"),
        ("[station]", '[session]\ntimeout_s = "soon"\n[station]', "number"),
    ],
)
def test_invalid_values_are_refused(tmp_path, old, new, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, MINIMAL.replace(old, new)), {})


def test_insecure_http_can_be_allowed_explicitly(tmp_path):
    text = MINIMAL.replace(
        'url = "http://127.0.0.1:8080"', 'url = "http://lab.example"\nallow_insecure_http = true'
    )
    assert load_config(write(tmp_path, text), {}).cloud.url == "http://lab.example"


def test_unknown_env_override_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="PULLPRINT_STATION_CLOUD_TOKN"):
        load_config(write(tmp_path, MINIMAL), {"PULLPRINT_STATION_CLOUD_TOKN": "pps_x.y"})


def test_bad_env_number_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="number"):
        load_config(write(tmp_path, MINIMAL), {"PULLPRINT_STATION_CLOUD_TIMEOUT_S": "ten"})


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml", {})
    with pytest.raises(ConfigError, match="TOML"):
        load_config(write(tmp_path, "[station\n"), {})


def test_keypad_and_pin_timeout(tmp_path):
    config = load_config(
        write(tmp_path, MINIMAL + '\n[panel]\nkeypad = "simulated"\n[session]\npin_s = 12\n'),
        {},
    )
    assert config.hardware.keypad == "simulated"
    assert config.session.pin_s == 12.0
    assert load_config(write(tmp_path, MINIMAL), {}).hardware.keypad is None


def test_a_keypad_from_config_types_into_the_station(tmp_path):
    """`[panel] keypad` builds the keypad part; its keys reach the workflow as a passcode."""
    import time

    from hardware.panel.simulated import SimulatedKeypad
    from station.app import build_station
    from station.screens import PinEntryScreen
    from station.workflow import State

    config = load_config(write(tmp_path, MINIMAL + '\n[panel]\nkeypad = "simulated"\n'), {})

    class NoCloud:
        def close(self) -> None: ...

    station = build_station(config, client=NoCloud())  # type: ignore[arg-type]
    assert isinstance(station.keypad, SimulatedKeypad)
    with station:
        station.keypad.type_digits("12")
        assert station.wait_for_state(State.PIN_ENTRY, 5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            shown = station.screens[-1]
            if isinstance(shown, PinEntryScreen) and shown.entered == 2:
                break
            time.sleep(0.01)
        assert isinstance(station.screens[-1], PinEntryScreen)
        assert station.screens[-1].entered == 2


def test_conf_d_drop_ins_override_the_file_in_name_order(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text(MINIMAL)
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    (conf_d / "20-name.toml").write_text('[station]\nname = "second"\n')
    (conf_d / "10-name.toml").write_text('[station]\nname = "first"\n[session]\ntimeout_s = 9\n')
    (conf_d / "notes.txt").write_text("[station]\nname = 'ignored: not .toml'\n")
    config = load_config(path, {})
    assert config.name == "second"  # 20- is read after 10-
    assert config.session.timeout_s == 9
    # The environment still wins over every file.
    env = {"PULLPRINT_STATION_STATION_NAME": "from env"}
    assert load_config(path, env).name == "from env"


def test_a_bad_drop_in_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text(MINIMAL)
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "50-typo.toml").write_text("[station]\nnmae = 'x'\n")
    with pytest.raises(ConfigError, match="unknown key 'nmae'"):
        load_config(path, {})


def test_systemd_credentials_win_over_the_toml_secrets(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text(MINIMAL)  # has [site] key_hex = ab...
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "site.key").write_text("cd" * 32 + "\n")
    (credentials / "station.key").write_bytes(b"not read by the config loader")
    config = load_config(path, {"CREDENTIALS_DIRECTORY": str(credentials)})
    assert config.site_key == bytes.fromhex("cd" * 32)
    assert config.cloud.key_file == credentials / "station.key"
    assert ("cd" * 32) not in repr(config)
    # Without the credential the TOML's key is used; a credentials dir without it changes nothing.
    assert load_config(path, {}).site_key == bytes.fromhex(KEY_HEX)
    (credentials / "site.key").unlink()
    assert load_config(path, {"CREDENTIALS_DIRECTORY": str(credentials)}).site_key == bytes.fromhex(
        KEY_HEX
    )


def test_a_broken_credential_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text(MINIMAL)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "site.key").write_text("too short")
    with pytest.raises(ConfigError, match="64 hex characters"):
        load_config(path, {"CREDENTIALS_DIRECTORY": str(credentials)})
