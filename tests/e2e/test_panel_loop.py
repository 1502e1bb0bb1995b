"""The station's panel in the whole loop: buttons from a pin map drive the release; the status
light and the buzzer say how it went (simulated panel, then the real gpiozero code on mock pins)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin

from hardware.panel.base import LightPattern, Sound
from hardware.panel.simulated import SimulatedButtonPanel, SimulatedBuzzer, SimulatedStatusLight
from hardware.readers.formats import h10301
from station.screens import DoneScreen, ErrorScreen, JobListScreen
from tools.rig import LoopRig
from tools.samples import make_pdf

BADGE = h10301(90, 324)
PDF = make_pdf(["panel"])


def _submit(rig: LoopRig, token: str) -> None:
    response = rig.http.post(
        f"{rig.cloud_url}/api/v1/jobs",
        params={"name": "p.pdf"},
        data=PDF,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/pdf"},
        timeout=30,
    )
    assert response.status_code == 201, response.text


def test_simulated_panel_prints_and_signals_success_then_failure(tmp_path: Path) -> None:
    panel_toml = '[panel]\ndriver = "simulated"\npin_map = "generic-4button"\n'
    with LoopRig(tmp_path / "rig", done_s=0.3, error_s=0.3, extra_toml=panel_toml) as rig:
        assert rig.station is not None and rig.station.panel is not None
        buttons = rig.station.panel.buttons
        light, buzzer = rig.station.panel.light, rig.station.panel.buzzer
        assert isinstance(buttons, SimulatedButtonPanel)
        assert isinstance(light, SimulatedStatusLight) and isinstance(buzzer, SimulatedBuzzer)
        assert light.pattern is LightPattern.READY

        user = rig.enrol("ada@example.org", "Ada", BADGE)
        _submit(rig, user.token)
        tapped = rig.tap(BADGE)
        assert rig.screens.wait_for(JobListScreen, after=tapped, timeout_s=15)
        buttons.press("print-all")  # the pin map's name for the Print all key
        done = rig.screens.wait_for((DoneScreen, ErrorScreen), after=tapped, timeout_s=60)
        assert done is not None and isinstance(done[1], DoneScreen)
        assert LightPattern.SUCCESS in light.history
        assert buzzer.played[:2] == [Sound.READ, Sound.SUCCESS]
        assert rig.printer is not None and [d.data for d in rig.printer.received] == [PDF]

        assert rig.wait_idle()
        stranger = rig.tap(h10301(90, 999))
        refused = rig.screens.wait_for(ErrorScreen, after=stranger, timeout_s=15)
        assert refused is not None
        assert buzzer.played[-1] is Sound.FAILURE  # a different rhythm from success
        assert LightPattern.ERROR in light.history


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    previous = Device.pin_factory
    factory = MockFactory(pin_class=MockPWMPin)
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        factory.close()
        Device.pin_factory = previous


def test_gpio_buttons_on_mock_pins_release_the_job(tmp_path: Path, mock_pins: MockFactory) -> None:
    """The real gpiozero Button/RGBLED/TonalBuzzer code, wired by the bundled pin map."""
    panel_toml = '[panel]\ndriver = "gpio"\npin_map = "generic-4button"\n'
    with LoopRig(tmp_path / "rig", done_s=0.3, extra_toml=panel_toml) as rig:
        user = rig.enrol("ada@example.org", "Ada", BADGE)
        _submit(rig, user.token)
        tapped = rig.tap(BADGE)
        assert rig.screens.wait_for(JobListScreen, after=tapped, timeout_s=15)
        pin = mock_pins.pin(5)  # generic-4button: print-all on GPIO5, to ground
        pin.drive_low()
        pin.drive_high()
        done = rig.screens.wait_for((DoneScreen, ErrorScreen), after=tapped, timeout_s=60)
        assert done is not None and isinstance(done[1], DoneScreen), done
        assert rig.printer is not None and [d.data for d in rig.printer.received] == [PDF]
        # The status light's green channel (GPIO27) is lit once the job printed.
        assert mock_pins.pin(27).state > 0
