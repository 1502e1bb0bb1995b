"""Email + PIN at a station: policy, Argon2id verifier, back-off, lockout, reset, per station."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import cast

import pytest

from cloud.db import Pin
from cloud.errors import (
    InvalidRequestError,
    PinLockedError,
    TooManyRequestsError,
    UnknownCredentialError,
)
from cloud.pins import backoff_s, pin_tag
from cloud.service import CloudService
from tests.cloud.conftest import (
    SITE_KEY,
    Enrolled,
    FakeClock,
    World,
    pair_station,
)

EMAIL = "ada@example.org"
PIN = "402817"


def tag(pin: str = PIN, email: str = EMAIL) -> str:
    return pin_tag(SITE_KEY, email, pin)


def fail(service: CloudService, enrolled: Enrolled, pin: str = "000000") -> type[Exception]:
    try:
        service.sessions.open_with_pin(enrolled.station, EMAIL, tag(pin))
    except (UnknownCredentialError, TooManyRequestsError, PinLockedError) as exc:
        return type(exc)
    raise AssertionError("a wrong PIN opened a session")


def test_pins_follow_the_site_policy(service: CloudService, enrolled: Enrolled) -> None:
    for bad in ("12345", "1234", "12a456", "", "1" * 33):
        with pytest.raises(InvalidRequestError):
            service.pins.set_pin(EMAIL, bad, SITE_KEY)
    service.pins.set_pin(EMAIL, "123456", SITE_KEY)
    for wrong in (3, 13):
        with pytest.raises(InvalidRequestError):
            service.pins.set_min_digits(service.config.site, wrong)
    service.pins.set_min_digits(service.config.site, 4)
    service.pins.set_pin(EMAIL, "1234", SITE_KEY)
    service.pins.set_min_digits(service.config.site, 8)
    with pytest.raises(InvalidRequestError):
        service.pins.set_pin(EMAIL, "1234567", SITE_KEY)


def test_the_verifier_is_argon2id_with_owasp_parameters_over_the_tag(
    service: CloudService, enrolled: Enrolled
) -> None:
    service.pins.set_pin(EMAIL, PIN, SITE_KEY)
    with service.context.read() as db:
        (row,) = db.query(Pin).all()
    assert row.verifier.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PIN not in row.verifier and tag() not in row.verifier
    opened = service.sessions.open_with_pin(enrolled.station, "Ada@Example.org ", tag())
    assert opened.user_id == enrolled.user.id
    # The tag is keyed by the site key: the same PIN under another key is wrong.
    with pytest.raises(UnknownCredentialError):
        service.sessions.open_with_pin(enrolled.station, EMAIL, pin_tag(b"x" * 32, EMAIL, PIN))


def test_back_off_doubles_from_the_third_failure_and_success_resets(
    service: CloudService, enrolled: Enrolled, clock: FakeClock
) -> None:
    service.pins.set_pin(EMAIL, PIN, SITE_KEY)
    assert [backoff_s(n) for n in range(1, 8)] == [0, 0, 2, 4, 8, 16, 32]
    assert fail(service, enrolled) is UnknownCredentialError
    assert fail(service, enrolled) is UnknownCredentialError
    with pytest.raises(TooManyRequestsError) as third:
        service.sessions.open_with_pin(enrolled.station, EMAIL, tag("111111"))
    assert third.value.retry_after_s == 2
    # During the wait even the right PIN is refused, unseen.
    with pytest.raises(TooManyRequestsError):
        service.sessions.open_with_pin(enrolled.station, EMAIL, tag())
    clock.advance(seconds=2)
    with pytest.raises(TooManyRequestsError) as fourth:
        service.sessions.open_with_pin(enrolled.station, EMAIL, tag("111111"))
    assert fourth.value.retry_after_s == 4
    clock.advance(seconds=4)
    service.sessions.open_with_pin(enrolled.station, EMAIL, tag())
    assert fail(service, enrolled) is UnknownCredentialError  # the count starts again


def test_ten_failures_in_a_row_lock_the_pin_until_reset(
    service: CloudService, enrolled: Enrolled, clock: FakeClock
) -> None:
    service.pins.set_pin(EMAIL, PIN, SITE_KEY)
    other = pair_station(service, "Floor 3")  # so the station's own back-off never interferes
    outcomes = []
    for n in range(1, 11):
        station = enrolled.station if n % 2 else other.principal
        try:
            service.sessions.open_with_pin(station, EMAIL, tag("999999"))
        except (UnknownCredentialError, TooManyRequestsError, PinLockedError) as exc:
            outcomes.append(type(exc))
        clock.advance(seconds=600)
    assert outcomes[:2] == [UnknownCredentialError] * 2
    assert outcomes[2:9] == [TooManyRequestsError] * 7
    assert outcomes[9] is PinLockedError
    clock.advance(days=1)
    with pytest.raises(PinLockedError):
        service.sessions.open_with_pin(enrolled.station, EMAIL, tag())
    service.pins.reset(EMAIL)
    assert service.sessions.open_with_pin(enrolled.station, EMAIL, tag()).user_id == (
        enrolled.user.id
    )


def test_failures_are_counted_per_station_across_accounts(
    service: CloudService, enrolled: Enrolled, clock: FakeClock
) -> None:
    service.pins.set_pin(EMAIL, PIN, SITE_KEY)
    spraying = enrolled.station
    for n in range(2):
        with pytest.raises(UnknownCredentialError):
            service.sessions.open_with_pin(spraying, f"nobody{n}@example.org", tag())
    with pytest.raises(TooManyRequestsError) as third:
        service.sessions.open_with_pin(spraying, "nobody9@example.org", tag())
    assert third.value.retry_after_s == 2
    with pytest.raises(TooManyRequestsError):  # the station waits, whoever types
        service.sessions.open_with_pin(spraying, EMAIL, tag())
    elsewhere = pair_station(service, "Floor 4").principal
    assert service.sessions.open_with_pin(elsewhere, EMAIL, tag()).user_id == enrolled.user.id
    clock.advance(seconds=2)
    service.sessions.open_with_pin(spraying, EMAIL, tag())  # a success clears the station too
    with pytest.raises(UnknownCredentialError):
        service.sessions.open_with_pin(spraying, "nobody@example.org", tag())


def test_a_pin_of_another_site_is_unknown(service: CloudService, enrolled: Enrolled) -> None:
    service.pins.set_pin(EMAIL, PIN, SITE_KEY)
    service.sites.add("branch")
    service.identity.create_user(EMAIL, "Other Ada", "branch")
    branch_station = pair_station(service, "Branch", site="branch").principal
    with pytest.raises(UnknownCredentialError):
        service.sessions.open_with_pin(branch_station, EMAIL, tag())


def test_pin_over_http_429_423_and_never_logged(
    world: World, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    service = cast(CloudService, world.client.app.state.service)  # type: ignore[attr-defined]
    service.pins.set_pin(EMAIL, PIN, SITE_KEY)

    def attempt(pin: str) -> tuple[int, str | None, str]:
        response = world.client.post(
            "/api/v1/station/sessions",
            json={"email": EMAIL, "pin_tag": tag(pin)},
            auth=world.station,
        )
        code = response.json().get("code", "") if response.status_code >= 400 else ""
        return response.status_code, response.headers.get("retry-after"), code

    assert attempt(PIN)[0] == 201
    assert attempt("000000") == (404, None, "unknown-credential")
    assert attempt("000000") == (404, None, "unknown-credential")
    assert attempt("000000") == (429, "2", "rate-limited")
    for n in range(4, 11):
        clock.advance(seconds=300)
        status = attempt("000000")[0]
        assert status == (423 if n == 10 else 429)
    clock.advance(seconds=300)
    assert attempt(PIN) == (423, None, "pin-locked")
    for bad in ({"email": EMAIL}, {"tag": tag(), "email": EMAIL, "pin_tag": tag()}, {}):
        sent = world.client.post("/api/v1/station/sessions", json=bad, auth=world.station)
        assert sent.status_code == 422
    logged = caplog.text.lower()
    assert EMAIL not in logged and tag(PIN) not in logged and PIN not in logged


def test_admin_cli_sets_and_resets_pins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cloud.config import generate_secrets, load_config
    from tools.cli import main

    data = tmp_path / "cloud"
    data.mkdir()
    generate_secrets(data / "secrets.toml")
    key_file = tmp_path / "site.key"
    common = ["--data-dir", str(data)]
    assert main(["admin", "site", "init", *common, "--site-key-file", str(key_file)]) == 0
    assert main(["admin", "user", "add", EMAIL, *common]) == 0
    answers = iter(["1234", "1234"])
    monkeypatch.setattr("getpass.getpass", lambda _prompt="": next(answers))
    assert main(["admin", "pin", "set", EMAIL, *common, "--site-key-file", str(key_file)]) == 1
    assert main(["admin", "site", "policy", "--min-pin-digits", "4", *common]) == 0
    answers = iter(["1234", "1234"])
    assert main(["admin", "pin", "set", EMAIL, *common, "--site-key-file", str(key_file)]) == 0
    assert main(["admin", "pin", "reset", EMAIL, *common]) == 0
    assert main(["admin", "site", "add", "branch-2", *common]) == 0
    out = capsys.readouterr().out
    assert "PIN set for user" in out
    assert "admin token: ppa_" in out
    site_key = bytes.fromhex(key_file.read_text().strip())
    service = CloudService.open(load_config(None, {"PULLPRINT_DATA_DIR": str(data)}))
    try:
        station = pair_station(service).principal
        opened = service.sessions.open_with_pin(station, EMAIL, pin_tag(site_key, EMAIL, "1234"))
        assert opened.display_name == EMAIL
    finally:
        service.close()
