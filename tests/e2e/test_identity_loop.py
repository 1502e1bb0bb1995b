"""Identity at a real station through the whole loop (tools.rig.LoopRig): card + PIN on the keypad,
release passcodes, self-enrolment of an unknown badge, back-off in words, and a badge imported
from a CSV file opening the same session as a tap."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardware.readers.formats import corp1000, h10301
from station.screens import (
    EnrolmentScreen,
    ErrorScreen,
    IdleScreen,
    JobListScreen,
    NoJobsScreen,
    PinEntryScreen,
    Screen,
)
from station.workflow import Button
from tools.rig import LoopRig
from tools.user_import import import_users

BADGE = h10301(90, 324)
PIN = "402817"
WAIT_S = 15


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[LoopRig]:
    with LoopRig(tmp_path / "rig", done_s=0.3, error_s=0.3) as started:
        yield started


def submit(rig: LoopRig, token: str, name: str) -> None:
    response = rig.http.post(
        f"{rig.cloud_url}/api/v1/jobs",
        params={"name": name},
        data=b"hello printer",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        timeout=30,
    )
    assert response.status_code == 201, response.text


def next_screen(
    rig: LoopRig, kind: type[Screen] | tuple[type[Screen], ...], after: float
) -> Screen:
    shown = rig.screens.wait_for(kind, after=after, timeout_s=WAIT_S)
    assert shown is not None, (
        f"no {kind} after {after}: {[s.label for _, s in rig.screens.entries]}"
    )
    return shown[1]


def test_card_and_pin_on_the_keypad(rig: LoopRig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    user = rig.enrol("ada@example.org", "Ada Lovelace", BADGE)
    assert rig.service is not None
    rig.service.pins.set_pin(user.email, PIN, rig.site_key)
    submit(rig, user.token, "report.pdf")
    rig.policy(card_pin=True)

    asked = next_screen(rig, PinEntryScreen, rig.tap(BADGE))
    assert asked.prompt == "Enter your PIN" and asked.entered == 0
    again = _wait_message(rig, "Wrong PIN, try again", rig.type_on_keypad("000000"))
    assert again.entered == 0
    listed = next_screen(rig, JobListScreen, rig.type_on_keypad(PIN))
    assert listed.display_name == "Ada Lovelace"
    assert [job.name for job in listed.jobs] == ["report.pdf"]
    assert PIN not in caplog.text and "000000" not in caplog.text


def _wait_message(rig: LoopRig, message: str, after: float) -> PinEntryScreen:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for at, screen in list(rig.screens.entries):
            if at >= after and isinstance(screen, PinEntryScreen) and screen.message == message:
                return screen
        time.sleep(0.02)
    raise AssertionError(f"no PIN screen saying {message!r}")


def test_a_release_passcode_typed_on_the_keypad_opens_the_users_jobs(
    rig: LoopRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = rig.enrol("bob@example.org", "Bob", corp1000(1234, 567890))
    submit(rig, user.token, "boarding-pass.pdf")
    issued = rig.admin("POST", f"/api/v1/admin/users/{user.id}/release-passcodes", {})
    passcode = issued["passcode"]
    listed = next_screen(rig, JobListScreen, rig.type_on_keypad(passcode))
    assert listed.display_name == "Bob"
    assert rig.station is not None
    rig.station.press(Button.CANCEL)
    assert rig.wait_idle(WAIT_S)
    # Single use: the same digits again are refused, and the screen says so.
    refused = _wait_message(rig, "Passcode not recognised", rig.type_on_keypad(passcode))
    assert refused.prompt == "Enter passcode"
    assert passcode not in caplog.text


def test_wrong_passcodes_back_off_and_the_screen_says_how_long(rig: LoopRig) -> None:
    for attempt in range(2):
        _wait_message(rig, "Passcode not recognised", rig.type_on_keypad(f"{attempt:010d}"))
        at = time.monotonic()
        rig.keypad.escape()
        assert rig.screens.wait_for(IdleScreen, after=at, timeout_s=WAIT_S) is not None
    waited = next_screen(rig, ErrorScreen, rig.type_on_keypad("9" * 10))
    assert waited.title == "Too many attempts"
    assert waited.message == "Wait 2 seconds and try again"


def test_an_unknown_badge_is_self_enrolled_with_the_code_on_the_screen(rig: LoopRig) -> None:
    user = rig.enrol("cy@example.org", "Cy", h10301(1, 1))
    new_badge = h10301(12, 3456)
    refused = next_screen(rig, ErrorScreen, rig.tap(new_badge))  # the site does not allow it
    assert refused.title == "Badge not recognised"
    assert rig.wait_idle(WAIT_S)

    rig.policy(self_enrolment=True)
    offered = next_screen(rig, EnrolmentScreen, rig.tap(new_badge))
    assert offered.minutes_valid == 10
    redeemed = rig.http.post(
        f"{rig.cloud_url}/api/v1/me/enrolments",
        json={"code": offered.code, "label": "new badge"},
        headers={"Authorization": f"Bearer {user.token}"},
        timeout=30,
    )
    assert redeemed.status_code == 201, redeemed.text
    rig.keypad.escape()  # any key or button leaves the code screen; a tap does too
    opened = next_screen(rig, (NoJobsScreen, JobListScreen), rig.tap(new_badge))
    assert "Cy" in " ".join(opened.lines())


def test_a_badge_imported_from_csv_opens_the_same_session_as_a_tap(rig: LoopRig) -> None:
    assert rig.service is not None
    eli_bits = int.from_bytes(corp1000(77, 4242).raw, "big")
    sheet = [
        "email,name,badge,format,label",
        "dee@example.org,Dee Imported,090-00324,h10301/fn,printed number",
        f"eli@example.org,Eli Imported,0x{eli_bits:09X},corp1000/hex,hex on the sticker",
    ]
    report = import_users(rig.service, iter(line + "\n" for line in sheet), rig.site_key)
    assert report.ok, report
    for badge, name in ((BADGE, "Dee Imported"), (corp1000(77, 4242), "Eli Imported")):
        opened = next_screen(rig, (NoJobsScreen, JobListScreen, ErrorScreen), rig.tap(badge))
        assert isinstance(opened, NoJobsScreen), opened.lines()
        assert opened.display_name == name
        assert rig.wait_idle(WAIT_S)
