"""Self-enrolment: an unknown badge gets a one-time code; its holder signs in and redeems it.

    offer = enrolment.offer(station, tag)          # shown on the station's EnrolmentScreen
    card = enrolment.redeem(user, offer.code)      # the signed-in user now owns the badge

Invariants:

* only sites whose identity policy allows it (`self_enrolment`) offer codes; a badge that is
  already enrolled (to anyone) never gets one;
* a code is 8 symbols of a 32-symbol alphabet (40 random bits), lives `CODE_TTL_S`, is stored
  only as HMAC(pepper, "enrolment/v1|" + code) and binds exactly the badge that was tapped
  (its HMAC(pepper, tag), the very `credentials.lookup` it becomes); a newer code for the same
  badge at the same station replaces the older one;
* codes are rate-limited when offered (per station and per site, over the last hour) and when
  redeemed (a user's wrong codes, over `REDEEM_WINDOW_S`), so guessing one of the few live codes
  is hopeless: at most `REDEEM_FAILURES` guesses per user per window against 2**40 values;
* redeeming is single use (compare-and-set on `redeemed_at`) and confined to the code's site;
  unknown, expired, used and other sites' codes all get the same answer;
* every offer and redemption is an audit event; codes and tags are never logged.
"""

from __future__ import annotations

import logging
import math
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from cloud.context import ServiceContext
from cloud.db import AuditEvent, Credential, EnrolmentCode
from cloud.errors import (
    CredentialExistsError,
    EnrolmentCodeNotFoundError,
    SelfEnrolmentDisabledError,
    TooManyRequestsError,
)
from cloud.identity import (
    CardView,
    StationPrincipal,
    UserPrincipal,
    add_card_row,
    parse_tag,
    read_policy,
)

log = logging.getLogger(__name__)

CODE_TTL_S = 600
CODE_SYMBOLS = 8
# Without the look-alikes l/1 and o/0: a code is read off a small screen and typed elsewhere.
_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
OFFERS_PER_STATION_PER_HOUR = 10
OFFERS_PER_SITE_PER_HOUR = 100
REDEEM_FAILURES = 5
REDEEM_WINDOW_S = 900
_HOUR = timedelta(hours=1)
_KEEP_FOR = timedelta(days=1)  # the rate limits look back an hour; the rows go after a day


@dataclass(frozen=True, slots=True)
class EnrolmentOffer:
    """A code for an unknown badge, shown on the station once."""

    id: uuid.UUID
    expires_at: datetime
    ttl_s: int
    code: str = field(repr=False)


def new_code() -> str:
    """A fresh code, e.g. `k7dq-m2xr` (40 random bits)."""
    symbols = "".join(secrets.choice(_ALPHABET) for _ in range(CODE_SYMBOLS))
    return f"{symbols[:4]}-{symbols[4:]}"


def normalise_code(code: str) -> str:
    """Forgive case, blanks and the dash placement people retype codes with."""
    compact = "".join(ch for ch in code.strip().lower() if ch not in " -")
    return f"{compact[:4]}-{compact[4:]}" if len(compact) == CODE_SYMBOLS else compact


class Enrolment:
    """Offering and redeeming enrolment codes."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def _hash(self, code: str) -> str:
        return self._ctx.keyed_hash(b"enrolment/v1|" + normalise_code(code).encode())

    def offer(self, station: StationPrincipal, tag: str) -> EnrolmentOffer:
        """Make a one-time code that binds the badge `tag` to whoever redeems it.

        Raises:
            InvalidTagError: the tag is malformed.
            SelfEnrolmentDisabledError: the station's site does not allow self-enrolment.
            CredentialExistsError: the badge is enrolled already.
            TooManyRequestsError: too many codes from this station or site in the last hour.
        """
        ctx = self._ctx
        lookup = ctx.keyed_hash(parse_tag(tag))
        now = ctx.now()
        code = new_code()
        offer_id = uuid.uuid4()
        with ctx.write() as db:
            if not read_policy(db, station.site).self_enrolment:
                raise SelfEnrolmentDisabledError("this site does not allow self-enrolment")
            known = select(Credential.id).where(
                Credential.lookup == lookup, Credential.site == station.site
            )
            if db.scalar(known) is not None:
                raise CredentialExistsError("this badge is enrolled already")
            since = now - _HOUR
            for where, limit in (
                (EnrolmentCode.station_id == station.id, OFFERS_PER_STATION_PER_HOUR),
                (EnrolmentCode.site == station.site, OFFERS_PER_SITE_PER_HOUR),
            ):
                count, oldest = db.execute(
                    select(func.count(), func.min(EnrolmentCode.created_at)).where(
                        where, EnrolmentCode.created_at > since
                    )
                ).one()
                if count >= limit:
                    wait = _seconds_until(oldest, now) if oldest is not None else 60
                    raise TooManyRequestsError(
                        "too many enrolment codes; try again later", retry_after_s=wait
                    )
            # One live code per badge and station: an older one stops working.
            db.execute(
                update(EnrolmentCode)
                .where(
                    EnrolmentCode.station_id == station.id,
                    EnrolmentCode.card_lookup == lookup,
                    EnrolmentCode.redeemed_at.is_(None),
                    EnrolmentCode.expires_at > now,
                )
                .values(expires_at=now)
            )
            expires_at = now + timedelta(seconds=CODE_TTL_S)
            db.add(
                EnrolmentCode(
                    id=offer_id,
                    site=station.site,
                    station_id=station.id,
                    code_hash=self._hash(code),
                    card_lookup=lookup,
                    created_at=now,
                    expires_at=expires_at,
                    redeemed_at=None,
                    user_id=None,
                )
            )
            ctx.audit(
                db,
                "enrolment-offered",
                station_id=station.id,
                detail=str(offer_id),
                site=station.site,
            )
        log.info("enrolment code %s offered at station %s", offer_id, station.id)
        return EnrolmentOffer(offer_id, expires_at, CODE_TTL_S, code)

    def redeem(self, user: UserPrincipal, code: str, label: str = "") -> CardView:
        """Bind the badge of `code` to `user` (single use).

        Raises:
            TooManyRequestsError: the user typed too many wrong codes lately.
            EnrolmentCodeNotFoundError: no usable code matches in the user's site.
            CredentialExistsError: the badge was enrolled meanwhile.
        """
        ctx = self._ctx
        now = ctx.now()
        presented = self._hash(code)
        with ctx.read() as db:
            failures = db.scalar(
                select(func.count()).where(
                    AuditEvent.kind == "enrolment-redeem-failed",
                    AuditEvent.user_id == user.id,
                    AuditEvent.site == user.site,
                    AuditEvent.at > now - timedelta(seconds=REDEEM_WINDOW_S),
                )
            )
        if (failures or 0) >= REDEEM_FAILURES:
            raise TooManyRequestsError(
                "too many wrong enrolment codes; wait and try again", retry_after_s=REDEEM_WINDOW_S
            )
        view: CardView | None = None
        try:
            with ctx.write() as db:
                row = db.scalar(
                    select(EnrolmentCode).where(
                        EnrolmentCode.code_hash == presented, EnrolmentCode.site == user.site
                    )
                )
                if row is not None and row.redeemed_at is None and row.expires_at > now:
                    claimed = db.execute(
                        update(EnrolmentCode)
                        .where(EnrolmentCode.id == row.id, EnrolmentCode.redeemed_at.is_(None))
                        .values(redeemed_at=now, user_id=user.id)
                    )
                    if claimed.rowcount == 1:  # type: ignore[attr-defined]
                        view = add_card_row(
                            ctx,
                            db,
                            user.id,
                            row.card_lookup,
                            label=label or "self-enrolled",
                            site=user.site,
                        )
                        ctx.audit(
                            db,
                            "enrolment-redeemed",
                            user_id=user.id,
                            station_id=row.station_id,
                            detail=str(row.id),
                            site=user.site,
                        )
        except IntegrityError as exc:
            raise CredentialExistsError("this badge is enrolled already") from exc
        if view is None:
            with ctx.write() as db:
                ctx.audit(db, "enrolment-redeem-failed", user_id=user.id, site=user.site)
            raise EnrolmentCodeNotFoundError("no such enrolment code, or it expired or was used")
        log.info("badge self-enrolled by user %s", user.id)
        return view

    def sweep(self) -> int:
        """Delete codes older than a day (the rate limits look back an hour); returns how many."""
        ctx = self._ctx
        with ctx.write() as db:
            gone = db.execute(
                delete(EnrolmentCode).where(EnrolmentCode.created_at < ctx.now() - _KEEP_FOR)
            )
            return int(gone.rowcount)  # type: ignore[attr-defined]


def _seconds_until(oldest: datetime, now: datetime) -> int:
    # An aggregate may come back without the column's type on some engines: the value is UTC.
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return max(1, math.ceil((oldest + _HOUR - now).total_seconds()))
