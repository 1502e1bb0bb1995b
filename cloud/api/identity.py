"""Identity endpoints: a user's badges, release passcodes and self-enrolment; the site's
identity policy; enrolment codes offered at a station.

Users act only on themselves (`/api/v1/me/...`), admins only within their site, stations only
for their own site. Secrets (release passcodes, enrolment codes) appear once, in the response
that creates them.
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from cloud.api.deps import AdminDep, ServiceDep, StationDep, UserDep
from cloud.api.schemas import iso
from cloud.identity import CardView, IdentityPolicy
from cloud.passcodes import IssuedReleasePasscode, ReleasePasscodeView
from cloud.user_import import MAX_ENTRIES_PER_CALL, ImportEntry, import_entries

router = APIRouter(tags=["identity"])


# -- shapes ---------------------------------------------------------------------------------


class PinChallengeResponse(BaseModel):
    """202 from POST /api/v1/station/sessions: the site asks for the badge owner's PIN.

    `pin_email` keys the PIN tag on the station (`pin/v1|email|PIN`); it is not for display.
    """

    pin_required: bool
    pin_email: str
    min_pin_digits: int


class Card(BaseModel):
    """A badge of a user (its label, never its tag)."""

    id: str
    user_id: str
    label: str
    created_at: str | None = None

    @classmethod
    def of(cls, view: CardView) -> Card:
        """From the domain view."""
        return cls(
            id=str(view.id),
            user_id=str(view.user_id),
            label=view.label,
            created_at=iso(view.created_at),
        )


class Cards(BaseModel):
    """A user's badges."""

    cards: list[Card]


class RedeemEnrolmentRequest(BaseModel):
    """POST /api/v1/me/enrolments: the code the station showed, and a label for the badge."""

    code: str = Field(min_length=1, max_length=32)
    label: str = Field(default="", max_length=200)


class IssueReleasePasscodeRequest(BaseModel):
    """POST .../release-passcodes."""

    label: str = Field(default="", max_length=200)


class IssuedReleasePasscodeResponse(BaseModel):
    """A new release passcode: `passcode` is shown only in this response."""

    id: str
    user_id: str
    label: str
    single_use: bool
    expires_at: str | None
    passcode: str

    @classmethod
    def of(cls, issued: IssuedReleasePasscode) -> IssuedReleasePasscodeResponse:
        """From the domain result."""
        return cls(
            id=str(issued.id),
            user_id=str(issued.user_id),
            label=issued.label,
            single_use=issued.single_use,
            expires_at=iso(issued.expires_at),
            passcode=issued.passcode,
        )


class ReleasePasscodeItem(BaseModel):
    """A release passcode as listed (never its digits)."""

    id: str
    label: str
    single_use: bool
    created_at: str
    expires_at: str | None
    used_at: str | None
    revoked_at: str | None

    @classmethod
    def of(cls, view: ReleasePasscodeView) -> ReleasePasscodeItem:
        """From the domain view."""
        return cls(
            id=str(view.id),
            label=view.label,
            single_use=view.single_use,
            created_at=iso(view.created_at) or "",
            expires_at=iso(view.expires_at),
            used_at=iso(view.used_at),
            revoked_at=iso(view.revoked_at),
        )


class ReleasePasscodes(BaseModel):
    """A user's release passcodes."""

    passcodes: list[ReleasePasscodeItem]


class Policy(BaseModel):
    """A site's identity policy."""

    card_pin: bool
    self_enrolment: bool
    passcode_mode: Literal["single-use", "long-lived"]
    passcode_ttl_s: int

    @classmethod
    def of(cls, policy: IdentityPolicy) -> Policy:
        """From the domain value."""
        return cls(
            card_pin=policy.card_pin,
            self_enrolment=policy.self_enrolment,
            passcode_mode=policy.passcode_mode,
            passcode_ttl_s=policy.passcode_ttl_s,
        )


class PolicyChange(BaseModel):
    """PATCH /api/v1/admin/identity-policy: the parts to change."""

    card_pin: bool | None = None
    self_enrolment: bool | None = None
    passcode_mode: Literal["single-use", "long-lived"] | None = None
    passcode_ttl_s: int | None = Field(default=None, ge=60, le=7 * 24 * 3600)


class ImportRowRequest(BaseModel):
    """One spreadsheet row, its badge already turned into the station's tag."""

    line: int = Field(ge=1)
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(min_length=1, max_length=200)
    label: str = Field(default="", max_length=200)
    tag: str | None = Field(default=None, max_length=256)


class ImportRequest(BaseModel):
    """POST /api/v1/admin/users/import: rows of users and badges by tag (never numbers)."""

    rows: list[ImportRowRequest] = Field(min_length=1, max_length=MAX_ENTRIES_PER_CALL)
    dry_run: bool = False


class ImportedRowResponse(BaseModel):
    """What importing one row did."""

    line: int
    email: str
    user: str
    badge: str
    ok: bool


class ImportResponse(BaseModel):
    """The rows, and the new users' API tokens (shown only in this response)."""

    rows: list[ImportedRowResponse]
    tokens: dict[str, str]


class OfferEnrolmentRequest(BaseModel):
    """POST /api/v1/station/enrolments: the unknown badge's tag."""

    tag: str = Field(max_length=256)


class EnrolmentOfferResponse(BaseModel):
    """The code to show on the station (once), and how long it lives."""

    code: str
    expires_at: str
    ttl_s: int


# -- a user on themselves --------------------------------------------------------------------


@router.get("/api/v1/me/cards")
def my_cards(user: UserDep, service: ServiceDep) -> Cards:
    """The signed-in user's badges."""
    return Cards(cards=[Card.of(v) for v in service.identity.list_cards(user.id, user.site)])


@router.delete("/api/v1/me/cards/{card_id}", status_code=204)
def remove_my_card(card_id: uuid.UUID, user: UserDep, service: ServiceDep) -> Response:
    """Remove one of the signed-in user's badges (a lost badge stops working at once)."""
    service.identity.remove_card(user.id, card_id, user.site)
    return Response(status_code=204)


@router.post("/api/v1/me/enrolments", status_code=201)
def redeem_enrolment(body: RedeemEnrolmentRequest, user: UserDep, service: ServiceDep) -> Card:
    """Claim the badge a station showed an enrolment code for."""
    return Card.of(service.enrolment.redeem(user, body.code, body.label))


@router.post("/api/v1/me/release-passcodes", status_code=201)
def issue_my_passcode(
    body: IssueReleasePasscodeRequest, user: UserDep, service: ServiceDep
) -> IssuedReleasePasscodeResponse:
    """Issue a passcode to type at a station (single use or long-lived, per site policy)."""
    issued = service.release_passcodes.issue(user.id, user.site, body.label)
    return IssuedReleasePasscodeResponse.of(issued)


@router.get("/api/v1/me/release-passcodes")
def my_passcodes(user: UserDep, service: ServiceDep) -> ReleasePasscodes:
    """The signed-in user's release passcodes (never their digits)."""
    views = service.release_passcodes.list_for(user.id, user.site)
    return ReleasePasscodes(passcodes=[ReleasePasscodeItem.of(v) for v in views])


@router.delete("/api/v1/me/release-passcodes/{passcode_id}", status_code=204)
def revoke_my_passcode(passcode_id: uuid.UUID, user: UserDep, service: ServiceDep) -> Response:
    """Revoke one of the signed-in user's release passcodes at once."""
    service.release_passcodes.revoke(user.id, passcode_id, user.site)
    return Response(status_code=204)


# -- an admin, within their site ---------------------------------------------------------------


@router.get("/api/v1/admin/users/{user_id}/cards")
def list_cards(user_id: uuid.UUID, admin: AdminDep, service: ServiceDep) -> Cards:
    """A user's badges."""
    return Cards(cards=[Card.of(v) for v in service.identity.list_cards(user_id, admin.site)])


@router.delete("/api/v1/admin/users/{user_id}/cards/{card_id}", status_code=204)
def remove_card(
    user_id: uuid.UUID, card_id: uuid.UUID, admin: AdminDep, service: ServiceDep
) -> Response:
    """Remove one of a user's badges at once."""
    service.identity.remove_card(user_id, card_id, admin.site)
    return Response(status_code=204)


@router.post("/api/v1/admin/users/{user_id}/release-passcodes", status_code=201)
def issue_passcode(
    user_id: uuid.UUID, body: IssueReleasePasscodeRequest, admin: AdminDep, service: ServiceDep
) -> IssuedReleasePasscodeResponse:
    """Issue a release passcode for a user (to hand over, e.g. to someone without a badge)."""
    issued = service.release_passcodes.issue(user_id, admin.site, body.label)
    return IssuedReleasePasscodeResponse.of(issued)


@router.post("/api/v1/admin/users/import")
def import_users(body: ImportRequest, admin: AdminDep, service: ServiceDep) -> ImportResponse:
    """Create users and enrol badges by tag, idempotently (`pullprint admin user import
    --cloud URL` computes the tags from printed badge numbers on the admin's machine)."""
    result = import_entries(
        service.identity,
        service.passcodes,
        [ImportEntry(r.line, r.email, r.name, r.label, r.tag) for r in body.rows],
        admin.site,
        dry_run=body.dry_run,
    )
    return ImportResponse(
        rows=[
            ImportedRowResponse(line=r.line, email=r.email, user=r.user, badge=r.badge, ok=r.ok)
            for r in result.rows
        ],
        tokens=result.tokens,
    )


@router.get("/api/v1/admin/identity-policy")
def get_policy(admin: AdminDep, service: ServiceDep) -> Policy:
    """The site's identity policy."""
    return Policy.of(service.identity.policy(admin.site))


@router.patch("/api/v1/admin/identity-policy")
def change_policy(body: PolicyChange, admin: AdminDep, service: ServiceDep) -> Policy:
    """Change parts of the site's identity policy (card + PIN, self-enrolment, passcodes)."""
    policy = service.identity.set_policy(
        admin.site,
        card_pin=body.card_pin,
        self_enrolment=body.self_enrolment,
        passcode_mode=body.passcode_mode,
        passcode_ttl_s=body.passcode_ttl_s,
    )
    return Policy.of(policy)


# -- a station ---------------------------------------------------------------------------------


@router.post("/api/v1/station/enrolments", status_code=201)
def offer_enrolment(
    body: OfferEnrolmentRequest, station: StationDep, service: ServiceDep
) -> EnrolmentOfferResponse:
    """An unknown badge was tapped: a one-time code for its holder to claim it (if the site
    allows self-enrolment; 403 `self-enrolment-disabled` otherwise)."""
    offer = service.enrolment.offer(station, body.tag)
    return EnrolmentOfferResponse(
        code=offer.code, expires_at=iso(offer.expires_at) or "", ttl_s=offer.ttl_s
    )
