"""`[panel] keyboard` and `[cloud] long_poll`: parsed, refused when inconsistent, and wired into
the built station (email entry only with a keyboard; the long-poll only when asked for)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardware.display.simulated import SimulatedDisplay
from hardware.readers.simulated import SimulatedCardReader
from station.app import build_station
from station.config import load_config
from station.errors import ConfigError
from station.long_poll import LongPoll
from station.signing import load_or_create_identity
from tests.station.test_station_app import CONFIG, FakeCloud, FakePrinter


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(CONFIG + extra)
    return path


@pytest.mark.parametrize(
    ("panel", "email_entry"),
    [('keypad = "simulated"\nkeyboard = true\n', True), ('keypad = "simulated"\n', False)],
)
def test_email_entry_is_offered_only_with_a_keyboard(tmp_path, panel, email_entry):
    config = load_config(write(tmp_path, "[panel]\n" + panel), {})
    assert config.hardware.keyboard is email_entry
    station = build_station(
        config,
        reader=SimulatedCardReader(),
        display=SimulatedDisplay(128, 64, "1"),
        transport=FakePrinter(),
        client=FakeCloud({}),
    )
    assert station.workflow.email_entry is email_entry
    assert station.keypad is not None and station.keypad.keyboard is email_entry


def test_a_keyboard_needs_its_device(tmp_path):
    with pytest.raises(ConfigError, match="keyboard"):
        load_config(write(tmp_path, "[panel]\nkeyboard = true\n"), {})


@pytest.mark.parametrize("long_poll", [False, True])
def test_the_long_poll_is_off_unless_asked_for(tmp_path, long_poll):
    key = tmp_path / "station.key"
    load_or_create_identity(key)
    cloud = "[cloud]\n" + ("long_poll = true\n" if long_poll else "")
    text = CONFIG.replace("[cloud]\n", cloud) + f'[identity]\nkey_file = "{key}"\n'
    (tmp_path / "station.toml").write_text(text)
    config = load_config(tmp_path / "station.toml", {})
    assert config.cloud.long_poll is long_poll
    station = build_station(
        config,
        reader=SimulatedCardReader(),
        display=SimulatedDisplay(128, 64, "1"),
        transport=FakePrinter(),
    )
    try:
        assert any(isinstance(s, LongPoll) for s in station.background) is long_poll
    finally:
        station.client.close()  # type: ignore[attr-defined]
