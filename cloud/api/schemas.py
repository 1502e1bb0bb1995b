"""The JSON shapes of REST API v1 (see API.md), and conversions from domain views.

Times are ISO-8601 UTC strings ending in `Z`; ids are UUID strings.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from cloud.jobs import JobView
from cloud.releases import ReleaseGrant
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
    """POST /api/v1/station/sessions: a badge `tag`, or `email` + `pin_tag`."""

    tag: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, min_length=1, max_length=320)
    pin_tag: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _one_credential(self) -> OpenSessionRequest:
        badge = self.tag is not None
        pin = self.email is not None and self.pin_tag is not None
        partial = (self.email is None) != (self.pin_tag is None)
        if badge == pin or partial:
            raise ValueError("send either a tag, or an email and a pin_tag")
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

    outcome: Literal["printed", "failed"]
    reason: str | None = Field(default=None, max_length=2000)
    printer_job_id: int | None = None


# -- responses ------------------------------------------------------------------------------


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
    sha256: str
    copies: int
    pages: int | None
    content_held: bool
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
    sha256: str
    copies: int
    pages: int | None
    state: str
    submitted_at: str
    expires_at: str
    sides: str | None = None
    color_mode: str | None = None

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

    @classmethod
    def of(cls, job: JobView) -> SessionJob:
        """From the domain view."""
        return cls(
            id=str(job.id),
            name=job.name,
            format=job.document_format,
            size_bytes=job.size_bytes,
            pages=job.pages,
            copies=job.copies,
            submitted_at=_iso(job.submitted_at),
            expires_at=_iso(job.expires_at),
            sides=job.sides,
            color_mode=job.color_mode,
        )


class OpenedSession(BaseModel):
    """POST /api/v1/station/sessions."""

    session_id: str
    user: SessionUser
    expires_at: str
    jobs: list[SessionJob]


class ReleaseItem(BaseModel):
    """One release as the station receives it; `data_key` is base64 of the 32-byte key."""

    id: str
    job_id: str
    name: str
    format: str
    copies: int
    size_bytes: int
    content_bytes: int
    user_name: str
    data_key: str
    site: str
    state: str

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
            data_key=base64.b64encode(grant.data_key).decode("ascii"),
            site=grant.site,
            state=str(grant.state),
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
