"""Pairing endpoints (RFC 8628 device grant): unauthenticated by design, rate-limited.

A station that is not paired yet has no credential: it proves possession of its key only later,
by signing. What these endpoints hand out is harmless to anyone else: the user code pairs nothing
until an admin who sees the station's screen approves it, and the grant is sealed to the station's
X25519 key.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request

from cloud.api.deps import ServiceDep
from cloud.api.schemas import (
    IssuedPairingResponse,
    PairingGrantRequest,
    PairingGrantResponse,
    PairingRequestBody,
)
from cloud.errors import InvalidRequestError

router = APIRouter(prefix="/api/v1/pairing", tags=["pairing"])


def _key(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidRequestError("keys are base64url") from None


@router.post("/requests", status_code=201)
def request_pairing(
    body: PairingRequestBody, request: Request, service: ServiceDep
) -> IssuedPairingResponse:
    """Start pairing: answer a user code for the screen and a device code to poll with."""
    source = request.client.host if request.client is not None else "unknown"
    issued = service.pairing.request(_key(body.signing_key), _key(body.exchange_key), source)
    return IssuedPairingResponse(
        request_id=str(issued.request_id),
        device_code=issued.device_code,
        user_code=issued.user_code,
        expires_in=issued.expires_in_s,
        interval=issued.interval_s,
    )


@router.post("/grant")
def poll_grant(body: PairingGrantRequest, service: ServiceDep) -> PairingGrantResponse:
    """Poll for the grant; the RFC 8628 §3.5 errors are 400 problems with its error codes."""
    grant = service.pairing.poll(body.device_code)
    return PairingGrantResponse(
        request_id=str(grant.request_id),
        station_id=str(grant.station_id),
        sealed_grant=base64.urlsafe_b64encode(grant.sealed).decode("ascii").rstrip("="),
    )
