"""Tenancy: an admin, user or station of one site reaches nothing of another, through any route.

The walk enumerates `app.routes` (every method), fills each path parameter with site B's ids
(alone and mixed with site A's own), and sends site A's credentials: the bootstrap admin (whose
site is the default one), A's site admin, A's user and A's paired station. No response may
carry anything of B's, none may succeed on B's objects, and afterwards B's objects are as they
were. The control walk with B's own credentials does reach them, so the checks can fail.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import pytest

from cloud.db import Job, Release, Station, StationSession
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

PRINTER_URI = "ipp://testserver/ipp/print"
PIN = "246813"
REFUSED = {401, 403, 404, 405, 409, 422}
# Routes that name no object of any site: they may answer, but must still leak nothing.
PUBLIC = {
    ("GET", "/healthz"),
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
    ("POST", "/api/v1/admin/sweep"),
    ("POST", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs"),
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
    secrets: list[str] = field(default_factory=list)

    def ids(self) -> dict[str, str]:
        return {
            "user_id": self.user_id,
            "job_id": self.job_id,
            "station_id": self.station_id,
            "session_id": self.session_id,
            "release_id": self.release_id,
        }

    def marks(self) -> list[str]:
        """Everything of this tenant that must never appear in another site's responses."""
        return [
            *self.ids().values(),
            self.email,
            self.display_name,
            self.job_name,
            self.station_name,
            self.tag,
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
    station_name = f"Printer of {who}"
    paired = pair_station(service, station_name, site=site)
    service.pins.set_pin(email, PIN, SITE_KEY, site)
    auth = SignedAuth(paired, clock)
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
        secrets=[token.partition(".")[2]],
    )


@pytest.fixture
def tenants(client: TestClient, clock: FakeClock) -> tuple[Tenant, Tenant]:
    service = cast(CloudService, client.app.state.service)  # type: ignore[attr-defined]
    site_a = service.sites.add("site-a")
    site_b = service.sites.add("site-b")
    a = make_tenant(client, clock, "site-a", bearer(site_a.admin_token), "alice")
    # B has IPP jobs 1 and 2, A only 1: asking for B's job 2 must not find it.
    b = make_tenant(client, clock, "site-b", bearer(site_b.admin_token), "bob", ipp_jobs=2)
    b.secrets.append(site_b.admin_token.partition(".")[2])
    return a, b


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
    if path == "/api/v1/station/sessions":
        return [
            {"tag": theirs.tag},
            {"email": theirs.email, "pin_tag": pin_tag(SITE_KEY, theirs.email, PIN)},
        ]
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
            "signing_key": "A" * 43,
            "exchange_key": "A" * 43,
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
        return (job.state, station.revoked_at, session.ended_at, release.state)


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
    }
    walked = routes(client)
    assert ("POST", "/ipp/print") in walked and len(walked) > 15
    failures = []
    for method, template in walked:
        for path in fillings(template, a, b):
            for who, credential in credentials.items():
                for body in bodies_for(template, b) if method == "POST" else [None]:
                    response = send(client, method, path, credential, b, body)
                    if found := leaks(response, b):
                        failures.append(f"{who} {method} {path}: leaked {found}")
                    if template == "/ipp/print":
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
    }
    for (method, path), credential in hits.items():
        response = send(client, method, path, credential, b)
        assert response.status_code == 200, (path, response.text)
        assert leaks(response, b), path
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
