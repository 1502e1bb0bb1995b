"""Admin endpoints: enrol users and cards; list and revoke stations; inspect jobs; sweep now.

Stations are not created here: they pair themselves (`cloud.api.pairing`) and an admin approves
with `pullprint pair`, which holds the site key the cloud must never see in the clear.
"""

from __future__ import annotations

import binascii
import uuid
from dataclasses import replace

from fastapi import APIRouter

from cloud.api.deps import AdminDep, ServiceDep
from cloud.api.schemas import (
    AddCardRequest,
    AdminJob,
    AdminStation,
    AdminStations,
    CreatedCard,
    CreatedUser,
    CreateUserRequest,
    SitePolicyRequest,
    SitePolicyView,
    SweepResult,
    from_b64url,
    policy_job_names,
)
from cloud.errors import ForbiddenError, InvalidRequestError
from cloud.policies import PolicyChange, shown_name

# Every route takes the admin principal and acts only within its site.
router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.post("/users", status_code=201)
def create_user(body: CreateUserRequest, admin: AdminDep, service: ServiceDep) -> CreatedUser:
    """Create a user; the response holds their API token, which is never shown again."""
    issued = service.identity.create_user(body.email, body.display_name, admin.site)
    return CreatedUser(
        id=str(issued.id),
        email=issued.email,
        display_name=issued.display_name,
        api_token=issued.api_token,
    )


@router.post("/users/{user_id}/cards", status_code=201)
def add_card(
    user_id: uuid.UUID, body: AddCardRequest, admin: AdminDep, service: ServiceDep
) -> CreatedCard:
    """Enrol a badge by the tag a station computed for it."""
    card = service.identity.add_card(user_id, body.tag, body.label, admin.site)
    return CreatedCard(id=str(card.id), user_id=str(card.user_id), label=card.label)


@router.get("/stations")
def list_stations(admin: AdminDep, service: ServiceDep) -> AdminStations:
    """The site's stations, revoked ones included."""
    views = service.stations.list(admin.site)
    return AdminStations(stations=[AdminStation.of(view) for view in views])


@router.get("/stations/{station_id}")
def get_station(station_id: uuid.UUID, admin: AdminDep, service: ServiceDep) -> AdminStation:
    """One station of the site."""
    return AdminStation.of(service.stations.get(station_id, admin.site))


@router.post("/stations/{station_id}/revoke")
def revoke_station(station_id: uuid.UUID, admin: AdminDep, service: ServiceDep) -> AdminStation:
    """Revoke a station at once: its next request fails with 401 `station-revoked`."""
    return AdminStation.of(service.stations.revoke(station_id, admin.site))


@router.get("/jobs/{job_id}")
def get_job(job_id: uuid.UUID, admin: AdminDep, service: ServiceDep) -> AdminJob:
    """Any job of the site, in any state, including whether its content is still held.

    A site that hides job names shows admins a placeholder instead."""
    job = service.jobs.get(job_id, admin.site)
    policy = service.policies.get(admin.site)
    return AdminJob.of(replace(job, name=shown_name(policy, job.name)))


@router.get("/site-policy")
def get_site_policy(admin: AdminDep, service: ServiceDep) -> SitePolicyView:
    """The admin's site's job policies."""
    return SitePolicyView.of(service.policies.get(admin.site))


@router.put("/site-policy")
def update_site_policy(
    body: SitePolicyRequest, admin: AdminDep, service: ServiceDep
) -> SitePolicyView:
    """Change the admin's site's job policies (fields left out stay as they are).

    Zero-knowledge mode needs `public_key` (the site's X25519 key; `pullprint admin site zk-init`
    makes the pair) and cannot be turned off again.
    """
    public_key = None
    if body.public_key is not None:
        try:
            public_key = from_b64url(body.public_key)
        except (binascii.Error, ValueError):
            raise InvalidRequestError("public_key is not base64url") from None
    change = PolicyChange(
        zero_knowledge=body.zero_knowledge,
        public_key=public_key,
        job_names=policy_job_names(body.job_names),
        job_expiry_h=body.job_expiry_h,
        quota_bytes=body.quota_bytes,
        keep_printed=body.keep_printed,
        release_all_on_tap=body.release_all_on_tap,
    )
    return SitePolicyView.of(service.policies.update(admin.site, change))


@router.post("/sweep")
def sweep(admin: AdminDep, service: ServiceDep) -> SweepResult:
    """Expire due jobs and leases now instead of waiting for the background sweeper.

    Only the default site's admin may: the sweep spans every site, and its counts would tell
    one site's admin about another's jobs.
    """
    if admin.site != service.config.site:
        raise ForbiddenError("only the default site's admin sweeps")
    report = service.sweep()
    return SweepResult(expired_jobs=report.expired_jobs, expired_leases=report.expired_leases)
