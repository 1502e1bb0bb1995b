"""Station sessions: a badge tap at a station opens a short session for that badge's owner.

Invariants:

* a tag is looked up only by its keyed hash and is never logged, stored or echoed; an unknown tag
  is recorded as an audit event naming only the station (to spot someone probing badges);
* a session belongs to the station that opened it; another station sees it as not found;
* a session is usable until `expires_at` (fixed, `session_ttl_s` after opening) or until the
  station ends it; after that, actions on it fail with SessionExpiredError;
* under a site's card + PIN policy a badge alone opens nothing: the tap is answered with a
  `PinChallenge` (the email the station keys the PIN tag with), and only the same badge's tag
  together with a PIN tag that verifies for its owner opens the session. The PIN's failure
  counting and lockout are `cloud.pins`' (per account and per station);
* a release passcode (`cloud.passcodes.ReleasePasscodes`) opens a session for its user.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from cloud.context import ServiceContext
from cloud.db import Credential, Job, Pin, Site, StationSession, User
from cloud.delegations import delegating_owner_names
from cloud.errors import (
    JobNotFoundError,
    JobNotHeldError,
    PinNotSetError,
    PinRequiredError,
    SessionExpiredError,
    SessionNotFoundError,
    UnknownCredentialError,
)
from cloud.identity import StationPrincipal, parse_tag, read_policy
from cloud.jobs import (
    HELD_JOB_ROWS,
    JOB_ROW_NAME,
    REPRINTABLE_JOB_ROWS,
    JobView,
    destroy_content,
    remove_blob,
)
from cloud.passcodes import ReleasePasscodes
from cloud.pins import Pins
from cloud.policies import load_policy, shown_name
from cloud.prepared import Prepared
from cloud.states import JOB_FINISHED, JobState
from cloud.stations import SignedHttpRequest, Stations

log = logging.getLogger(__name__)

# The id of a `SessionView` that lists a session's jobs before the session is opened.
_NOT_OPENED = uuid.UUID(int=0)

# The badge tap is the cloud's hottest path (DESIGN.md: >= 500 authentications + job lists a
# second): its statements are prepared (`cloud.prepared`), run on a Core connection
# (`ServiceContext.write_core`), and their rows read by position.
_CARD_OWNER = Prepared(
    select(
        Credential.id.label("credential_id"),
        User.id.label("user_id"),
        User.email,
        User.display_name,
    )
    .join(User, User.id == Credential.user_id)
    .where(Credential.lookup == bindparam("lookup"), Credential.site == bindparam("site"))
)
_HAS_PIN = Prepared(
    select(Pin.user_id).where(Pin.user_id == bindparam("user_id"), Pin.site == bindparam("site"))
)
_MIN_PIN_DIGITS = Prepared(select(Site.min_pin_digits).where(Site.name == bindparam("site")))
_USER_NAME = Prepared(
    select(User.display_name).where(User.id == bindparam("user_id"), User.site == bindparam("site"))
)
_SESSION_INSERT = Prepared(
    insert(StationSession),
    keys=(
        "id",
        "site",
        "station_id",
        "user_id",
        "credential_id",
        "opened_at",
        "expires_at",
        "ended_at",
    ),
)
# (UPDATE parameters may not be named after the table's columns.)
_SESSION_END = Prepared(
    update(StationSession)
    .where(
        StationSession.id == bindparam("p_id"),
        StationSession.site == bindparam("p_site"),
        StationSession.station_id == bindparam("p_station"),
        StationSession.ended_at.is_(None),
    )
    .values(ended_at=bindparam("p_now"))
)
_SESSION_EXISTS = Prepared(
    select(StationSession.id).where(
        StationSession.id == bindparam("id"),
        StationSession.site == bindparam("site"),
        StationSession.station_id == bindparam("station_id"),
    )
)
_HELD_JOB_ROWS = Prepared(HELD_JOB_ROWS)
_REPRINTABLE_JOB_ROWS = Prepared(REPRINTABLE_JOB_ROWS)


@dataclass(frozen=True, slots=True)
class SessionView:
    """An open session and the jobs the user may release at the moment it opened.

    `jobs` are the user's held jobs, then those of users who delegated releasing to them (their
    owner's name in `delegated`, by job id), then the user's printed jobs kept for reprint.
    `release_all` is the site's release-all-on-tap policy: the station prints every held job
    (own and delegated) at once instead of showing the list.
    """

    id: uuid.UUID
    user_id: uuid.UUID
    display_name: str
    expires_at: datetime
    jobs: list[JobView]
    delegated: dict[uuid.UUID, str] = field(default_factory=dict)
    release_all: bool = False


@dataclass(frozen=True, slots=True)
class PinChallenge:
    """The badge is known but the site wants its owner's PIN too.

    `email` is what the station keys the PIN tag with (`pin/v1|email|PIN`); it is for the
    station's computation only and never shown on its screen.
    """

    email: str = field(repr=False)
    min_pin_digits: int


@dataclass(slots=True)
class _Tapped:
    """What a badge tap found (`Sessions._tap_reads`) and opened (`_tap_writes`); no user: an
    unknown badge."""

    credential_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    email: str = field(default="", repr=False)
    no_pin: bool = False
    challenge: PinChallenge | None = None
    listing: SessionView | None = None  # what the session will list, once opened
    view: SessionView | None = None


def active_session(
    ctx: ServiceContext, db: Session, station: StationPrincipal, session_id: uuid.UUID
) -> StationSession:
    """The station's session if it is still usable.

    Raises:
        SessionNotFoundError: no such session at this station.
        SessionExpiredError: the session expired or was ended.
    """
    row = _find(db, station, session_id)
    if row is None:
        raise SessionNotFoundError("no such session at this station")
    if row.ended_at is not None or row.expires_at <= ctx.now():
        raise SessionExpiredError("the session has expired; tap again")
    return row


def insert_session(
    ctx: ServiceContext,
    db: Session | Connection,
    station: StationPrincipal,
    user_id: uuid.UUID,
    credential_id: uuid.UUID | None,
    *,
    detail: str | None = None,
) -> tuple[uuid.UUID, datetime]:
    """Open a session row for `user_id` at `station` (audited); its id and expiry.

    `detail` marks how it was opened when no one stood at the station ("remote": a phone).
    """
    now = ctx.now()
    session_id = uuid.uuid4()
    expires_at = now + timedelta(seconds=ctx.config.session_ttl_s)
    _SESSION_INSERT.run(
        db,
        {
            "id": session_id,
            "site": station.site,
            "station_id": station.id,
            "user_id": user_id,
            "credential_id": credential_id,
            "opened_at": now,
            "expires_at": expires_at,
            "ended_at": None,
        },
    )
    ctx.audit(
        db,
        "session-opened",
        user_id=user_id,
        station_id=station.id,
        session_id=session_id,
        detail=detail,
        site=station.site,
    )
    return session_id, expires_at


def _find(db: Session, station: StationPrincipal, session_id: uuid.UUID) -> StationSession | None:
    return db.scalar(
        select(StationSession).where(
            StationSession.id == session_id,
            StationSession.site == station.site,
            StationSession.station_id == station.id,
        )
    )


class Sessions:
    """Opening and ending sessions, and what a user may do in one besides releasing."""

    def __init__(
        self,
        ctx: ServiceContext,
        pins: Pins,
        passcodes: ReleasePasscodes | None = None,
        stations: Stations | None = None,
    ) -> None:
        self._ctx = ctx
        self._pins = pins
        self._stations = stations or Stations(ctx)
        self._passcodes = passcodes or ReleasePasscodes(ctx)

    def open(self, station: StationPrincipal, tag: str) -> SessionView:
        """Open a session for the owner of the tapped credential (a badge alone).

        Raises:
            InvalidTagError: the tag is malformed.
            UnknownCredentialError: no credential has this tag.
            PinRequiredError: the site asks for a PIN after the tap (see `open_card`).
        """
        opened = self.open_card(station, tag)
        if isinstance(opened, PinChallenge):
            raise PinRequiredError("this site asks for a PIN after the badge")
        return opened

    def open_card(
        self, station: StationPrincipal, tag: str, pin_tag: str | None = None
    ) -> SessionView | PinChallenge:
        """Open a session for the owner of the tapped credential, or ask for their PIN.

        Under the site's card + PIN policy a tap without `pin_tag` returns a `PinChallenge`;
        with `pin_tag` (always checked when given, whatever the policy) the PIN must verify
        for the badge's owner.

        Raises:
            InvalidTagError: a tag is malformed.
            UnknownCredentialError: no credential has this tag, or the PIN is wrong.
            PinNotSetError: the site asks for a PIN and the badge's owner has none.
            TooManyRequestsError, PinLockedError: see `cloud.pins.Pins.authenticate`.
        """
        with self._ctx.write_core() as db:
            tapped = self._tap_reads(db, station, tag, pin_tag)
            self._tap_writes(db, station, tapped)
        return self._after_tap(station, tapped, pin_tag)

    def tap(
        self, request: SignedHttpRequest, tag: str, pin_tag: str | None = None
    ) -> tuple[StationPrincipal, SessionView | PinChallenge]:
        """`open_card` for a station's signed request, in one trip to a worker thread.

        The badge tap is the cloud's hottest request. Everything it only reads (the station's
        key and the signature, the card's owner, the policies, the job lists) is read in a
        read transaction; a write transaction then records the signature's nonce, the session
        and the audit event. On SQLite writers take turns (`SqliteWriteLock`): measured, the
        tap held the write lock 1.2-1.6 ms when it read inside it, and that lock, not the
        CPU, capped the rate.

        Raises:
            InvalidSignatureError, ContentDigestMismatchError, StationRevokedError: see
                `cloud.stations.Stations.authenticate`; nothing is written then.
            the errors of `open_card`.
        """
        ctx = self._ctx
        with ctx.read_core() as db:
            station, signed = self._stations.check(db, request)
            tapped = self._tap_reads(db, station, tag, pin_tag)
        with ctx.write_core() as db:
            self._stations.record_nonce(db, station, signed)
            self._tap_writes(db, station, tapped)
        return station, self._after_tap(station, tapped, pin_tag)

    def _tap_reads(
        self, db: Connection, station: StationPrincipal, tag: str, pin_tag: str | None
    ) -> _Tapped:
        """What a tap finds (`_tap_writes` records it; `_after_tap` answers)."""
        lookup = self._ctx.keyed_hash(parse_tag(tag))
        if pin_tag is not None:
            parse_tag(pin_tag)
        site = station.site
        found = _CARD_OWNER.first(db, {"lookup": lookup, "site": site})
        if found is None:
            return _Tapped()
        credential_id, user_id, email, display_name = found
        tapped = _Tapped(credential_id, user_id, email)
        if pin_tag is None and read_policy(db, site).card_pin:
            tapped.no_pin = _HAS_PIN.first(db, {"user_id": user_id, "site": site}) is None
            digits = _MIN_PIN_DIGITS.first(db, {"site": site})
            tapped.challenge = PinChallenge(email, (digits[0] if digits else None) or 6)
        elif pin_tag is None:
            tapped.listing = self._listing(db, station, user_id, display_name)
        return tapped

    def _tap_writes(self, db: Connection, station: StationPrincipal, tapped: _Tapped) -> None:
        """Record what `_tap_reads` found: the unknown badge's audit event, or the session."""
        if tapped.user_id is None:
            self._ctx.audit(db, "credential-unknown", station_id=station.id, site=station.site)
        elif tapped.listing is not None:
            tapped.view = self._open(db, station, tapped.listing, tapped.credential_id)

    def _after_tap(
        self, station: StationPrincipal, tapped: _Tapped, pin_tag: str | None
    ) -> SessionView | PinChallenge:
        """A tap's outcome once its transaction committed: errors are raised only now, so the
        audit event of a failed tap (and the request's nonce) is kept; a PIN (slow, counted)
        is checked outside the transaction."""
        if tapped.user_id is None:
            log.info("unknown credential presented at station %s", station.id)
            raise UnknownCredentialError("this credential is not enrolled")
        if tapped.no_pin:
            # The badge already named the user: saying so tells its holder nothing new.
            raise PinNotSetError("this site asks for a PIN after the badge; ask for one to be set")
        if tapped.challenge is not None:
            log.info("badge at station %s: PIN asked for user %s", station.id, tapped.user_id)
            return tapped.challenge
        view = tapped.view
        if pin_tag is not None:
            if self._pins.authenticate(station, tapped.email, pin_tag) != tapped.user_id:
                raise UnknownCredentialError("unknown email or wrong PIN")
            view = self._open_for_user(station, tapped.user_id, tapped.credential_id)
        assert view is not None
        log.info("session %s opened at station %s for user %s", view.id, station.id, view.user_id)
        return view

    def open_with_passcode(self, station: StationPrincipal, passcode: str) -> SessionView:
        """Open a session for the user whose release passcode was typed at the station.

        Raises:
            TooManyRequestsError, UnknownPasscodeError: see `ReleasePasscodes.authenticate`.
        """
        user_id = self._passcodes.authenticate(station, passcode)
        view = self._open_for_user(station, user_id, None)
        log.info("session %s opened at station %s by passcode", view.id, station.id)
        return view

    def open_with_pin(self, station: StationPrincipal, email: str, pin_tag: str) -> SessionView:
        """Open a session for the user whose email and PIN tag were entered at the station.

        Raises:
            InvalidTagError: the tag is malformed.
            UnknownCredentialError: unknown email, no PIN, or a wrong PIN.
            TooManyRequestsError, PinLockedError: see `cloud.pins.Pins.authenticate`.
        """
        user_id = self._pins.authenticate(station, email, pin_tag)
        view = self._open_for_user(station, user_id, None)
        log.info("session %s opened at station %s by PIN", view.id, station.id)
        return view

    def _open_for_user(
        self, station: StationPrincipal, user_id: uuid.UUID, credential_id: uuid.UUID | None
    ) -> SessionView:
        with self._ctx.write_core() as db:
            found = _USER_NAME.first(db, {"user_id": user_id, "site": station.site})
            # The PIN or passcode row that named the user belongs to this user of this site.
            assert found is not None
            listing = self._listing(db, station, user_id, found[0])
            return self._open(db, station, listing, credential_id)

    def _open(
        self,
        db: Connection,
        station: StationPrincipal,
        listing: SessionView,
        credential_id: uuid.UUID | None,
    ) -> SessionView:
        """Open the session `listing` lists the jobs of (its id and expiry are set now)."""
        session_id, expires_at = insert_session(
            self._ctx, db, station, listing.user_id, credential_id
        )
        return replace(listing, id=session_id, expires_at=expires_at)

    def _listing(
        self, db: Connection, station: StationPrincipal, user_id: uuid.UUID, display_name: str
    ) -> SessionView:
        """What a session of `user_id` lists, before it is opened (no id or expiry yet)."""
        ctx = self._ctx
        now = ctx.now()
        site = station.site
        policy = load_policy(ctx, db, site)

        def views(query: Prepared, owner_id: uuid.UUID) -> list[JobView]:
            rows = query.rows(db, {"site": site, "owner_id": owner_id, "now": now})
            return [JobView.from_row(row, shown_name(policy, row[JOB_ROW_NAME])) for row in rows]

        jobs = views(_HELD_JOB_ROWS, user_id)
        delegated: dict[uuid.UUID, str] = {}
        for owner_id, owner_name in delegating_owner_names(db, site, user_id).items():
            for job in views(_HELD_JOB_ROWS, owner_id):
                jobs.append(job)
                delegated[job.id] = owner_name
        if policy.keep_printed:
            jobs += views(_REPRINTABLE_JOB_ROWS, user_id)
        return SessionView(
            _NOT_OPENED, user_id, display_name, now, jobs, delegated, policy.release_all_on_tap
        )

    def end(self, station: StationPrincipal, session_id: uuid.UUID) -> None:
        """End a session (idempotent). Releases already requested carry on.

        Raises:
            SessionNotFoundError: no such session at this station.
        """
        ctx = self._ctx
        site = station.site
        with ctx.write_core() as db:
            # One compare-and-set UPDATE: it ends an open session of this station, and only
            # when it changed nothing is the session looked up, to tell "already ended"
            # (idempotent) from "not this station's".
            ended = _SESSION_END.run(
                db,
                {"p_id": session_id, "p_site": site, "p_station": station.id, "p_now": ctx.now()},
            )
            if not ended:
                found = _SESSION_EXISTS.first(
                    db, {"id": session_id, "site": site, "station_id": station.id}
                )
                if found is None:
                    raise SessionNotFoundError("no such session at this station")
            else:
                ctx.audit(
                    db, "session-ended", station_id=station.id, session_id=session_id, site=site
                )

    def delete_job(
        self, station: StationPrincipal, session_id: uuid.UUID, job_id: uuid.UUID
    ) -> None:
        """Delete one of the session user's jobs at the printer, destroying its content.

        Raises:
            SessionNotFoundError, SessionExpiredError: see `active_session`.
            JobNotFoundError: no such job, or not this user's.
            JobNotHeldError: the job is being released.
        """
        ctx = self._ctx
        with ctx.write() as db:
            session = active_session(ctx, db, station, session_id)
            job = db.scalar(
                select(Job).where(
                    Job.id == job_id, Job.site == station.site, Job.owner_id == session.user_id
                )
            )
            if job is None:
                raise JobNotFoundError("no such job")
            if job.state in JOB_FINISHED and job.wrapped_key is None:
                return
            if not destroy_content(
                ctx, db, job_id, to=JobState.DELETED, from_states=[JobState.HELD, JobState.PRINTED]
            ):
                raise JobNotHeldError("the job is being released and cannot be deleted now")
            ctx.audit(
                db,
                "job-deleted",
                user_id=session.user_id,
                station_id=station.id,
                session_id=session_id,
                job_id=job_id,
                site=station.site,
            )
        log.info("job %s deleted at station %s", job_id, station.id)
        remove_blob(ctx, job_id)
