"""Paired stations: authenticating their signed requests, listing and revoking them.

A station is created by an approved pairing (`cloud.pairing`) with the Ed25519 public key it made
on first start; from then on it proves itself on every request with an RFC 9421 signature
(`cloud.http_signatures`). Invariants:

* a request is accepted only if the signature verifies with the station's key, `created` is within
  `signature_skew_s` of the cloud's clock, the body matches the signed RFC 9530 digest, the
  station is not revoked, and the nonce has not been used by this station before;
* the nonce is recorded with an INSERT on a primary key (station id, nonce), so a replay is refused
  atomically on every replica sharing the database; a nonce is kept until its `created` falls out
  of the window, after which the signature is stale anyway and the row is swept;
* revocation takes effect on the next request: the station row is read on every request.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.context import ServiceContext
from cloud.db import Station, StationNonce
from cloud.errors import InvalidSignatureError, StationNotFoundError, StationRevokedError
from cloud.events import station_topic
from cloud.http_signatures import (
    SignedRequest,
    check_content_digest,
    parse_signature,
    signature_base,
    verify_signature,
)
from cloud.identity import StationPrincipal
from cloud.prepared import Prepared
from cloud.sealing import fingerprint

log = logging.getLogger(__name__)

# Every station request runs these two: built once (see `Stations.authenticate`).
# Run before every station request: prepared (`cloud.prepared`), rows read by position.
_STATION_ROW = Prepared(
    select(
        Station.site, Station.name, Station.printer_uri, Station.public_key, Station.revoked_at
    ).where(Station.id == bindparam("station_id"))
)
_NONCE_INSERT = Prepared(insert(StationNonce), keys=("station_id", "nonce", "site", "created_at"))


@dataclass(frozen=True, slots=True)
class StationView:
    """A station as an admin lists it (its key only as a fingerprint)."""

    id: uuid.UUID
    site: str
    name: str
    printer_uri: str
    fingerprint: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class SignedHttpRequest:
    """The parts of an HTTP request a station signature covers, as received."""

    method: str
    raw_path: str  # still percent-encoded, without the query
    raw_query: str  # without the "?"
    headers: Mapping[str, str]  # case-insensitive lookups by lower-case name
    body: bytes
    # `headers`' signature, parsed (not verified) where the caller already did: the badge tap's
    # endpoint refuses a malformed one before it reads the body.
    parsed: SignedRequest | None = None


class Stations:
    """Signed-request authentication, listing and revocation of paired stations."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def authenticate(self, request: SignedHttpRequest) -> StationPrincipal:
        """Resolve a signed station request to its station, recording its nonce.

        Raises:
            InvalidSignatureError: no, malformed, wrong, stale or replayed signature.
            ContentDigestMismatchError: the body is not what the station signed.
            StationRevokedError: the station was revoked.
        """
        # One write transaction for the station's row and the nonce: every statement is a round
        # trip to the database (and, on SQLite, a release and re-take of the GIL), and a separate
        # read transaction before it cost as much as the insert.
        with self._ctx.write_core() as db:
            return self.verify(db, request)

    def verify(self, db: Connection, request: SignedHttpRequest) -> StationPrincipal:
        """`authenticate` inside the caller's write transaction. Nothing is written until every
        check has passed; the caller's transaction must roll back on an error.

        Raises:
            InvalidSignatureError, ContentDigestMismatchError, StationRevokedError: see
            `authenticate`.
        """
        station, signed = self.check(db, request)
        self.record_nonce(db, station, signed)
        return station

    def check(
        self, db: Connection, request: SignedHttpRequest
    ) -> tuple[StationPrincipal, SignedRequest]:
        """The checks of `verify` that only read: the station's key, the signature, its age
        and the body's digest. The nonce is not recorded yet: the request is not authenticated
        until `record_nonce` has run in a write transaction (the badge tap reads first, then
        writes: `Sessions.tap`).

        Raises:
            InvalidSignatureError, ContentDigestMismatchError, StationRevokedError: see
            `authenticate` (all but the replay).
        """
        ctx = self._ctx
        signed = request.parsed or parse_signature(request.headers)
        digest_field = request.headers.get("content-digest") or ""
        base = signature_base(
            signed, request.method, request.raw_path, request.raw_query, digest_field
        )
        row = _STATION_ROW.first(db, {"station_id": signed.station_id})
        if row is None or row[3] is None:
            raise InvalidSignatureError("unknown station key")
        site, name, printer_uri, public_key, revoked_at = row
        verify_signature(public_key, signed, base)
        # Only a holder of the key learns that it was revoked.
        if revoked_at is not None:
            raise StationRevokedError("this station has been revoked; pair it again")
        skew_s = ctx.config.signature_skew_s
        if abs(ctx.now().timestamp() - signed.created) > skew_s:
            raise InvalidSignatureError(
                f"the signature's created time is more than {skew_s} s from the cloud's clock"
            )
        check_content_digest(digest_field or None, request.body)
        return StationPrincipal(signed.station_id, site, name, printer_uri), signed

    def record_nonce(
        self, db: Connection, station: StationPrincipal, signed: SignedRequest
    ) -> None:
        """Record a checked signature's nonce in the caller's write transaction.

        Raises:
            InvalidSignatureError: the nonce was used before (a replay, from any replica).
        """
        try:
            _NONCE_INSERT.run(
                db,
                {
                    "station_id": station.id,
                    "nonce": signed.nonce,
                    "site": station.site,
                    "created_at": datetime.fromtimestamp(signed.created, UTC),
                },
            )
        except IntegrityError:
            log.warning("replayed signature refused for station %s", station.id)
            raise InvalidSignatureError("this signature nonce has been used before") from None

    def list(self, site: str | None = None) -> list[StationView]:
        """The stations of `site` (default: the config's), oldest first, revoked ones included."""
        with self._ctx.read() as db:
            rows = db.scalars(
                select(Station)
                .where(Station.site == (site or self._ctx.site))
                .order_by(Station.created_at, Station.id)
            )
            return [_view(row) for row in rows]

    def get(self, station_id: uuid.UUID, site: str | None = None) -> StationView:
        """One station of `site` (default: the config's).

        Raises:
            StationNotFoundError: no such station in this site.
        """
        with self._ctx.read() as db:
            row = _find(db, station_id, site or self._ctx.site)
            if row is None:
                raise StationNotFoundError("no such station")
            return _view(row)

    def revoke(self, station_id: uuid.UUID, site: str | None = None) -> StationView:
        """Revoke a station at once: its next request fails with `station-revoked` (idempotent).

        Raises:
            StationNotFoundError: no such station in this site.
        """
        ctx = self._ctx
        site = site or ctx.site
        with ctx.write() as db:
            row = _find(db, station_id, site)
            if row is None:
                raise StationNotFoundError("no such station")
            if row.revoked_at is None:
                row.revoked_at = ctx.now()
                ctx.audit(db, "station-revoked", station_id=station_id, site=site)
            view = _view(row)
        log.info("station %s revoked", station_id)
        # A station long-polling any replica hears it now, not at its next request.
        ctx.events.publish(station_topic(station_id), "revoked")
        return view

    def sweep_nonces(self) -> int:
        """Forget nonces whose signatures are stale anyway; returns how many."""
        ctx = self._ctx
        horizon = ctx.now() - timedelta(seconds=ctx.config.signature_skew_s + 1)
        with ctx.write() as db:
            result = db.execute(delete(StationNonce).where(StationNonce.created_at < horizon))
        return int(getattr(result, "rowcount", 0) or 0)


def _find(db: Session, station_id: uuid.UUID, site: str) -> Station | None:
    return db.scalar(select(Station).where(Station.id == station_id, Station.site == site))


def _view(row: Station) -> StationView:
    return StationView(
        id=row.id,
        site=row.site,
        name=row.name,
        printer_uri=row.printer_uri,
        fingerprint=fingerprint(row.public_key) if row.public_key is not None else None,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
