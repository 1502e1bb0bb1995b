"""Email + PIN at a station with a full keyboard, against a real cloud (tools.rig.LoopRig): the
address typed, the PIN masked, a wrong PIN brought back to correct, the job list opened; and the
logs, at DEBUG everywhere, hold neither the PIN nor the address."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hardware.readers.formats import h10301
from station.screens import EmailEntryScreen, ErrorScreen, JobListScreen, PinEntryScreen, Screen
from tools.rig import LoopRig

PIN = "402817"
EMAIL = "grace.hopper+print@example.org"
WAIT_S = 15


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[LoopRig]:
    with LoopRig(tmp_path / "rig", done_s=0.3, error_s=0.3, keyboard=True) as started:
        yield started


def first_screen(rig: LoopRig, after: float, wanted: Callable[[Screen], bool]) -> Screen:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for at, screen in list(rig.screens.entries):
            if at >= after and wanted(screen):
                return screen
        time.sleep(0.02)
    raise AssertionError(f"not shown: {[s.label for _, s in rig.screens.entries]}")


def next_screen(rig: LoopRig, kind: type[Screen], after: float, **fields: object) -> Screen:
    return first_screen(
        rig,
        after,
        lambda s: isinstance(s, kind) and all(getattr(s, k) == v for k, v in fields.items()),
    )


def test_email_and_pin_on_a_keyboard_open_the_users_jobs(
    rig: LoopRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = rig.enrol(EMAIL, "Grace Hopper", h10301(7, 1906))
    assert rig.service is not None
    rig.service.pins.set_pin(user.email, PIN, rig.site_key)
    response = rig.http.post(
        f"{rig.cloud_url}/api/v1/jobs",
        params={"name": "compiler.pdf"},
        data=b"hello printer",
        headers={"Authorization": f"Bearer {user.token}", "Content-Type": "text/plain"},
        timeout=30,
    )
    assert response.status_code == 201, response.text

    # Typed with capitals and a trailing dot fixed with Backspace: shown as typed.
    at = rig.type_on_keyboard("Grace.Hopper+print@Example.org.", enter=False)
    rig.keypad.backspace()
    typed = next_screen(rig, EmailEntryScreen, at, text="Grace.Hopper+print@Example.org")
    assert typed.message == ""
    at = time.monotonic()
    rig.keypad.enter()
    asked = next_screen(rig, PinEntryScreen, at)
    assert asked.prompt == "Enter your PIN" and asked.entered == 0

    # A wrong PIN: the address comes back (the cloud does not say which one was wrong).
    again = next_screen(
        rig, EmailEntryScreen, rig.type_on_keypad("000000"), message="Wrong email or PIN, try again"
    )
    assert again.text == EMAIL
    at = time.monotonic()
    rig.keypad.enter()
    next_screen(rig, PinEntryScreen, at)
    listed = next_screen(rig, JobListScreen, rig.type_on_keypad(PIN))
    assert listed.display_name == "Grace Hopper"
    assert [job.name for job in listed.jobs] == ["compiler.pdf"]
    assert PIN not in caplog.text and "000000" not in caplog.text
    assert "hopper" not in caplog.text.lower()


def test_wrong_pins_after_an_email_back_off_in_words(rig: LoopRig) -> None:
    user = rig.enrol("ida@example.org", "Ida", h10301(7, 1907))
    assert rig.service is not None
    rig.service.pins.set_pin(user.email, PIN, rig.site_key)
    shown: Screen | None = None
    for attempt in range(6):
        at = rig.type_on_keyboard("" if attempt else "ida@example.org")
        next_screen(rig, PinEntryScreen, at)
        shown = first_screen(
            rig,
            rig.type_on_keypad(f"{attempt:06d}"),
            lambda s: (
                isinstance(s, ErrorScreen) or (isinstance(s, EmailEntryScreen) and bool(s.message))
            ),
        )
        if isinstance(shown, ErrorScreen):
            break
    assert isinstance(shown, ErrorScreen), "no back-off after six wrong PINs"
    assert shown.title == "Too many attempts"
    assert shown.message.startswith("Wait ")
