"""Tenancy: an admin, user or station of one site reaches nothing of another, through any route.

The walk enumerates `app.routes` (every method), fills each path parameter with site B's ids
(alone and mixed with site A's own), and sends site A's credentials: the bootstrap admin (whose
site is the default one), A's site admin, A's user and A's paired station. No response may
carry anything of B's, none may succeed on B's objects, and afterwards B's objects are as they
were. The control walk with B's own credentials does reach them, so the checks can fail.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.db import (
    DiscoveredDeviceRow,
    Job,
    Printer,
    Release,
    Station,
    StationAssignment,
    StationSession,
    StationUpdateStatus,
)
from cloud.pins import pin_tag
from cloud.service import CloudService
from hardware.ipp.codec import Attribute, IppMessage, decode_message, encode_message
from hardware.ipp.enums import Operation, StatusCode, Tag
from tests.cloud.conftest import (
    ADMIN_TOKEN,
    SITE_KEY,
    FakeClock,
    SignedAuth,
    TestClient,
    bearer,
    pair_station,
    random_tag,
)
from tests.support.updates import probe_bundle

PRINTER_URI = "ipp://testserver/ipp/print"
PIN = "246813"
REFUSED = {401, 403, 404, 405, 409, 422}
# Routes that name no object of any site: they may answer, but must still leak nothing.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/metrics"),  # off without the scrape token; totals only, no site's names
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("HEAD", "/openapi.json"),
    ("HEAD", "/docs"),
    ("HEAD", "/docs/oauth2-redirect"),
    ("HEAD", "/redoc"),
    ("GET", "/ipp/about"),
    ("GET", "/ipp/icon.png"),
    ("GET", "/ipp/strings/en.strings"),
    ("POST", "/api/v1/pairing/requests"),
    ("POST", "/api/v1/pairing/grant"),  # RFC 8628 errors are 400s
}
# Routes that act only on the caller's own site (create or list there): success is allowed.
OWN_SITE = {
    ("POST", "/api/v1/admin/users"),
    ("GET", "/api/v1/admin/stations"),
    ("GET", "/api/v1/admin/users"),
    ("GET", "/api/v1/admin/jobs"),
    ("GET", "/api/v1/admin/audit"),
    ("POST", "/api/v1/admin/sweep"),
    ("POST", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs"),
    ("GET", "/api/v1/site"),
    ("GET", "/api/v1/delegations"),
    ("DELETE", "/api/v1/delegations/{delegate_id}"),  # idempotent: revoking none is a no-op
    ("GET", "/api/v1/admin/site-policy"),
    ("PUT", "/api/v1/admin/site-policy"),
    # devices: the registry and discovery lists of the caller's site, and a station's own
    # heartbeat and uploads (its printer is the one it is assigned to, never one it names).
    ("POST", "/api/v1/admin/printers"),
    ("GET", "/api/v1/admin/printers"),
    ("GET", "/api/v1/admin/discovered"),
    ("POST", "/api/v1/admin/discovered"),
    ("POST", "/api/v1/station/heartbeat"),
    ("POST", "/api/v1/station/device-data"),
    ("POST", "/api/v1/station/discovered"),
    ("GET", "/api/v1/admin/updates"),
    ("POST", "/api/v1/admin/updates"),
    ("GET", "/api/v1/admin/updates/policy"),
    ("PUT", "/api/v1/admin/updates/policy"),
    ("GET", "/api/v1/admin/updates/stations"),
    ("GET", "/api/v1/station/update"),
    ("POST", "/api/v1/station/update/report"),
    ("GET", "/api/v1/admin/identity-policy"),
    ("PATCH", "/api/v1/admin/identity-policy"),
    ("GET", "/api/v1/me/cards"),
    ("GET", "/api/v1/me/release-passcodes"),
    ("POST", "/api/v1/me/release-passcodes"),
    # An enrolment code for a tag in the station's own site: B's tag means nothing in A.
    ("POST", "/api/v1/station/enrolments"),
    ("POST", "/api/v1/admin/users/import"),
    ("GET", "/api/v1/station/wait"),  # the calling station's own releases (test_events.py)
}


@dataclass
class Tenant:
    """One site's admin, user (with a card, a held job, an IPP job) and station (in session)."""

    site: str
    admin: dict[str, str]
    user_id: str
    user: dict[str, str]
    email: str
    display_name: str
    tag: str
    job_id: str
    job_name: str
    station_id: str
    station_name: str
    station: SignedAuth
    session_id: str
    release_id: str
    ipp_job_id: int
    delegate_id: str
    delegate_email: str
    bundle_id: str
    version: str
    bundle_sha256: str
    card_id: str
    passcode_id: str
    passcode: str
    enrolment_code: str
    printer_id: str = ""
    printer_name: str = ""
    device_id: str = ""
    device_serial: str = ""
    secrets: list[str] = field(default_factory=list)
    # --- ipp-infra --- the tenant's INFRA output device (token) and a job fetchable by it
    infra_device: dict[str, str] = field(default_factory=dict)
    infra_uuid: str = ""
    infra_job_id: int = 0

    def ids(self) -> dict[str, str]:
        return {
            "user_id": self.user_id,
            "job_id": self.job_id,
            "station_id": self.station_id,
            "session_id": self.session_id,
            "release_id": self.release_id,
            "delegate_id": self.delegate_id,
            "printer_id": self.printer_id,
            "device_id": self.device_id,
            "bundle_id": self.bundle_id,
            "version": self.version,
            "card_id": self.card_id,
            "passcode_id": self.passcode_id,
        }

    def marks(self) -> list[str]:
        """Everything of this tenant that must never appear in another site's responses."""
        return [
            *self.ids().values(),
            self.email,
            self.display_name,
            self.job_name,
            self.station_name,
            self.printer_name,
            self.device_serial,
            self.tag,
            self.delegate_email,
            self.bundle_sha256,
            f"update detail of {self.station_name}",
            self.passcode,
            self.enrolment_code,
            *self.secrets,
        ]


def ipp(operation: Operation, *attributes: Attribute) -> bytes:
    request = IppMessage.request(
        operation, 1, Attribute.of("printer-uri", Tag.URI, PRINTER_URI), *attributes
    )
    return encode_message(request)


def make_tenant(
    client: TestClient,
    clock: FakeClock,
    site: str,
    admin: dict[str, str],
    who: str,
    ipp_jobs: int = 1,
    version: str = "1.0.0",
) -> Tenant:
    service = cast(CloudService, client.app.state.service)  # type: ignore[attr-defined]
    email, name = f"{who}@{site}.example", f"{who.title()} of {site}"
    user = client.post(
        "/api/v1/admin/users", json={"email": email, "display_name": name}, headers=admin
    )
    assert user.status_code == 201, user.text
    user_id, token = user.json()["id"], user.json()["api_token"]
    tag = random_tag()
    card = client.post(
        f"/api/v1/admin/users/{user_id}/cards", json={"tag": tag, "label": "b"}, headers=admin
    )
    assert card.status_code == 201, card.text
    card_id = card.json()["id"]
    policy = client.patch(
        "/api/v1/admin/identity-policy",
        json={"self_enrolment": True, "passcode_mode": "long-lived"},
        headers=admin,
    )
    assert policy.status_code == 200, policy.text
    passcode = client.post("/api/v1/me/release-passcodes", json={}, headers=bearer(token))
    assert passcode.status_code == 201, passcode.text
    job_name = f"secret-plan-{who}.txt"
    for name_ in (job_name, f"second-{who}.txt"):
        job = client.post(
            "/api/v1/jobs",
            params={"name": name_},
            content=b"content of " + who.encode(),
            headers={**bearer(token), "Content-Type": "text/plain"},
        )
        assert job.status_code == 201, job.text
        if name_ == job_name:
            job_id = job.json()["id"]
    delegate_email = f"{who}-deputy@{site}.example"
    deputy = client.post(
        "/api/v1/admin/users",
        json={"email": delegate_email, "display_name": f"Deputy of {who}"},
        headers=admin,
    )
    assert deputy.status_code == 201, deputy.text
    delegated = client.post(
        "/api/v1/delegations", json={"email": delegate_email}, headers=bearer(token)
    )
    assert delegated.status_code == 201, delegated.text
    station_name = f"Printer of {who}"
    paired = pair_station(service, station_name, site=site)
    service.pins.set_pin(email, PIN, SITE_KEY, site)
    auth = SignedAuth(paired, clock)
    offered = client.post("/api/v1/station/enrolments", json={"tag": random_tag()}, auth=auth)
    assert offered.status_code == 201, offered.text
    opened = client.post("/api/v1/station/sessions", json={"tag": tag}, auth=auth)
    assert opened.status_code == 201, opened.text
    session_id = opened.json()["session_id"]
    released = client.post(
        f"/api/v1/station/sessions/{session_id}/releases",
        json={"job_ids": [job_id]},
        auth=auth,
    )
    assert released.status_code == 201, released.text
    release_id = released.json()["releases"][0]["id"]
    # Another held job for the job routes (the first is on its way to the printer).
    held = client.get("/api/v1/jobs", headers=bearer(token)).json()["jobs"]
    for _ in range(ipp_jobs):  # the last one is the tenant's IPP job
        created = client.post(
            "/ipp/print",
            content=ipp(
                Operation.CREATE_JOB,
                Attribute.of("job-name", Tag.NAME_WITHOUT_LANGUAGE, job_name),
            ),
            headers={**bearer(token), "Content-Type": "application/ipp"},
        )
    reply, _ = decode_message(created.content)
    assert reply.status_code == StatusCode.SUCCESSFUL_OK
    ipp_job_id = reply.get_int(Tag.JOB_ATTRIBUTES, "job-id")
    assert ipp_job_id is not None
    printer_name, serial = f"Printer-{who}-hall", f"SERIAL-{who.upper()}-77"
    printer = client.post(
        "/api/v1/admin/printers",
        json={"name": printer_name, "uri": f"ipp://{who}.example/ipp/print"},
        headers=admin,
    )
    assert printer.status_code == 201, printer.text
    printer_id = printer.json()["id"]
    client.put(f"/api/v1/admin/printers/{printer_id}/stations/{paired.id}", headers=admin)
    status = {"status_words": f"Status of {who}", "errors": []}
    sent = client.post(
        "/api/v1/station/device-data",
        json={"status": status, "alerts": [{"severity": "warning", "words": f"alert {who}"}]},
        auth=auth,
    )
    assert sent.status_code == 204, sent.text
    found = client.post(
        "/api/v1/station/discovered",
        json={"devices": [{"addresses": ["10.9.9.9"], "serial_number": serial}]},
        auth=auth,
    )
    assert found.status_code == 200, found.text
    listed = client.get("/api/v1/admin/discovered", headers=admin).json()["devices"]
    device_id = listed[0]["id"]
    # A published update bundle, and the station's update report.
    with tempfile.TemporaryDirectory() as temp:
        key = Ed25519PrivateKey.generate()
        bundle = probe_bundle(Path(temp) / "u.bundle", key, version).read_bytes()
    published = client.post(
        "/api/v1/admin/updates",
        content=bundle,
        headers={**admin, "Content-Type": "application/x-tar"},
    )
    assert published.status_code == 201, published.text
    reported = client.post(
        "/api/v1/station/update/report",
        json={"state": "available", "detail": f"update detail of {station_name}"},
        auth=auth,
    )
    assert reported.status_code == 200, reported.text
    return Tenant(
        site=site,
        admin=admin,
        user_id=user_id,
        user=bearer(token),
        email=email,
        display_name=name,
        tag=tag,
        job_id=held[0]["id"],
        job_name=job_name,
        station_id=str(paired.id),
        station_name=station_name,
        station=auth,
        session_id=session_id,
        release_id=release_id,
        ipp_job_id=ipp_job_id,
        delegate_id=deputy.json()["id"],
        delegate_email=delegate_email,
        printer_id=printer_id,
        printer_name=printer_name,
        device_id=device_id,
        device_serial=serial,
        bundle_id=published.json()["id"],
        version=version,
        bundle_sha256=published.json()["sha256"],
        card_id=card_id,
        passcode_id=passcode.json()["id"],
        passcode=passcode.json()["passcode"],
        enrolment_code=offered.json()["code"],
        secrets=[token.partition(".")[2]],
    )


@pytest.fixture
def tenants(client: TestClient, clock: FakeClock) -> tuple[Tenant, Tenant]:
    service = cast(CloudService, client.app.state.service)  # type: ignore[attr-defined]
    site_a = service.sites.add("site-a")
    site_b = service.sites.add("site-b")
    a = make_tenant(client, clock, "site-a", bearer(site_a.admin_token), "alice")
    # B has IPP jobs 1 and 2, A only 1: asking for B's job 2 must not find it.
    b = make_tenant(
        client, clock, "site-b", bearer(site_b.admin_token), "bob", ipp_jobs=2, version="7.7.7"
    )
    kept = client.put(
        "/api/v1/admin/site-policy",
        json={"keep_printed": True, "job_expiry_h": 30},
        headers=bearer(site_b.admin_token),
    )
    assert kept.status_code == 200, kept.text
    b.secrets.append(site_b.admin_token.partition(".")[2])
    add_infra(client, a)
    add_infra(client, b)
    return a, b


# --- ipp-infra ---
INFRA_URI = "ipp://testserver/ipp/infra"


def infra_ipp(operation: Operation, *attributes: Attribute) -> bytes:
    request = IppMessage.request(
        operation, 1, Attribute.of("printer-uri", Tag.URI, INFRA_URI), *attributes
    )
    return encode_message(request)


def add_infra(client: TestClient, t: Tenant) -> None:
    """Give the tenant's printer a registered output device with one fetchable job."""
    from cloud.identity import StationPrincipal
    from cloud.ipp.infra_store import Infra

    service = cast(CloudService, client.app.state.service)  # type: ignore[attr-defined]
    infra = cast(Infra, client.app.state.infra.infra)  # type: ignore[attr-defined]
    issued = infra.issue_token(t.site, uuid.UUID(t.station_id))
    t.infra_device = bearer(issued.token)
    t.infra_uuid = f"urn:uuid:{uuid.uuid4()}"
    t.secrets.append(issued.token.partition(".")[2])
    registered = client.post(
        "/ipp/infra",
        content=infra_ipp(
            Operation.REGISTER_OUTPUT_DEVICE,
            Attribute.of("output-device-uuid", Tag.URI, t.infra_uuid),
        ),
        headers={**t.infra_device, "Content-Type": "application/ipp"},
    )
    assert decode_message(registered.content)[0].is_success
    job = client.post(
        "/api/v1/jobs",
        params={"name": f"infra-{t.job_name}"},
        content=b"infra content",
        headers={**t.user, "Content-Type": "text/plain"},
    )
    assert job.status_code == 201, job.text
    station = StationPrincipal(uuid.UUID(t.station_id), t.site, t.station_name, "ipp://x")
    [made] = infra.release(station, uuid.UUID(t.session_id), [uuid.UUID(job.json()["id"])])
    t.infra_job_id = made.infra_job_id
    assert service is not None


def routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) the app serves; included routers are expanded (FastAPI >= 0.120
    keeps them as one entry of `app.routes` each, with their routes inside)."""
    out: list[tuple[str, str]] = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        inner = getattr(route, "effective_route_contexts", None)
        for each in list(inner()) if inner is not None else [route]:
            for method in sorted(getattr(each, "methods", None) or ()):
                out.append((method, cast(str, each.path)))
    return sorted(set(out))


def fillings(path: str, mine: Tenant, theirs: Tenant) -> list[str]:
    """The path with each parameter set to B's id, alone (others A's) and all at once."""
    params = re.findall(r"{(\w+)}", path)
    if not params:
        return [path]
    out = []
    for target in [*params, None]:
        filled = path
        for name in params:
            owner = theirs if target in (None, name) else mine
            value = str(owner.ipp_job_id) if name == "job_id" and path.startswith("/ipp") else None
            filled = filled.replace("{" + name + "}", value or owner.ids()[name])
        out.append(filled)
    return list(dict.fromkeys(out))


def bodies_for(path: str, theirs: Tenant) -> list[dict[str, Any]]:
    """Request bodies naming B's things: its badge tag, its user's email and PIN, its jobs."""
    if path == "/api/v1/delegations":
        return [{"email": theirs.email}, {"email": theirs.delegate_email}]
    if path == "/api/v1/station/sessions":
        return [
            {"tag": theirs.tag},
            {"email": theirs.email, "pin_tag": pin_tag(SITE_KEY, theirs.email, PIN)},
            {"tag": theirs.tag, "pin_tag": pin_tag(SITE_KEY, theirs.email, PIN)},
            {"passcode": theirs.passcode},
        ]
    if path == "/api/v1/me/enrolments":
        return [{"code": theirs.enrolment_code, "label": "x"}]
    if path == "/api/v1/admin/users/import":
        row = {"line": 2, "email": "new-user@example.org", "name": "N", "tag": theirs.tag}
        return [{"rows": [row]}]
    return [
        {
            "email": "new-user@example.org",
            "display_name": "New",
            "tag": theirs.tag,
            "label": "x",
            "job_ids": [theirs.job_id],
            "all": False,
            "outcome": "failed",
            "reason": "x",
            "device_code": "x" * 20,
            "policy": "off",
            "target_version": theirs.version,
            "state": "healthy",
            "signing_key": "A" * 43,
            "exchange_key": "A" * 43,
            "code": theirs.enrolment_code,
            "passcode": theirs.passcode,
        }
    ]


def send(
    client: TestClient,
    method: str,
    path: str,
    credential: Any,
    theirs: Tenant,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    kwargs: dict[str, Any] = {}
    if isinstance(credential, httpx.Auth):
        kwargs["auth"] = credential
    else:
        kwargs["headers"] = dict(credential)
    if path == "/ipp/print":
        kwargs.setdefault("headers", {})["Content-Type"] = "application/ipp"
        target = Attribute.of("job-id", Tag.INTEGER, theirs.ipp_job_id)
        kwargs["content"] = ipp(Operation.GET_JOB_ATTRIBUTES, target)
    elif path == "/ipp/infra":  # --- ipp-infra --- fetch B's fetchable job
        kwargs.setdefault("headers", {})["Content-Type"] = "application/ipp"
        target = Attribute.of("job-id", Tag.INTEGER, theirs.infra_job_id)
        kwargs["content"] = infra_ipp(Operation.FETCH_JOB, target)
    elif method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = body if body is not None else bodies_for(path, theirs)[0]
        if path == "/api/v1/jobs":
            kwargs["params"] = {"name": "mine.txt"}
    response = client.request(method, path, **kwargs)
    assert isinstance(response, httpx.Response)
    return response


def leaks(response: httpx.Response, theirs: Tenant) -> list[str]:
    text = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
    return [mark for mark in theirs.marks() if mark.lower() in text.lower()]


def b_state(service: CloudService, b: Tenant) -> tuple[Any, ...]:
    with service.context.read() as db:
        job = db.get(Job, uuid.UUID(b.job_id))
        station = db.get(Station, uuid.UUID(b.station_id))
        session = db.get(StationSession, uuid.UUID(b.session_id))
        release = db.get(Release, uuid.UUID(b.release_id))
        assert job and station and session and release
        policy = service.policies.get(b.site)
        delegates = [d.delegate_id for d in service.delegations.list_granted(_principal(b))]
        printer = db.get(Printer, uuid.UUID(b.printer_id))
        device = db.get(DiscoveredDeviceRow, uuid.UUID(b.device_id))
        assignment = db.get(StationAssignment, uuid.UUID(b.station_id))
        assert printer and device and assignment
        update = db.get(StationUpdateStatus, uuid.UUID(b.station_id))
        assert update is not None
        updates = (update.state, update.detail)
        objects = (
            job.state,
            station.revoked_at,
            session.ended_at,
            release.state,
            policy,
            delegates,
            (printer.config_version, printer.uri),
            (device.printer_id, device.data),
            assignment.printer_id,
            service.devices.data(uuid.UUID(b.printer_id), "site-b"),
            updates,
            [v.version for v in service.updates.published(b.site)],
            service.updates.policy(b.site),
        )
    cards = service.identity.list_cards(uuid.UUID(b.user_id), b.site)
    passcodes = service.release_passcodes.list_for(uuid.UUID(b.user_id), b.site)
    return (
        *objects,
        [card.id for card in cards],
        [(p.id, p.revoked_at, p.used_at) for p in passcodes],
        service.identity.policy(b.site),
    )


def _principal(tenant: Tenant) -> Any:
    from cloud.identity import UserPrincipal

    return UserPrincipal(uuid.UUID(tenant.user_id), tenant.site, tenant.email, tenant.display_name)


def test_site_a_reaches_nothing_of_site_b_through_any_route(
    client: TestClient, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    service = cast(CloudService, client.app.state.service)  # type: ignore[attr-defined]
    before = b_state(service, b)
    credentials = {
        "bootstrap admin": bearer(ADMIN_TOKEN),
        "site admin": a.admin,
        "user": a.user,
        "station": a.station,
        "output device": a.infra_device,
    }
    walked = routes(client)
    assert ("POST", "/ipp/print") in walked and len(walked) > 15
    failures = []
    for method, template in walked:
        for path in fillings(template, a, b):
            for who, credential in credentials.items():
                for body in bodies_for(template, b) if method in ("POST", "PATCH") else [None]:
                    response = send(client, method, path, credential, b, body)
                    if found := leaks(response, b):
                        failures.append(f"{who} {method} {path}: leaked {found}")
                    if template in ("/ipp/print", "/ipp/infra"):
                        if response.status_code == 200:
                            reply, _ = decode_message(response.content)
                            if reply.status_code != StatusCode.CLIENT_ERROR_NOT_FOUND:
                                failures.append(f"{who} IPP: reached B's job ({reply.status_code})")
                        elif response.status_code not in REFUSED:
                            failures.append(f"{who} IPP: {response.status_code}")
                        continue
                    allowed = (method, template) in PUBLIC | OWN_SITE
                    if response.status_code not in REFUSED and not allowed:
                        failures.append(f"{who} {method} {path}: {response.status_code}")
    assert failures == [], "\n".join(failures)
    assert b_state(service, b) == before
    # Nothing was created in B either.
    assert [s.id for s in service.stations.list("site-b")] == [uuid.UUID(b.station_id)]
    listed = client.get("/api/v1/jobs", headers=b.user).json()["jobs"]
    assert [job["id"] for job in listed] == [b.job_id]


def test_the_control_walk_with_site_b_credentials_does_reach_b(
    client: TestClient, tenants: tuple[Tenant, Tenant]
) -> None:
    """The same requests with B's credentials find B's objects: the walk can fail."""
    _, b = tenants
    hits = {
        ("GET", f"/api/v1/admin/stations/{b.station_id}"): b.admin,
        ("GET", f"/api/v1/admin/jobs/{b.job_id}"): b.admin,
        ("GET", "/api/v1/admin/stations"): b.admin,
        ("GET", "/api/v1/jobs"): b.user,
        ("GET", "/api/v1/delegations"): b.user,
        ("GET", f"/api/v1/admin/printers/{b.printer_id}"): b.admin,
        ("GET", "/api/v1/admin/printers"): b.admin,
        ("GET", "/api/v1/admin/discovered"): b.admin,
        ("GET", "/api/v1/admin/updates"): b.admin,
        ("GET", "/api/v1/admin/updates/stations"): b.admin,
        ("GET", "/api/v1/station/update"): b.station,
        ("GET", f"/api/v1/admin/users/{b.user_id}/cards"): b.admin,
        ("GET", "/api/v1/me/cards"): b.user,
        # --- station-entry --- a phone release's grant, fetched by the station it was made for
        ("GET", f"/api/v1/station/releases/{b.release_id}"): b.station,
    }
    for (method, path), credential in hits.items():
        response = send(client, method, path, credential, b)
        assert response.status_code == 200, (path, response.text)
        assert leaks(response, b), path
    infra_reply = send(client, "POST", "/ipp/infra", b.infra_device, b)  # --- ipp-infra ---
    fetched, _ = decode_message(infra_reply.content)
    assert fetched.status_code == StatusCode.SUCCESSFUL_OK
    assert leaks(infra_reply, b)
    ipp_reply = send(client, "POST", "/ipp/print", b.user, b)
    reply, _ = decode_message(ipp_reply.content)
    assert reply.status_code == StatusCode.SUCCESSFUL_OK
    assert leaks(ipp_reply, b)
    ended = send(client, "DELETE", f"/api/v1/station/sessions/{b.session_id}", b.station, b)
    assert ended.status_code == 204
    for body in bodies_for("/api/v1/station/sessions", b):
        opened = send(client, "POST", "/api/v1/station/sessions", b.station, b, body)
        assert opened.status_code == 201, opened.text
        assert leaks(opened, b)
    redeemed = send(client, "POST", "/api/v1/me/enrolments", b.user, b, {"code": b.enrolment_code})
    assert redeemed.status_code == 201, redeemed.text


def test_ipp_job_ids_are_per_site_and_lists_stay_in_the_site(
    client: TestClient, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    assert (a.ipp_job_id, b.ipp_job_id) == (1, 2)  # job 1 exists in both sites
    listing = ipp(Operation.GET_JOBS, Attribute.of("which-jobs", Tag.KEYWORD, "all"))
    response = client.post(
        "/ipp/print", content=listing, headers={**a.user, "Content-Type": "application/ipp"}
    )
    reply, _ = decode_message(response.content)
    names = [g.get("job-name") for g in reply.groups_of(Tag.JOB_ATTRIBUTES)]
    assert len(names) == 1 and not leaks(response, b)
    cancel = ipp(Operation.CANCEL_JOB, Attribute.of("job-id", Tag.INTEGER, 1))
    client.post("/ipp/print", content=cancel, headers={**a.user, "Content-Type": "application/ipp"})
    mine = client.post(
        "/ipp/print", content=listing, headers={**b.user, "Content-Type": "application/ipp"}
    )
    reply_b, _ = decode_message(mine.content)
    states = [g.get_int("job-state") for g in reply_b.groups_of(Tag.JOB_ATTRIBUTES)]
    assert states and 7 not in states  # B's job 1 was not canceled by A's cancel of job 1


def test_site_admin_tokens(service: CloudService) -> None:
    issued = service.sites.add("branch-2")
    assert issued.admin_token.startswith(f"ppa_{issued.id}.")
    assert service.sites.authenticate_admin(issued.admin_token).site == "branch-2"
    assert service.sites.authenticate_admin(ADMIN_TOKEN).site == service.config.site
    from cloud.errors import InvalidRequestError, SiteExistsError, UnauthorizedError

    for wrong in (issued.admin_token + "x", f"ppa_{uuid.uuid4()}.x", "", "ppa_.", "ppu_x.y"):
        with pytest.raises(UnauthorizedError):
            service.sites.authenticate_admin(wrong)
    with pytest.raises(SiteExistsError):
        service.sites.add("branch-2")
    with pytest.raises(InvalidRequestError):
        service.sites.add("Bad Name")
    assert [s.name for s in service.sites.list()] == ["branch-2", service.config.site]
    service.sites.ensure_default()  # idempotent


def test_a_site_admin_may_not_sweep_every_site(client: TestClient) -> None:
    service = cast(CloudService, client.app.state.service)  # type: ignore[attr-defined]
    issued = service.sites.add("branch-3")
    refused = client.post("/api/v1/admin/sweep", headers=bearer(issued.admin_token))
    assert refused.status_code == 403
    assert client.post("/api/v1/admin/sweep", headers=bearer(ADMIN_TOKEN)).status_code == 200


def test_rows_go_only_into_sites_that_exist(service: CloudService) -> None:
    from cloud.errors import NotFoundError

    with pytest.raises(NotFoundError):
        service.identity.create_user("ada@example.org", "Ada", "no-such-site")
    with pytest.raises(NotFoundError):
        pair_station(service, site="no-such-site")
    assert service.stations.list("no-such-site") == []


# --- station-entry ---


def test_a_phone_release_reaches_only_the_users_own_site(
    client: TestClient, tenants: tuple[Tenant, Tenant]
) -> None:
    """POST /api/v1/me/printers/{id}/releases: A's user cannot release to B's printer, nor
    release B's jobs to A's printer (by id or with "all"); B's user can, to B's printer."""
    a, b = tenants
    service = cast(CloudService, client.app.state.service)  # type: ignore[attr-defined]
    before = b_state(service, b)
    to_b = client.post(
        f"/api/v1/me/printers/{b.printer_id}/releases", json={"all": True}, headers=a.user
    )
    assert to_b.status_code == 404 and to_b.json()["code"] == "printer-not-found"
    theirs = client.post(
        f"/api/v1/me/printers/{a.printer_id}/releases",
        json={"job_ids": [b.job_id]},
        headers=a.user,
    )
    assert theirs.status_code == 404 and theirs.json()["code"] == "job-not-found"
    mine = client.post(
        f"/api/v1/me/printers/{a.printer_id}/releases", json={"all": True}, headers=a.user
    )
    assert mine.status_code == 201, mine.text
    assert mine.json()["station_id"] == a.station_id and not leaks(mine, b)
    assert mine.json()["releases"] and "data_key" not in mine.text
    # The station of A may fetch A's grants, never B's.
    for item in mine.json()["releases"]:
        grant = client.get(f"/api/v1/station/releases/{item['id']}", auth=a.station)
        assert grant.status_code == 200 and grant.json()["data_key"]
    refused = client.get(f"/api/v1/station/releases/{b.release_id}", auth=a.station)
    assert refused.status_code == 404
    assert b_state(service, b) == before
    control = client.post(
        f"/api/v1/me/printers/{b.printer_id}/releases",
        json={"job_ids": [b.job_id]},
        headers=b.user,
    )
    assert control.status_code == 201, control.text
    assert control.json()["station_id"] == b.station_id and leaks(control, b)
