"""Station pairing (RFC 8628 device grant) and signed station requests (RFC 9421 / RFC 9530)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cloud.db import PairingRequest, StationNonce, StationSession
from cloud.errors import (
    AccessDeniedError,
    AuthorizationPendingError,
    ConflictError,
    ExpiredTokenError,
    InvalidGrantError,
    InvalidSignatureError,
    PairingNotFoundError,
    SlowDownError,
    StationRevokedError,
    TooManyRequestsError,
)
from cloud.pairing import (
    MAX_REQUESTS_PER_SOURCE,
    USER_CODE_ALPHABET,
    normalise_user_code,
)
from cloud.service import CloudService
from station.pairing import open_grant
from station.signing import signature_headers
from tests.cloud.conftest import (
    SITE_KEY,
    FakeClock,
    SignedAuth,
    World,
    admin_headers,
    new_identity,
    pair_station,
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def problem_code(response: Any) -> str:
    return str(response.json()["code"])


# -- the device grant, through the service ----------------------------------------------------


def test_user_code_is_high_entropy_and_forgiving(service: CloudService) -> None:
    identity = new_identity()
    issued = service.pairing.request(identity.signing_public, identity.exchange_public, "a")
    first, dash, second = issued.user_code.partition("-")
    assert dash and len(first) == len(second) == 4
    assert set(first + second) <= set(USER_CODE_ALPHABET)
    assert len(USER_CODE_ALPHABET) ** 8 > 2**34
    assert issued.user_code not in repr(issued) and issued.device_code not in repr(issued)
    assert normalise_user_code(issued.user_code.lower().replace("-", " ")) == first + second
    assert normalise_user_code("AEIO-UBCD") is None  # vowels are never issued
    view = service.pairing.find(issued.user_code.lower())
    assert view.fingerprint == identity.fingerprint
    with service.context.read() as db:
        row = db.get(PairingRequest, issued.request_id)
        assert row is not None
        assert issued.user_code not in row.user_code_hash
        assert row.device_code_hash != issued.device_code


def test_poll_follows_rfc_8628(service: CloudService, clock: FakeClock) -> None:
    identity = new_identity()
    issued = service.pairing.request(identity.signing_public, identity.exchange_public, "a")
    with pytest.raises(AuthorizationPendingError):
        service.pairing.poll(issued.device_code)
    clock.advance(seconds=1)
    with pytest.raises(SlowDownError, match="10 s"):
        service.pairing.poll(issued.device_code)
    clock.advance(seconds=10)
    with pytest.raises(AuthorizationPendingError):
        service.pairing.poll(issued.device_code)
    with pytest.raises(InvalidGrantError):
        service.pairing.poll("not-a-device-code")
    approved = service.pairing.approve(
        issued.user_code, site_key=SITE_KEY, printer_name="Floor 2", printer_uri="ipp://p/ipp"
    )
    grant = service.pairing.poll(issued.device_code)
    assert grant.station_id == approved.station_id
    opened = open_grant(identity, str(issued.request_id), grant.sealed)
    assert (opened.station_id, opened.site, opened.printer_name, opened.printer_uri) == (
        str(approved.station_id),
        "default",
        "Floor 2",
        "ipp://p/ipp",
    )
    assert opened.site_key == SITE_KEY
    # The cloud keeps no clear copy of the site key, only the sealed grant.
    with service.context.read() as db:
        row = db.get(PairingRequest, issued.request_id)
        assert row is not None and row.sealed_grant is not None
        assert SITE_KEY not in row.sealed_grant and SITE_KEY.hex().encode() not in row.sealed_grant
    with pytest.raises(PairingNotFoundError):  # no longer pending
        service.pairing.approve(
            issued.user_code, site_key=SITE_KEY, printer_name="x", printer_uri="ipp://x"
        )
    clock.advance(seconds=601)
    with pytest.raises(ExpiredTokenError):
        service.pairing.poll(issued.device_code)
    assert service.pairing.sweep() == 1
    with pytest.raises(InvalidGrantError):
        service.pairing.poll(issued.device_code)


def test_grant_is_bound_to_its_request_and_key(service: CloudService) -> None:
    identity = new_identity()
    issued = service.pairing.request(identity.signing_public, identity.exchange_public, "a")
    service.pairing.approve(
        issued.user_code, site_key=SITE_KEY, printer_name="P", printer_uri="ipp://p"
    )
    sealed = service.pairing.poll(issued.device_code).sealed
    from station.errors import CloudError

    with pytest.raises(CloudError):
        open_grant(identity, str(uuid.uuid4()), sealed)
    with pytest.raises(CloudError):
        open_grant(new_identity(), str(issued.request_id), sealed)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(CloudError):
        open_grant(identity, str(issued.request_id), tampered)


def test_denied_and_expired_requests(service: CloudService, clock: FakeClock) -> None:
    identity = new_identity()
    issued = service.pairing.request(identity.signing_public, identity.exchange_public, "a")
    service.pairing.deny(issued.user_code)
    with pytest.raises(AccessDeniedError):
        service.pairing.poll(issued.device_code)
    late = service.pairing.request(identity.signing_public, identity.exchange_public, "a")
    clock.advance(seconds=601)
    with pytest.raises(PairingNotFoundError):
        service.pairing.find(late.user_code)
    with pytest.raises(ExpiredTokenError):
        service.pairing.poll(late.device_code)


def test_one_key_pairs_one_station(service: CloudService) -> None:
    identity = new_identity()
    for _ in range(2):
        issued = service.pairing.request(identity.signing_public, identity.exchange_public, "a")
        try:
            service.pairing.approve(
                issued.user_code, site_key=SITE_KEY, printer_name="P", printer_uri="ipp://p"
            )
        except ConflictError:
            break
    else:
        pytest.fail("the same key was paired twice")


def test_requests_are_rate_limited_per_source(service: CloudService, clock: FakeClock) -> None:
    identity = new_identity()
    keys = (identity.signing_public, identity.exchange_public)
    for _ in range(MAX_REQUESTS_PER_SOURCE):
        service.pairing.request(*keys, "198.51.100.7")
    with pytest.raises(TooManyRequestsError) as caught:
        service.pairing.request(*keys, "198.51.100.7")
    assert caught.value.retry_after_s > 0
    service.pairing.request(*keys, "198.51.100.8")  # another source still may
    clock.advance(seconds=601)
    service.pairing.request(*keys, "198.51.100.7")  # and the window slides


# -- over HTTP ----------------------------------------------------------------------------------


def test_pairing_over_http(client: TestClient, clock: FakeClock) -> None:
    identity = new_identity()
    response = client.post(
        "/api/v1/pairing/requests",
        json={
            "signing_key": b64url(identity.signing_public),
            "exchange_key": b64url(identity.exchange_public),
        },
    )
    assert response.status_code == 201, response.text
    issued = response.json()
    assert set(issued) == {"request_id", "device_code", "user_code", "expires_in", "interval"}
    poll = client.post("/api/v1/pairing/grant", json={"device_code": issued["device_code"]})
    assert (poll.status_code, problem_code(poll)) == (400, "authorization_pending")
    service: CloudService = client.app.state.service  # type: ignore[attr-defined]
    service.pairing.approve(
        issued["user_code"], site_key=SITE_KEY, printer_name="P", printer_uri="ipp://p"
    )
    clock.advance(seconds=5)
    grant = client.post("/api/v1/pairing/grant", json={"device_code": issued["device_code"]})
    assert grant.status_code == 200
    sealed = base64.urlsafe_b64decode(grant.json()["sealed_grant"] + "==")
    opened = open_grant(identity, issued["request_id"], sealed)
    assert opened.station_id == grant.json()["station_id"]
    bad = client.post(
        "/api/v1/pairing/requests", json={"signing_key": "A" * 43, "exchange_key": "!" * 43}
    )
    assert bad.status_code in (400, 422)


def test_rate_limited_pairing_says_when_to_retry(client: TestClient) -> None:
    identity = new_identity()
    body = {
        "signing_key": b64url(identity.signing_public),
        "exchange_key": b64url(identity.exchange_public),
    }
    for _ in range(MAX_REQUESTS_PER_SOURCE):
        assert client.post("/api/v1/pairing/requests", json=body).status_code == 201
    refused = client.post("/api/v1/pairing/requests", json=body)
    assert (refused.status_code, problem_code(refused)) == (429, "rate-limited")
    assert int(refused.headers["retry-after"]) > 0


# -- signed requests ----------------------------------------------------------------------------


def signed(world: World, clock: FakeClock, method: str, path: str, body: bytes, **kw: Any) -> Any:
    headers = signature_headers(
        world.paired.identity,
        world.station_id,
        method,
        path,
        body,
        created=kw.pop("created", int(clock().timestamp())),
        nonce=kw.pop("nonce", None),
    )
    headers.update(kw.pop("extra", {}))
    return world.client.request(
        method,
        path,
        content=kw.pop("content", body),
        headers={**headers, "Content-Type": "application/json"},
    )


def test_a_replayed_signed_request_is_refused(world: World, clock: FakeClock) -> None:
    body = b'{"tag": "' + world.tag.encode() + b'"}'
    first = signed(world, clock, "POST", "/api/v1/station/sessions", body, nonce="n" * 22)
    assert first.status_code == 201
    again = signed(world, clock, "POST", "/api/v1/station/sessions", body, nonce="n" * 22)
    assert (again.status_code, problem_code(again)) == (401, "invalid-signature")
    assert "used before" in again.json()["detail"]
    assert again.headers["www-authenticate"] == "Signature"
    # The tap reads before it writes: the replay read the same list, but opened nothing.
    service: CloudService = world.client.app.state.service  # type: ignore[attr-defined]
    with service.context.read() as db:
        opened = db.scalar(select(func.count()).select_from(StationSession))
    assert opened == 1


def test_stale_and_future_signatures_are_refused(world: World, clock: FakeClock) -> None:
    body = b'{"tag": "' + world.tag.encode() + b'"}'
    now = int(clock().timestamp())
    for created in (now - 61, now + 61):
        response = signed(world, clock, "POST", "/api/v1/station/sessions", body, created=created)
        assert (response.status_code, problem_code(response)) == (401, "invalid-signature")
    ok = signed(world, clock, "POST", "/api/v1/station/sessions", body, created=now - 59)
    assert ok.status_code == 201


def test_tampered_requests_are_refused(world: World, clock: FakeClock) -> None:
    body = b'{"tag": "' + world.tag.encode() + b'"}'
    other_body = b'{"tag": "' + b"0" * 64 + b'"}'
    swapped = signed(world, clock, "POST", "/api/v1/station/sessions", body, content=other_body)
    assert (swapped.status_code, problem_code(swapped)) == (400, "content-digest-mismatch")
    headers = signature_headers(
        world.paired.identity,
        world.station_id,
        "DELETE",
        f"/api/v1/station/sessions/{uuid.uuid4()}",
        b"",
        created=int(clock().timestamp()),
    )
    moved = world.client.delete(f"/api/v1/station/sessions/{uuid.uuid4()}", headers=headers)
    assert (moved.status_code, problem_code(moved)) == (401, "invalid-signature")
    stranger = new_identity()
    forged = signature_headers(
        stranger, world.station_id, "GET", "/api/v1/station/releases/x/content", b""
    )
    response = world.client.get("/api/v1/station/releases/x/content", headers=forged)
    assert (response.status_code, problem_code(response)) == (401, "invalid-signature")
    for garbage in ({}, {"Signature-Input": "sig1=()", "Signature": "sig1=:AA==:"}):
        response = world.client.post("/api/v1/station/sessions", json={}, headers=garbage)
        assert (response.status_code, problem_code(response)) == (401, "invalid-signature")


def test_revocation_is_immediate_at_the_service(service: CloudService, clock: FakeClock) -> None:
    paired = pair_station(service)
    from cloud.stations import SignedHttpRequest

    def request(nonce: str) -> SignedHttpRequest:
        headers = signature_headers(
            paired.identity,
            str(paired.id),
            "GET",
            "/api/v1/station/releases/r/content",
            b"",
            created=int(clock().timestamp()),
            nonce=nonce,
        )
        lower = {k.lower(): v for k, v in headers.items()}
        return SignedHttpRequest("GET", "/api/v1/station/releases/r/content", "", lower, b"")

    assert service.stations.authenticate(request("a" * 16)).id == paired.id
    service.stations.revoke(paired.id)
    with pytest.raises(StationRevokedError):
        service.stations.authenticate(request("b" * 16))
    with pytest.raises(InvalidSignatureError):
        service.stations.authenticate(request("b" * 15))  # a malformed nonce is refused first


def test_nonces_are_swept_once_stale(world: World, clock: FakeClock) -> None:
    service: CloudService = world.client.app.state.service  # type: ignore[attr-defined]
    world.session()
    with service.context.read() as db:
        assert db.scalar(select(func.count()).select_from(StationNonce)) == 1
    assert service.stations.sweep_nonces() == 0
    clock.advance(seconds=62)
    assert service.stations.sweep_nonces() == 1


def test_admin_revoke_route(world: World) -> None:
    path = f"/api/v1/admin/stations/{uuid.uuid4()}/revoke"
    assert world.client.post(path, headers=admin_headers()).status_code == 404
    assert isinstance(world.station, SignedAuth)
