"""Identity at the station through the REST API: card + PIN, release passcodes, self-enrolment,
several labelled badges per user, and the site's identity policy."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest

from cloud.db import AuditEvent, EnrolmentCode, ReleasePasscode
from cloud.pins import pin_tag
from cloud.service import CloudService
from tests.cloud.conftest import (
    SITE_KEY,
    FakeClock,
    SignedAuth,
    TestClient,
    World,
    admin_headers,
    bearer,
    pair_station,
    random_tag,
)

EMAIL = "ada@example.org"
PIN = "402817"


def svc(client: TestClient) -> CloudService:
    return cast(CloudService, client.app.state.service)  # type: ignore[attr-defined]


def policy(client: TestClient, **change: Any) -> dict[str, Any]:
    response = client.patch("/api/v1/admin/identity-policy", json=change, headers=admin_headers())
    assert response.status_code == 200, response.text
    return cast(dict[str, Any], response.json())


def open_session(world: World, body: dict[str, Any]) -> Any:
    return world.client.post("/api/v1/station/sessions", json=body, auth=world.station)


# -- card + PIN ----------------------------------------------------------------------------------


def test_card_and_pin_asks_for_the_pin_and_opens_only_with_the_right_one(world: World) -> None:
    service = svc(world.client)
    service.pins.set_pin(EMAIL, PIN, SITE_KEY)
    world.submit(name="report.pdf")
    assert open_session(world, {"tag": world.tag}).status_code == 201  # policy off: tap enough
    assert policy(world.client, card_pin=True)["card_pin"] is True

    challenge = open_session(world, {"tag": world.tag})
    assert challenge.status_code == 202, challenge.text
    assert challenge.json() == {"pin_required": True, "pin_email": EMAIL, "min_pin_digits": 6}
    wrong = open_session(world, {"tag": world.tag, "pin_tag": pin_tag(SITE_KEY, EMAIL, "111111")})
    assert (wrong.status_code, wrong.json()["code"]) == (404, "unknown-credential")
    # The PIN of another user's account does not go with this badge.
    other = service.identity.create_user("eve@example.org", "Eve")
    service.pins.set_pin("eve@example.org", "909090", SITE_KEY)
    theirs = pin_tag(SITE_KEY, "eve@example.org", "909090")
    assert open_session(world, {"tag": world.tag, "pin_tag": theirs}).status_code == 404
    assert other.id

    opened = open_session(world, {"tag": world.tag, "pin_tag": pin_tag(SITE_KEY, EMAIL, PIN)})
    assert opened.status_code == 201, opened.text
    assert [job["name"] for job in opened.json()["jobs"]] == ["report.pdf"]
    # The domain's badge-only entry point refuses too: no path around the policy.
    from cloud.errors import PinRequiredError

    with pytest.raises(PinRequiredError):
        service.sessions.open(world.paired.principal, world.tag)


def test_card_and_pin_says_so_when_the_badge_owner_has_no_pin(world: World) -> None:
    policy(world.client, card_pin=True)
    refused = open_session(world, {"tag": world.tag})
    assert (refused.status_code, refused.json()["code"]) == (403, "pin-not-set")
    svc(world.client).pins.set_pin(EMAIL, PIN, SITE_KEY)
    assert open_session(world, {"tag": world.tag}).status_code == 202


def test_card_and_pin_backs_off_and_locks_like_email_and_pin(
    world: World, clock: FakeClock
) -> None:
    service = svc(world.client)
    service.pins.set_pin(EMAIL, PIN, SITE_KEY)
    policy(world.client, card_pin=True)
    codes = []
    for attempt in range(10):
        bad = pin_tag(SITE_KEY, EMAIL, f"{attempt:06d}")
        response = open_session(world, {"tag": world.tag, "pin_tag": bad})
        codes.append(response.json()["code"])
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 2
            clock.advance(seconds=int(response.headers["Retry-After"]))
    assert codes[:2] == ["unknown-credential"] * 2
    assert codes[2] == "rate-limited"
    assert codes[-1] == "pin-locked"
    clock.advance(hours=1)
    good = open_session(world, {"tag": world.tag, "pin_tag": pin_tag(SITE_KEY, EMAIL, PIN)})
    assert (good.status_code, good.json()["code"]) == (423, "pin-locked")


# -- release passcodes ------


def test_a_single_use_passcode_opens_one_session_then_is_gone(
    world: World, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world.submit(name="slides.pdf")
    issued = world.client.post(
        "/api/v1/me/release-passcodes", json={"label": "visitor"}, headers=world.user
    )
    assert issued.status_code == 201, issued.text
    body = issued.json()
    passcode = body["passcode"]
    assert body["single_use"] is True and body["expires_at"] is not None
    assert len(passcode) == 10 and passcode.isdigit()
    opened = open_session(world, {"passcode": passcode})
    assert opened.status_code == 201, opened.text
    assert [job["name"] for job in opened.json()["jobs"]] == ["slides.pdf"]
    again = open_session(world, {"passcode": passcode})
    assert (again.status_code, again.json()["code"]) == (404, "unknown-passcode")
    listed = world.client.get("/api/v1/me/release-passcodes", headers=world.user).json()
    assert listed["passcodes"][0]["used_at"] is not None
    assert passcode not in str(listed)
    # Expiry: a fresh one, unused past its TTL, is refused the same way.
    late = world.client.post("/api/v1/me/release-passcodes", json={}, headers=world.user).json()
    clock.advance(seconds=901)
    expired = open_session(world, {"passcode": late["passcode"]})
    assert expired.json()["code"] == "unknown-passcode"
    assert passcode not in caplog.text and late["passcode"] not in caplog.text
    # Stored only keyed.
    with svc(world.client).context.read() as db:
        lookups = [row.lookup for row in db.query(ReleasePasscode)]
    assert passcode not in str(lookups) and len(lookups) == 2


def test_long_lived_passcodes_last_until_revoked(world: World, clock: FakeClock) -> None:
    policy(world.client, passcode_mode="long-lived")
    issued = world.client.post(
        f"/api/v1/admin/users/{world.user_id}/release-passcodes",
        json={"label": "no badge"},
        headers=admin_headers(),
    ).json()
    assert issued["single_use"] is False and issued["expires_at"] is None
    assert len(issued["passcode"]) == 12
    clock.advance(days=30)
    for _ in range(2):
        assert open_session(world, {"passcode": issued["passcode"]}).status_code == 201
    revoked = world.client.delete(
        f"/api/v1/me/release-passcodes/{issued['id']}", headers=world.user
    )
    assert revoked.status_code == 204
    assert open_session(world, {"passcode": issued["passcode"]}).status_code == 404


def test_wrong_passcodes_back_off_per_station(world: World, clock: FakeClock) -> None:
    issued = world.client.post("/api/v1/me/release-passcodes", json={}, headers=world.user).json()
    answers = [open_session(world, {"passcode": f"{n:010d}"}) for n in range(3)]
    assert [a.status_code for a in answers] == [404, 404, 429]
    assert answers[2].headers["Retry-After"] == "2"
    # While blocked even the right passcode is not looked at (and so not spent).
    blocked = open_session(world, {"passcode": issued["passcode"]})
    assert blocked.status_code == 429
    # Another station is not blocked by this one's failures.
    other = SignedAuth(pair_station(svc(world.client), "Floor 3"), clock)
    elsewhere = world.client.post(
        "/api/v1/station/sessions", json={"passcode": issued["passcode"]}, auth=other
    )
    assert elsewhere.status_code == 201, elsewhere.text
    clock.advance(seconds=3)
    assert open_session(world, {"passcode": "12"}).status_code == 429  # 4th failure: 4 s
    clock.advance(seconds=5)
    fresh = world.client.post("/api/v1/me/release-passcodes", json={}, headers=world.user).json()
    assert open_session(world, {"passcode": fresh["passcode"]}).status_code == 201
    # A success resets the station's count.
    assert open_session(world, {"passcode": "0000000000"}).status_code == 404


def test_session_request_takes_exactly_one_kind_of_credential(world: World) -> None:
    for body in (
        {},
        {"tag": world.tag, "passcode": "1234567890"},
        {"email": EMAIL, "pin_tag": random_tag(), "passcode": "1234567890"},
        {"passcode": "1234567890", "pin_tag": random_tag()},
        {"email": EMAIL},
    ):
        response = open_session(world, body)
        assert response.status_code == 422, body


# -- self-enrolment ------


def offer(world: World, tag: str, auth: SignedAuth | None = None) -> Any:
    return world.client.post(
        "/api/v1/station/enrolments", json={"tag": tag}, auth=auth or world.station
    )


def test_self_enrolment_binds_the_tapped_badge_to_the_user_who_redeems_the_code(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    new_badge = random_tag()
    refused = offer(world, new_badge)
    assert (refused.status_code, refused.json()["code"]) == (403, "self-enrolment-disabled")
    policy(world.client, self_enrolment=True)
    assert offer(world, world.tag).json()["code"] == "credential-exists"  # enrolled already

    offered = offer(world, new_badge)
    assert offered.status_code == 201, offered.text
    code = offered.json()["code"]
    assert len(code) == 9 and code[4] == "-" and offered.json()["ttl_s"] == 600
    # Someone else's sign-in cannot claim it twice; a wrong code is refused.
    wrong = world.client.post(
        "/api/v1/me/enrolments", json={"code": "aaaa-aaaa"}, headers=world.user
    )
    assert (wrong.status_code, wrong.json()["code"]) == (404, "enrolment-code-not-found")
    redeemed = world.client.post(
        "/api/v1/me/enrolments",
        json={"code": code.upper().replace("-", " "), "label": "spare badge"},
        headers=world.user,
    )
    assert redeemed.status_code == 201, redeemed.text
    assert redeemed.json()["label"] == "spare badge"
    again = world.client.post("/api/v1/me/enrolments", json={"code": code}, headers=world.user)
    assert again.status_code == 404
    # The badge now opens this user's session.
    opened = open_session(world, {"tag": new_badge})
    assert opened.status_code == 201
    assert opened.json()["user"]["display_name"] == "Ada"
    cards = world.client.get("/api/v1/me/cards", headers=world.user).json()["cards"]
    assert sorted(card["label"] for card in cards) == ["blue", "spare badge"]
    with svc(world.client).context.read() as db:
        kinds = [e.kind for e in db.query(AuditEvent).order_by(AuditEvent.id)]
    assert "enrolment-offered" in kinds and "enrolment-redeemed" in kinds
    assert code not in caplog.text and new_badge not in caplog.text


def test_enrolment_codes_expire_are_replaced_and_are_rate_limited(
    world: World, clock: FakeClock
) -> None:
    policy(world.client, self_enrolment=True)
    badge = random_tag()
    first = offer(world, badge).json()["code"]
    second = offer(world, badge).json()["code"]  # the same badge again: the first stops working
    redeem = {"headers": world.user}
    stale = world.client.post("/api/v1/me/enrolments", json={"code": first}, **redeem)
    assert stale.status_code == 404
    clock.advance(seconds=601)
    expired = world.client.post("/api/v1/me/enrolments", json={"code": second}, **redeem)
    assert expired.status_code == 404
    # 2 offers so far; the station gets 10 an hour.
    answers = [offer(world, random_tag()).status_code for _ in range(9)]
    assert answers == [201] * 8 + [429]
    clock.advance(hours=1)
    assert offer(world, random_tag()).status_code == 201
    # Wrong codes: after 5 failures in 15 minutes the next attempt waits.
    for _ in range(5):
        wrong = world.client.post("/api/v1/me/enrolments", json={"code": "zzzz-zzzz"}, **redeem)
        assert wrong.status_code == 404
    limited = world.client.post("/api/v1/me/enrolments", json={"code": "zzzz-zzzz"}, **redeem)
    assert limited.status_code == 429
    # The sweep drops codes older than a day.
    clock.advance(days=2)
    svc(world.client).sweep()
    with svc(world.client).context.read() as db:
        assert db.query(EnrolmentCode).count() == 0


def test_an_enrolment_code_is_redeemable_only_in_its_own_site(
    world: World, clock: FakeClock
) -> None:
    service = svc(world.client)
    policy(world.client, self_enrolment=True)
    code = offer(world, random_tag()).json()["code"]
    other_site = service.sites.add("branch-2")
    made = world.client.post(
        "/api/v1/admin/users",
        json={"email": "bob@example.org", "display_name": "Bob"},
        headers=bearer(other_site.admin_token),
    ).json()
    stranger = world.client.post(
        "/api/v1/me/enrolments", json={"code": code}, headers=bearer(made["api_token"])
    )
    assert stranger.status_code == 404
    mine = world.client.post("/api/v1/me/enrolments", json={"code": code}, headers=world.user)
    assert mine.status_code == 201


# -- badges ------


def test_several_labelled_badges_listed_and_removed(world: World) -> None:
    second = random_tag()
    added = world.client.post(
        f"/api/v1/admin/users/{world.user_id}/cards",
        json={"tag": second, "label": "keyring fob"},
        headers=admin_headers(),
    )
    assert added.status_code == 201
    world.session()  # the first badge opened a session: removing it must still work
    listed = world.client.get(
        f"/api/v1/admin/users/{world.user_id}/cards", headers=admin_headers()
    ).json()["cards"]
    listed.sort(key=lambda card: card["label"])
    assert [c["label"] for c in listed] == ["blue", "keyring fob"]
    assert world.tag not in str(listed) and second not in str(listed)
    gone = world.client.delete(
        f"/api/v1/admin/users/{world.user_id}/cards/{listed[0]['id']}", headers=admin_headers()
    )
    assert gone.status_code == 204
    assert open_session(world, {"tag": world.tag}).json()["code"] == "unknown-credential"
    assert open_session(world, {"tag": second}).status_code == 201
    twice = world.client.delete(f"/api/v1/me/cards/{listed[0]['id']}", headers=world.user)
    assert (twice.status_code, twice.json()["code"]) == (404, "credential-not-found")
    mine = world.client.delete(f"/api/v1/me/cards/{listed[1]['id']}", headers=world.user)
    assert mine.status_code == 204
    assert world.client.get("/api/v1/me/cards", headers=world.user).json()["cards"] == []


def test_policy_is_validated_and_read_back(client: TestClient) -> None:
    got = client.get("/api/v1/admin/identity-policy", headers=admin_headers()).json()
    assert got == {
        "card_pin": False,
        "self_enrolment": False,
        "passcode_mode": "single-use",
        "passcode_ttl_s": 900,
    }
    for bad in ({"passcode_mode": "forever"}, {"passcode_ttl_s": 5}):
        response = client.patch("/api/v1/admin/identity-policy", json=bad, headers=admin_headers())
        assert response.status_code == 422
    assert policy(client, passcode_ttl_s=120)["passcode_ttl_s"] == 120
    assert policy(client, card_pin=True) == {**got, "passcode_ttl_s": 120, "card_pin": True}
