"""The station suite on a lab: the configured reader, panel, display and printer, end to end.

`pytest tests/hil` runs it on the simulated lab (CI); `pytest tests/hil --hil LAB.toml -s` on a
real rig, where the suite asks the operator to tap and press (docs/hil.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hardware.readers.formats import mifare_uid
from hardware.readers.simulated import SimulatedCardReader
from station.screens import DoneScreen, ErrorScreen, IdleScreen, JobListScreen, NoJobsScreen
from station.workflow import Button
from tests.hil.lab import Lab, LabFileError, LabSpec, load_lab
from tools.rig import LoopRig
from tools.samples import make_pdf


@pytest.fixture
def rig(lab: Lab, lab_spec: LabSpec, tmp_path: Path) -> Iterator[LoopRig]:
    with LoopRig(
        tmp_path / "rig",
        printer_uri=None if lab_spec.simulated else lab_spec.printer_uri,
        reader_kind=lab_spec.reader_kind,
        display=lab.open_display(),
        extra_toml=lab.reader_toml() + lab.panel_toml(),
        done_s=0.5,
        error_s=0.5,
    ) as started:
        yield started


def _submit(rig: LoopRig, token: str, name: str) -> dict:
    response = rig.http.post(
        f"{rig.cloud_url}/api/v1/jobs",
        params={"name": name},
        data=make_pdf(["HIL", name]),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/pdf"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_tap_list_print_on_the_lab(
    rig: LoopRig, lab: Lab, lab_spec: LabSpec, hil_timeout_s: float
) -> None:
    assert rig.station is not None
    # The configured parts, not the rig's simulated ones.
    assert not isinstance(rig.station.reader, SimulatedCardReader)
    assert rig.station.panel is not None or lab_spec.pin_map is None
    user = rig.enrol("hil@example.org", "HIL Operator", lab_spec.badge)
    job = _submit(rig, user.token, "hil-page.pdf")
    assert rig.screens.wait_for(IdleScreen, after=0, timeout_s=hil_timeout_s)
    if lab.luma_device is not None and hasattr(lab.luma_device, "image"):
        assert lab.luma_device.image.getbbox() is not None  # the idle screen lit pixels

    tapped = lab.tap()
    listed = rig.screens.wait_for(
        (JobListScreen, ErrorScreen, NoJobsScreen), after=tapped, timeout_s=hil_timeout_s
    )
    assert listed is not None, "the lab's reader gave no badge to the station"
    assert isinstance(listed[1], JobListScreen), listed[1].lines()
    assert [j.name for j in listed[1].jobs] == ["hil-page.pdf"]

    # The lab's own button when it has a panel; the station's input otherwise (a touch rig).
    pressed = lab.press("print-all") if lab_spec.pin_map else rig.press(Button.PRINT_ALL)
    finished = rig.screens.wait_for((DoneScreen, ErrorScreen), after=pressed, timeout_s=120)
    assert finished is not None and isinstance(finished[1], DoneScreen), finished
    assert rig.job_status(job["id"])["state"] == "printed"
    if rig.printer is not None:
        assert len(rig.printer.received) == 1
    if lab.firmware is not None:
        assert lab.firmware.bridge.ready  # one handshake, the link up throughout


def test_an_unknown_badge_is_refused_on_the_lab(
    rig: LoopRig, lab: Lab, lab_spec: LabSpec, hil_timeout_s: float
) -> None:
    if not lab_spec.simulated:
        pytest.skip("needs a second, unenrolled badge: tap any other card by hand instead")
    tapped = lab.tap(mifare_uid(bytes.fromhex("04FFEEDDCCBBAA")))
    refused = rig.screens.wait_for(ErrorScreen, after=tapped, timeout_s=hil_timeout_s)
    assert refused is not None and "not recognised" in " ".join(refused[1].lines())


def test_lab_files_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "lab.toml"
    bad.write_text('[reader]\nkind = "simulated"\n[badge]\n[display]\nkind = "ssd1306"\n')
    with pytest.raises(LabFileError, match="kind must be one of"):
        load_lab(bad)
    bad.write_text('[reader]\nkind = "bridge"\nport = "/dev/ttyACM0"\n[display]\nkind = "x"\n')
    with pytest.raises(LabFileError, match=r"\[badge\] is required"):
        load_lab(bad)
    bad.write_text(
        '[reader]\nkind = "pcsc"\n[badge]\ntechnology = "mifare"\nuid = "04A1B2C3D4E5F6"\n'
        '[display]\nkind = "ssd1306"\n'
    )
    with pytest.raises(LabFileError, match="printer"):
        load_lab(bad)  # a real rig must say where it prints
    bad.write_text("[lab]\n[reader]\nkind = 'pcsc'\n[wiring]\n")
    with pytest.raises(LabFileError, match="unknown section"):
        load_lab(bad)
