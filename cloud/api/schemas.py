"""The JSON shapes of REST API v1 (see API.md), and conversions from domain views.

Times are ISO-8601 UTC strings ending in `Z`; ids are UUID strings.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from cloud.delegations import DelegationView
from cloud.jobs import JobView
from cloud.policies import JobNames, Policy
from cloud.releases import ReleaseGrant
from cloud.sessions import SessionView
from cloud.stations import StationView


def iso(moment: datetime | None) -> str | None:
    """An aware datetime as an ISO-8601 UTC string (`...Z`)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso(moment: datetime) -> str:
    text = iso(moment)
    assert text is not None
    return text


# -- requests -------------------------------------------------------------------------------


class CreateUserRequest(BaseModel):
    """POST /api/v1/admin/users."""

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    display_name: str = Field(min_length=1, max_length=200)


class AddCardRequest(BaseModel):
    """POST /api/v1/admin/users/{user_id}/cards (the tag is checked by the domain)."""

    tag: str = Field(max_length=256)
    label: str = Field(default="", max_length=200)


class PairingRequestBody(BaseModel):
    """POST /api/v1/pairing/requests: the station's raw public keys, base64url (RFC 4648 §5)."""

    signing_key: str = Field(min_length=43, max_length=44, description="Ed25519 public key")
    exchange_key: str = Field(min_length=43, max_length=44, description="X25519 public key")


class PairingGrantRequest(BaseModel):
    """POST /api/v1/pairing/grant: the RFC 8628 §3.4 device access token request."""

    device_code: str = Field(min_length=1, max_length=128)


class OpenSessionRequest(BaseModel):
    """POST /api/v1/station/sessions: a badge `tag` (with a `pin_tag` under card + PIN), or
    `email` + `pin_tag`, or a release `passcode` typed on the keypad."""

    tag: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, min_length=1, max_length=320)
    pin_tag: str | None = Field(default=None, max_length=256)
    passcode: str | None = Field(default=None, min_length=1, max_length=32)

    @model_validator(mode="after")
    def _one_credential(self) -> OpenSessionRequest:
        badge = self.tag is not None and self.email is None and self.passcode is None
        pin = self.email is not None and self.pin_tag is not None
        pin = pin and self.tag is None and self.passcode is None
        passcode = self.passcode is not None and self.pin_tag is None
        passcode = passcode and self.tag is None and self.email is None
        if badge + pin + passcode != 1:
            raise ValueError(
                "send a tag (and a pin_tag when the site asks for one), an email and a "
                "pin_tag, or a passcode"
            )
        return self


class CreateReleasesRequest(BaseModel):
    """POST .../releases: either `job_ids` or `"all": true`."""

    job_ids: list[uuid.UUID] | None = Field(default=None, max_length=1000)
    all: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> CreateReleasesRequest:
        if self.all == (self.job_ids is not None):
            raise ValueError('give either "job_ids" or "all": true')
        return self


class OutcomeRequest(BaseModel):
    """POST /api/v1/station/releases/{release_id}/outcome."""

    outcome: Literal["printed", "failed", "cancelled"]
    reason: str | None = Field(default=None, max_length=2000)
    printer_job_id: int | None = None


class SitePolicyRequest(BaseModel):
    """PUT /api/v1/admin/site-policy: the fields to change (absent: unchanged)."""

    zero_knowledge: bool | None = None
    public_key: str | None = Field(
        default=None, min_length=43, max_length=44, description="X25519 public key, base64url"
    )
    job_names: Literal["keep", "hide", "drop"] | None = None
    job_expiry_h: int | None = Field(default=None, ge=1, le=24 * 90)
    quota_bytes: int | None = Field(default=None, ge=0, description="0: no quota")
    keep_printed: bool | None = None
    release_all_on_tap: bool | None = None


class DelegationRequest(BaseModel):
    """POST /api/v1/delegations: let this user (same site) release my jobs."""

    email: str = Field(min_length=3, max_length=320)


# -- responses ------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    """RFC 4648 §5 without padding."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def from_b64url(text: str) -> bytes:
    """Inverse of `b64url`; raises ValueError (binascii.Error) on bad input."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SitePolicyView(BaseModel):
    """A site's job policies (GET/PUT /api/v1/admin/site-policy, and users' GET /api/v1/site)."""

    site: str
    zero_knowledge: bool
    public_key: str | None
    job_names: str
    job_expiry_h: int
    quota_bytes: int | None
    keep_printed: bool
    release_all_on_tap: bool

    @classmethod
    def of(cls, policy: Policy) -> SitePolicyView:
        """From the domain policy."""
        return cls(
            site=policy.site,
            zero_knowledge=policy.zero_knowledge,
            public_key=b64url(policy.public_key) if policy.public_key else None,
            job_names=str(policy.job_names),
            job_expiry_h=policy.job_expiry_h,
            quota_bytes=policy.quota_bytes,
            keep_printed=policy.keep_printed,
            release_all_on_tap=policy.release_all_on_tap,
        )


class UserSite(BaseModel):
    """GET /api/v1/site: what a submitter needs (the site key to seal to) and their usage."""

    policy: SitePolicyView
    held_bytes: int


class DelegationItem(BaseModel):
    """One delegation an owner granted."""

    delegate_id: str
    email: str
    display_name: str
    created_at: str

    @classmethod
    def of(cls, view: DelegationView) -> DelegationItem:
        """From the domain view."""
        return cls(
            delegate_id=str(view.delegate_id),
            email=view.delegate_email,
            display_name=view.delegate_name,
            created_at=_iso(view.created_at),
        )


class DelegationList(BaseModel):
    """GET /api/v1/delegations."""

    delegations: list[DelegationItem]


def policy_job_names(value: str | None) -> JobNames | None:
    """The request's job-name policy as the domain's enum."""
    return JobNames(value) if value is not None else None


class Health(BaseModel):
    """GET /healthz."""

    status: str


class CreatedUser(BaseModel):
    """A new user with their token (shown once)."""

    id: str
    email: str
    display_name: str
    api_token: str


class CreatedCard(BaseModel):
    """An enrolled card."""

    id: str
    user_id: str
    label: str


class IssuedPairingResponse(BaseModel):
    """The RFC 8628 §3.2 device authorization response (plus the request id, the grant's AAD)."""

    request_id: str
    device_code: str
    user_code: str
    expires_in: int
    interval: int


class PairingGrantResponse(BaseModel):
    """An approved pairing: the grant sealed to the station's X25519 key (base64url)."""

    request_id: str
    station_id: str
    sealed_grant: str


class AdminStation(BaseModel):
    """A station as an admin sees it (its key only as a fingerprint)."""

    id: str
    site: str
    name: str
    printer_uri: str
    fingerprint: str | None
    created_at: str
    revoked_at: str | None

    @classmethod
    def of(cls, view: StationView) -> AdminStation:
        """From the domain view."""
        return cls(
            id=str(view.id),
            site=view.site,
            name=view.name,
            printer_uri=view.printer_uri,
            fingerprint=view.fingerprint,
            created_at=_iso(view.created_at),
            revoked_at=iso(view.revoked_at),
        )


class AdminStations(BaseModel):
    """GET /api/v1/admin/stations."""

    stations: list[AdminStation]


class AdminJob(BaseModel):
    """GET /api/v1/admin/jobs/{job_id}."""

    id: str
    owner_id: str
    site: str
    name: str
    format: str
    state: str
    size_bytes: int
    content_bytes: int
    sha256: str | None
    copies: int
    pages: int | None
    content_held: bool
    zero_knowledge: bool = False
    submitted_at: str
    expires_at: str
    printed_at: str | None

    @classmethod
    def of(cls, job: JobView) -> AdminJob:
        """From the domain view."""
        return cls(
            id=str(job.id),
            owner_id=str(job.owner_id),
            site=job.site,
            name=job.name,
            format=job.document_format,
            state=str(job.state),
            size_bytes=job.size_bytes,
            content_bytes=job.content_bytes,
            sha256=job.sha256,
            copies=job.copies,
            pages=job.pages,
            content_held=job.content_held,
            zero_knowledge=job.zero_knowledge,
            submitted_at=_iso(job.submitted_at),
            expires_at=_iso(job.expires_at),
            printed_at=iso(job.printed_at),
        )


class SweepResult(BaseModel):
    """POST /api/v1/admin/sweep."""

    expired_jobs: int
    expired_leases: int


class UserJob(BaseModel):
    """A job as its owner sees it."""

    id: str
    name: str
    format: str
    size_bytes: int
    sha256: str | None
    copies: int
    pages: int | None
    state: str
    submitted_at: str
    expires_at: str
    sides: str | None = None
    color_mode: str | None = None
    zero_knowledge: bool = False
    reprintable: bool = False

    @classmethod
    def of(cls, job: JobView) -> UserJob:
        """From the domain view."""
        return cls(
            id=str(job.id),
            name=job.name,
            format=job.document_format,
            size_bytes=job.size_bytes,
            sha256=job.sha256,
            copies=job.copies,
            pages=job.pages,
            state=str(job.state),
            submitted_at=_iso(job.submitted_at),
            expires_at=_iso(job.expires_at),
            sides=job.sides,
            color_mode=job.color_mode,
            zero_knowledge=job.zero_knowledge,
            reprintable=job.reprintable,
        )


class UserJobs(BaseModel):
    """GET /api/v1/jobs."""

    jobs: list[UserJob]


class SessionUser(BaseModel):
    """Who tapped."""

    display_name: str


class SessionJob(BaseModel):
    """A job as the station lists it."""

    id: str
    name: str
    format: str
    size_bytes: int
    pages: int | None
    copies: int
    submitted_at: str
    expires_at: str
    sides: str | None = None
    color_mode: str | None = None
    state: str = "held"
    owner_name: str | None = Field(
        default=None, description="set for a job another user delegated releasing of"
    )

    @classmethod
    def of(cls, job: JobView, owner_name: str | None = None) -> SessionJob:
        """From the domain view."""
        return cls(**session_job_fields(job, owner_name))


def session_job_fields(job: JobView, owner_name: str | None = None) -> dict[str, Any]:
    """`SessionJob`'s fields of a job, as JSON values."""
    return {
        "id": str(job.id),
        "name": job.name,
        "format": job.document_format,
        "size_bytes": job.size_bytes,
        "pages": job.pages,
        "copies": job.copies,
        "submitted_at": _iso(job.submitted_at),
        "expires_at": _iso(job.expires_at),
        "sides": job.sides,
        "color_mode": job.color_mode,
        "state": str(job.state),
        "owner_name": owner_name,
    }


class OpenedSession(BaseModel):
    """POST /api/v1/station/sessions."""

    session_id: str
    user: SessionUser
    expires_at: str
    jobs: list[SessionJob]
    release_all: bool = Field(
        default=False, description="the site releases every held job on tap (touchless)"
    )


def opened_session_json(session: SessionView) -> bytes:
    """`OpenedSession` of a session, as the JSON body of the badge tap's answer.

    Built without the models: validating one model per listed job, then the whole answer once
    more as FastAPI's response model, was a tenth of the tap's CPU. `OpenedSession` stays the
    documented schema; tests/cloud/test_api.py holds this body to it, field for field.
    """
    delegated = session.delegated
    return json.dumps(
        {
            "session_id": str(session.id),
            "user": {"display_name": session.display_name},
            "expires_at": _iso(session.expires_at),
            "jobs": [session_job_fields(job, delegated.get(job.id)) for job in session.jobs],
            "release_all": session.release_all,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


class ReleaseItem(BaseModel):
    """One release as the station receives it.

    `key_wrap` "master": `data_key` is base64 of the 32-byte key. `key_wrap` "hpke"
    (zero-knowledge site): `data_key` is absent and `wrapped_key` (base64) is the data key
    wrapped to the site's X25519 key (`cloud.container.hpke_unwrap_key`).
    """

    id: str
    job_id: str
    name: str
    format: str
    copies: int
    size_bytes: int
    content_bytes: int
    user_name: str
    data_key: str | None
    site: str
    state: str
    key_wrap: Literal["master", "hpke"] = "master"
    wrapped_key: str | None = None
    owner_name: str | None = None
    reprint: bool = False

    @classmethod
    def of(cls, grant: ReleaseGrant) -> ReleaseItem:
        """From the domain grant."""
        return cls(
            id=str(grant.id),
            job_id=str(grant.job_id),
            name=grant.name,
            format=grant.document_format,
            copies=grant.copies,
            size_bytes=grant.size_bytes,
            content_bytes=grant.content_bytes,
            user_name=grant.user_name,
            data_key=base64.b64encode(grant.data_key).decode("ascii")
            if grant.data_key is not None
            else None,
            site=grant.site,
            state=str(grant.state),
            key_wrap="hpke" if grant.wrapped_key is not None else "master",
            wrapped_key=base64.b64encode(grant.wrapped_key).decode("ascii")
            if grant.wrapped_key is not None
            else None,
            owner_name=grant.owner_name,
            reprint=grant.reprint,
        )


class CreatedReleases(BaseModel):
    """POST .../releases."""

    releases: list[ReleaseItem]


class OutcomeResult(BaseModel):
    """POST .../outcome."""

    id: str
    state: str


# --- cloud-scale ---


class StationWake(BaseModel):
    """What a station's long-poll returns: why it woke (empty on timeout) and the releases
    requested for it and not yet fetched."""

    events: list[str]
    releases: list[str]
