"""The release workflow: a sans-I/O state machine, events in, commands out (the h11 style).

`Workflow.handle(event)` returns the commands the runtime must carry out (show a screen, open a
session, release jobs, ...); the runtime (`station.app`) feeds back what happened as events. This
module does no I/O and reads no clock: time arrives as `Tick(now_s)` events.

The rules::

    state        event                                 -> state      commands
    -----------  ------------------------------------  -----------  ------------------------------
    IDLE         CardPresented                         IDENTIFYING  Reading, OpenSession
    IDENTIFYING  SessionOpened (this attempt, jobs)    JOB_LIST     JobList
    IDENTIFYING  SessionOpened (this attempt, no jobs) DONE         NoJobs, EndSession
    IDENTIFYING  SessionOpened (release_all, held)     DELIVERING   Delivering, ReleaseJobs(held)
    IDENTIFYING  SessionRefused unknown-card           ERROR        Error "Badge not recognised"
    IDENTIFYING  SessionRefused offline                ERROR        Offline
    IDENTIFYING  SessionRefused error                  ERROR        Error
    IDENTIFYING  Tick past identify_s                  ERROR        Error "Cloud not responding"
    IDENTIFYING  CANCEL                                IDLE         Idle
    JOB_LIST     UP / DOWN / SELECT                    JOB_LIST     JobList (the cursor wraps)
    JOB_LIST     PRINT_ALL                             DELIVERING   Delivering, ReleaseJobs(shown,
                                                                    but not jobs kept for reprint)
    JOB_LIST     PRINT_SELECTED                        DELIVERING   Delivering, ReleaseJobs(ticked,
                                                                    or the one under the cursor)
    JOB_LIST     DELETE                                JOB_LIST     DeleteJob(under the cursor)
    JOB_LIST     JobDeleted (the last job)             DONE         NoJobs, EndSession
    JOB_LIST     CANCEL, or Tick past session_s idle   IDLE         EndSession, Idle
    JOB_LIST     CardPresented (same badge)            JOB_LIST     (inactivity timer restarts)
    JOB_LIST     CardPresented (another badge)         IDENTIFYING  EndSession, Reading, OpenSession
    DELIVERING   JobProgress, JobPrinted, JobFailed    DELIVERING   Delivering (when it changed)
    DELIVERING   DeliveryFinished, all printed         DONE         Done, EndSession
    DELIVERING   DeliveryFinished, any not printed     ERROR        Error (the reason), EndSession
    DONE, ERROR  Tick past done_s / error_s, a button  IDLE         Idle
    DONE, ERROR  CardPresented                         IDENTIFYING  Reading, OpenSession
    (outages)    CloudDown in IDLE, DONE, ERROR        OFFLINE      Offline (other states finish
                                                                    first, then go OFFLINE
                                                                    instead of IDLE)
    OFFLINE      CardPresented                         OFFLINE      Offline "cannot check your
                                                                    badge" for error_s
    OFFLINE      CloudUp (any state: forgets the outage) IDLE       Idle

Identity at the keypad (a PIN after the badge, a release passcode, self-enrolment)::

    IDLE, DONE,  KeyPressed digit                      PIN_ENTRY    PinEntry (passcode, 1 dot)
    ERROR, ENROLMENT
    IDENTIFYING  PinRequested (this attempt)           PIN_ENTRY    PinEntry (PIN of this badge)
    PIN_ENTRY    KeyPressed digit / backspace          PIN_ENTRY    PinEntry (timer restarts)
    PIN_ENTRY    KeyPressed enter, enough digits       IDENTIFYING  Reading "Checking…",
                                                                    OpenSession(tag, PIN) or
                                                                    OpenPasscodeSession
    PIN_ENTRY    KeyPressed enter, too few digits      PIN_ENTRY    PinEntry "At least N digits"
    PIN_ENTRY    KeyPressed escape, CANCEL, Tick past  IDLE         Idle
                 pin_s
    PIN_ENTRY    CardPresented                         IDENTIFYING  Reading, OpenSession
    IDENTIFYING  SessionRefused wrong-pin              PIN_ENTRY    PinEntry "Wrong PIN, try again"
    IDENTIFYING  SessionRefused wrong-passcode         PIN_ENTRY    PinEntry "Passcode not
                                                                    recognised"
    IDENTIFYING  SessionRefused rate-limited           ERROR        Error "Too many attempts"
    IDENTIFYING  SessionRefused pin-locked             ERROR        Error "PIN locked"
    IDENTIFYING  SessionRefused pin-not-set            ERROR        Error "No PIN set"
    IDENTIFYING  EnrolmentOffered (this attempt)       ENROLMENT    Enrolment (the code)
    ENROLMENT    Tick past enrolment_s, a button       IDLE         Idle
    ENROLMENT    CardPresented                         IDENTIFYING  Reading, OpenSession

A card the reader could not read (reader-pn532)::

    IDLE, DONE,  CardUnreadable(reason)                ERROR        CardUnreadable (reason in words,
    ERROR                                                           no card data) for error_s
    OFFLINE      CardUnreadable(reason)                OFFLINE      CardUnreadable for error_s, then
                                                                    Offline
    (others)     CardUnreadable                        unchanged    nothing: a session, a PIN being
                                                                    typed, an enrolment code or a
                                                                    delivery is never ended or
                                                                    covered by a bad read (often
                                                                    the same card bouncing on the
                                                                    reader); the runtime logs it
Email + PIN at a full keyboard (only when the workflow is built with `email_entry=True`: a
numeric keypad cannot type an address, so a keypad-only station never offers it)::

    IDLE, DONE,  KeyPressed character (a letter) / tab EMAIL_ENTRY  EmailEntry (the letter, if any)
    ERROR, ENROLMENT
    EMAIL_ENTRY  KeyPressed character / digit / bksp   EMAIL_ENTRY  EmailEntry (timer restarts)
    EMAIL_ENTRY  KeyPressed enter, not an address      EMAIL_ENTRY  EmailEntry "Not an email
                                                                    address"
    EMAIL_ENTRY  KeyPressed enter, an address          PIN_ENTRY    PinEntry (the site's minimum if
                                                                    a badge taught it, else 4)
    PIN_ENTRY    KeyPressed enter, enough digits       IDENTIFYING  Reading "Checking…",
                 (after an email)                                   OpenEmailSession(email, PIN)
    IDENTIFYING  SessionRefused wrong-pin (email)      EMAIL_ENTRY  EmailEntry (the address kept)
                                                                    "Wrong email or PIN"
    EMAIL_ENTRY  KeyPressed escape, CANCEL, Tick past  IDLE         Idle
                 pin_s
    EMAIL_ENTRY  CardPresented                         IDENTIFYING  Reading, OpenSession (the
                                                                    typed text is dropped)

Releases made from a phone (the station long-polls the cloud while idle)::

    IDLE         RemoteReleases (ids)                  DELIVERING   Delivering, DeliverRemote(ids)
    DELIVERING   RemoteJobs (what the grants name)     DELIVERING   Delivering "Printing for
                 (remote)                                           <owner>"
    DELIVERING   DeliveryFinished, all printed         DONE         Done "for <owner>"
    DELIVERING   DeliveryFinished, nothing to deliver  IDLE         Idle
    (any other)  RemoteReleases                        -            (ignored: the releases stay
                                                                    requested and the long-poll
                                                                    reports them again when idle)

Every other (state, event) pair is ignored and returns no commands; in particular a badge tapped
while delivering is ignored (the delivery goes on, no second session is opened), and no timeout
runs while delivering (the printer transport has its own). A `SessionOpened` that is not the
answer to the current attempt (it arrived after a timeout, a cancel, or another tap) is answered
with `EndSession`, so it can never show one person's jobs to the next.

Invariants: at most one session is open at a time as far as this machine knows; every session it
learnt of is ended by an `EndSession` command; no screen carries a card tag; typed digits live
only in the current `KeypadEntry` and the one command that sends them (never in a screen, a
repr or a message), and are dropped whenever the entry is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from station.entry import NOT_AN_EMAIL_MESSAGE, EmailEntry, KeypadEntry
from station.messages import (
    OFFLINE_TAP_MESSAGE,
    Button,
    ButtonPressed,
    CardPresented,
    CardUnreadable,
    CloudDown,
    CloudUp,
    Command,
    DeleteJob,
    DeliverRemote,
    DeliveryFinished,
    EndSession,
    EnrolmentOffered,
    Event,
    JobDeleted,
    JobFailed,
    JobPrinted,
    JobProgress,
    Key,
    KeyPressed,
    OpenEmailSession,
    OpenPasscodeSession,
    OpenSession,
    PinRequested,
    RefusalKind,
    ReleaseJobs,
    RemoteJob,
    RemoteJobs,
    RemoteReleases,
    SessionOpened,
    SessionRefused,
    ShowScreen,
    State,
    Tick,
)
from station.models import JobSummary
from station.screens import (
    CardUnreadableScreen,
    DeliveringScreen,
    DeliveryItem,
    DoneScreen,
    EnrolmentScreen,
    ErrorScreen,
    IdleScreen,
    JobListScreen,
    NoJobsScreen,
    OfflineScreen,
    ReadingScreen,
    Screen,
)

# The vocabulary lives in station.messages; importers may keep naming it from here.
__all__ = [
    "Button",
    "ButtonPressed",
    "CardPresented",
    "CardUnreadable",
    "CloudDown",
    "CloudUp",
    "Command",
    "DeleteJob",
    "DeliverRemote",
    "DeliveryFinished",
    "EndSession",
    "EnrolmentOffered",
    "Event",
    "JobDeleted",
    "JobFailed",
    "JobPrinted",
    "JobProgress",
    "Key",
    "KeyPressed",
    "OFFLINE_TAP_MESSAGE",
    "OpenEmailSession",
    "OpenPasscodeSession",
    "OpenSession",
    "PinRequested",
    "RefusalKind",
    "ReleaseJobs",
    "RemoteJob",
    "RemoteJobs",
    "RemoteReleases",
    "SessionOpened",
    "SessionRefused",
    "ShowScreen",
    "State",
    "Tick",
    "Timings",
    "Workflow",
]

UNKNOWN_CARD_TITLE = "Badge not recognised"
CLOUD_TIMEOUT_MESSAGE = "Cloud not responding"
CHECKING_MESSAGE = "Checking…"
WRONG_PIN_MESSAGE = "Wrong PIN, try again"
WRONG_PASSCODE_MESSAGE = "Passcode not recognised"
TOO_MANY_TITLE = "Too many attempts"
PIN_LOCKED_TITLE = "PIN locked"
PIN_LOCKED_MESSAGE = "Ask your administrator to reset it"
NO_PIN_TITLE = "No PIN set"
NO_PIN_MESSAGE = "This site asks for a PIN after your badge: ask your administrator for one"
WRONG_EMAIL_PIN_MESSAGE = "Wrong email or PIN, try again"
# The station learns the site's minimum PIN length only from a card + PIN challenge; before
# that, an email sign-in takes the shortest PIN any site allows and lets the cloud refuse.
EMAIL_PIN_MIN_DIGITS = 4


@dataclass(frozen=True, slots=True)
class Timings:
    """How long each waiting state lasts, in seconds."""

    identify_s: float = 10.0
    session_s: float = 30.0
    done_s: float = 4.0
    error_s: float = 6.0
    pin_s: float = 20.0  # idle time at the keypad before the entry is dropped
    enrolment_s: float = 60.0  # how long an enrolment code stays on screen


class Workflow:
    """The release workflow of one station. Not thread-safe: one thread feeds it events."""

    def __init__(
        self, timings: Timings | None = None, *, station_name: str = "", email_entry: bool = False
    ) -> None:
        """`email_entry`: a full keyboard is fitted, so email + PIN sign-in is offered."""
        self.timings = timings or Timings()
        self.station_name = station_name
        self.email_entry = email_entry
        self.state = State.IDLE
        self.screen: Screen = IdleScreen(station_name)
        self.session_id: str | None = None
        self._attempt = 0
        self._tag: str | None = None  # the badge of the open session, to recognise a re-tap
        self._display_name = ""
        self._jobs: tuple[JobSummary, ...] = ()
        self._cursor = 0
        self._selected: frozenset[str] = frozenset()
        self._items: dict[str, DeliveryItem] = {}
        self._reasons: dict[str, str] = {}
        self._offline: str | None = None  # the outage message while the cloud is away
        self._entry: KeypadEntry | None = None
        self._pin_email: str | None = None  # the badge owner's, while their PIN is asked
        self._min_pin_digits = 6
        self._email: EmailEntry | None = None  # the address being typed
        self._site_min_pin: int | None = None  # learnt from a card + PIN challenge
        self._owner = ""  # whose jobs a remote delivery prints ("" for a session's own)
        # Deadlines are set from the latest Tick; before the first Tick, on the first one.
        self._now: float | None = None
        self._timeout_s: float | None = None
        self._deadline: float | None = None

    def start(self) -> list[Command]:
        """The commands to run when the station starts: show the idle screen."""
        return [ShowScreen(self.screen)]

    def handle(self, event: Event) -> list[Command]:
        """Apply one event; return the commands to carry out, in order."""
        match event:
            case Tick(now_s=now):
                return self._tick(now)
            case CardPresented(tag=tag):
                return self._card(tag)
            case CardUnreadable(reason=reason):
                return self._unreadable(reason)
            case SessionOpened():
                return self._opened(event)
            case SessionRefused():
                return self._refused(event)
            case ButtonPressed(button=button):
                return self._button(button)
            case JobDeleted(job_id=job_id):
                return self._deleted(job_id)
            case JobProgress() | JobPrinted() | JobFailed():
                return self._progress(event)
            case DeliveryFinished(error=error):
                return self._finished(error)
            case CloudDown() | CloudUp():
                return self._outage(event)
            case KeyPressed():
                return self._key(event)
            case PinRequested():
                return self._pin_requested(event)
            case EnrolmentOffered():
                return self._enrolment_offered(event)
            case RemoteReleases() | RemoteJobs():
                return self._remote(event)
            case _:
                assert_never(event)

    # ---- transitions ----

    def _go(self, state: State, screen: Screen, timeout_s: float | None = None) -> list[Command]:
        self.state = state
        self.screen = screen
        self._timeout_s = timeout_s
        self._deadline = None if timeout_s is None or self._now is None else self._now + timeout_s
        return [ShowScreen(screen)]

    def _idle(self) -> list[Command]:
        self._forget_session()
        if self._offline is not None:  # "idle" while the cloud is away is the offline screen
            return self._go(State.OFFLINE, OfflineScreen(self._offline))
        return self._go(State.IDLE, IdleScreen(self.station_name))

    def _error(self, screen: Screen) -> list[Command]:
        return self._go(State.ERROR, screen, self.timings.error_s)

    def _end_session(self) -> list[Command]:
        commands: list[Command] = []
        if self.session_id is not None:
            commands.append(EndSession(self.session_id))
        self._forget_session()
        return commands

    def _forget_session(self) -> None:
        self.session_id = None
        self._tag = None
        self._entry = None
        self._pin_email = None
        self._email = None
        self._display_name = ""
        self._jobs = ()
        self._cursor = 0
        self._selected = frozenset()

    def _identify(self, tag: str) -> list[Command]:
        self._attempt += 1
        self._tag = tag
        commands = self._go(State.IDENTIFYING, ReadingScreen(), self.timings.identify_s)
        return [*commands, OpenSession(tag, self._attempt)]

    def _tick(self, now: float) -> list[Command]:
        self._now = now
        if self._timeout_s is None:
            return []
        if self._deadline is None:
            self._deadline = now + self._timeout_s
            return []
        if now < self._deadline:
            return []
        if self.state is State.IDENTIFYING:
            # The answer may still come; `_opened` ends that late session.
            self._forget_session()
            return self._error(ErrorScreen(CLOUD_TIMEOUT_MESSAGE, "Please try again"))
        if self.state is State.JOB_LIST:
            commands = self._end_session()
            return [*commands, *self._idle()]
        return self._idle()  # DONE or ERROR shown long enough

    def _card(self, tag: str) -> list[Command]:
        if self.state is State.OFFLINE:
            # Say clearly that the tap was seen and why nothing happens; no session is tried.
            return self._go(State.OFFLINE, OfflineScreen(OFFLINE_TAP_MESSAGE), self.timings.error_s)
        if self.state in (
            State.IDLE,
            State.DONE,
            State.ERROR,
            State.PIN_ENTRY,
            State.ENROLMENT,
            State.EMAIL_ENTRY,
        ):
            # A half-typed PIN, passcode or email address goes with the old attempt.
            self._forget_session()
            return self._identify(tag)
        if self.state is State.JOB_LIST:
            if tag == self._tag:
                self._restart_timer()
                return []
            commands = self._end_session()
            return [*commands, *self._identify(tag)]
        return []  # IDENTIFYING or DELIVERING: finish what was started

    def _unreadable(self, reason: str) -> list[Command]:
        screen = CardUnreadableScreen(reason)
        if self.state is State.OFFLINE:
            # The offline screen comes back when the timer runs out (see `_tick` -> `_idle`).
            return self._go(State.OFFLINE, screen, self.timings.error_s)
        if self.state in (State.IDLE, State.DONE, State.ERROR):
            return self._error(screen)
        return []  # never end or hide a session, an entry or a delivery for a bad read

    def _opened(self, event: SessionOpened) -> list[Command]:
        if self.state is not State.IDENTIFYING or event.attempt != self._attempt:
            return [EndSession(event.session_id)]  # a late answer: close it, show nothing
        self.session_id = event.session_id
        self._display_name = event.display_name
        self._jobs = event.jobs
        self._cursor = 0
        self._selected = frozenset()
        if not event.jobs:
            commands = self._end_session()
            screen = NoJobsScreen(event.display_name)
            return [*self._go(State.DONE, screen, self.timings.done_s), *commands]
        held = tuple(job.job_id for job in event.jobs if not job.reprint)
        if event.release_all and held:
            return self._deliver(held)  # touchless: the tap was the choice
        return self._go(State.JOB_LIST, self._job_list(), self.timings.session_s)

    def _refused(self, event: SessionRefused) -> list[Command]:
        if self.state is not State.IDENTIFYING or event.attempt != self._attempt:
            return []
        if event.kind == "wrong-pin" and self._tag is not None and self._pin_email is not None:
            # The same badge stays: only its PIN is asked again.
            return self._ask(KeypadEntry.for_pin(self._min_pin_digits, WRONG_PIN_MESSAGE))
        if event.kind == "wrong-pin" and self._pin_email is not None:
            # Email + PIN: either may be wrong (the cloud does not say which), so the address
            # comes back, editable, and Enter asks for the PIN again.
            email = EmailEntry(self._pin_email, WRONG_EMAIL_PIN_MESSAGE)
            self._forget_session()
            return self._type_email(email)
        if event.kind == "wrong-passcode":
            self._forget_session()
            return self._ask(KeypadEntry.for_passcode(WRONG_PASSCODE_MESSAGE))
        self._forget_session()
        if event.kind == "rate-limited":
            return self._error(ErrorScreen(TOO_MANY_TITLE, event.message))
        if event.kind == "pin-locked":
            return self._error(ErrorScreen(PIN_LOCKED_TITLE, PIN_LOCKED_MESSAGE))
        if event.kind == "pin-not-set":
            return self._error(ErrorScreen(NO_PIN_TITLE, NO_PIN_MESSAGE))
        if event.kind == "unknown-card":
            return self._error(
                ErrorScreen(UNKNOWN_CARD_TITLE, "Ask your administrator to enrol it")
            )
        if event.kind == "offline":
            return self._error(OfflineScreen(event.message))
        return self._error(ErrorScreen("Something went wrong", event.message))

    def _button(self, button: Button) -> list[Command]:
        if self.state is State.JOB_LIST:
            return self._job_list_button(button)
        if self.state is State.IDENTIFYING and button is Button.CANCEL:
            return self._idle()  # a late SessionOpened is ended by `_opened`
        if self.state in (State.DONE, State.ERROR, State.ENROLMENT):
            return self._idle()
        if self.state in (State.PIN_ENTRY, State.EMAIL_ENTRY) and button is Button.CANCEL:
            return self._idle()
        return []

    # ---- the keypad ----

    def _ask(self, entry: KeypadEntry) -> list[Command]:
        self._entry = entry
        return self._go(State.PIN_ENTRY, entry.screen(), self.timings.pin_s)

    def _key(self, event: KeyPressed) -> list[Command]:
        if self.email_entry and (commands := self._email_key(event)) is not None:
            return commands
        if event.key in (Key.CHARACTER, Key.TAB):
            return []  # no keyboard is configured, or nothing to type letters into here
        if event.key is Key.DIGIT and self.state in (
            State.IDLE,
            State.DONE,
            State.ERROR,
            State.ENROLMENT,
        ):
            # Typing on an idle station means a release passcode (a PIN follows a badge).
            self._forget_session()
            entry = KeypadEntry.for_passcode()
            entry.type(event.digit)
            return self._ask(entry)
        if self.state is not State.PIN_ENTRY or self._entry is None:
            return []
        entry = self._entry
        if event.key is Key.ESCAPE:
            return self._idle()
        if event.key is Key.DIGIT:
            changed = entry.type(event.digit)
        elif event.key is Key.BACKSPACE:
            changed = entry.erase()
        elif not entry.complete:
            entry.message = f"At least {entry.min_digits} digits"
            changed = True
        else:
            return self._submit(entry)
        self._restart_timer()
        return self._go(State.PIN_ENTRY, entry.screen(), self.timings.pin_s) if changed else []

    def _submit(self, entry: KeypadEntry) -> list[Command]:
        self._attempt += 1
        self._entry = None
        digits = entry.take()
        commands = self._go(
            State.IDENTIFYING, ReadingScreen(CHECKING_MESSAGE), self.timings.identify_s
        )
        if entry.purpose == "passcode":
            return [*commands, OpenPasscodeSession(digits, self._attempt)]
        if self._tag is None and self._pin_email is not None:  # email + PIN, no badge
            return [*commands, OpenEmailSession(self._pin_email, digits, self._attempt)]
        assert self._tag is not None  # set by the tap that PinRequested answered
        assert self._pin_email is not None
        return [*commands, OpenSession(self._tag, self._attempt, digits, self._pin_email)]

    def _pin_requested(self, event: PinRequested) -> list[Command]:
        if self.state is not State.IDENTIFYING or event.attempt != self._attempt:
            return []
        self._pin_email = event.pin_email
        self._min_pin_digits = event.min_digits
        self._site_min_pin = event.min_digits
        return self._ask(KeypadEntry.for_pin(event.min_digits))

    # ---- email + PIN at a full keyboard (station-entry) ----

    def _email_key(self, event: KeyPressed) -> list[Command] | None:
        """The keyboard's part of `_key`; None when the key is not about an email address."""
        if self.state is State.EMAIL_ENTRY and self._email is not None:
            email = self._email
            if event.key is Key.ESCAPE:
                return self._idle()
            if event.key in (Key.CHARACTER, Key.DIGIT):
                changed = email.type(event.digit)
            elif event.key is Key.BACKSPACE:
                changed = email.erase()
            elif event.key is Key.ENTER:
                address = email.address()
                if address is not None:
                    return self._ask_email_pin(address)
                email.message = NOT_AN_EMAIL_MESSAGE
                changed = True
            else:
                changed = False  # Tab: already here
            self._restart_timer()
            return (
                self._go(State.EMAIL_ENTRY, email.screen(), self.timings.pin_s) if changed else []
            )
        opens = event.key is Key.TAB or (
            event.key is Key.CHARACTER and event.digit.isascii() and event.digit.isalpha()
        )
        if opens and self.state in (State.IDLE, State.DONE, State.ERROR, State.ENROLMENT):
            self._forget_session()
            email = EmailEntry()
            if event.key is Key.CHARACTER:
                email.type(event.digit)
            return self._type_email(email)
        return None

    def _type_email(self, email: EmailEntry) -> list[Command]:
        self._email = email
        return self._go(State.EMAIL_ENTRY, email.screen(), self.timings.pin_s)

    def _ask_email_pin(self, address: str) -> list[Command]:
        self._email = None
        self._tag = None
        self._pin_email = address
        digits = self._site_min_pin or EMAIL_PIN_MIN_DIGITS
        return self._ask(KeypadEntry.for_pin(digits))

    def _enrolment_offered(self, event: EnrolmentOffered) -> list[Command]:
        if self.state is not State.IDENTIFYING or event.attempt != self._attempt:
            return []
        self._forget_session()
        screen = EnrolmentScreen(event.code, event.minutes_valid)
        # On screen no longer than the code lives.
        shown_s = min(self.timings.enrolment_s, event.minutes_valid * 60.0)
        return self._go(State.ENROLMENT, screen, shown_s)

    def _job_list_button(self, button: Button) -> list[Command]:
        assert self.session_id is not None
        count = len(self._jobs)
        job_id = self._jobs[self._cursor].job_id
        if button is Button.CANCEL:
            commands = self._end_session()
            return [*commands, *self._idle()]
        if button in (Button.PRINT_ALL, Button.PRINT_SELECTED):
            if button is Button.PRINT_ALL:
                # Jobs kept for reprint print again only when chosen one by one.
                chosen = tuple(job.job_id for job in self._jobs if not job.reprint)
                chosen = chosen or (job_id,)
            else:
                chosen = tuple(j.job_id for j in self._jobs if j.job_id in self._selected)
                chosen = chosen or (job_id,)
            return self._deliver(chosen)
        if button is Button.DELETE:
            self._restart_timer()
            return [DeleteJob(self.session_id, job_id)]
        if button is Button.UP:
            self._cursor = (self._cursor - 1) % count
        elif button is Button.DOWN:
            self._cursor = (self._cursor + 1) % count
        elif button is Button.SELECT:
            self._selected = self._selected ^ {job_id}
        return self._go(State.JOB_LIST, self._job_list(), self.timings.session_s)

    def _restart_timer(self) -> None:
        self._go(self.state, self.screen, self._timeout_s)

    def _deleted(self, job_id: str) -> list[Command]:
        if self.state is not State.JOB_LIST:
            return []
        remaining = tuple(job for job in self._jobs if job.job_id != job_id)
        if len(remaining) == len(self._jobs):
            return []
        self._jobs = remaining
        self._selected = self._selected - {job_id}
        if not remaining:
            screen = NoJobsScreen(self._display_name)
            commands = self._end_session()
            return [*self._go(State.DONE, screen, self.timings.done_s), *commands]
        self._cursor = min(self._cursor, len(remaining) - 1)
        return self._go(State.JOB_LIST, self._job_list(), self.timings.session_s)

    def _deliver(self, job_ids: tuple[str, ...]) -> list[Command]:
        assert self.session_id is not None
        names = {job.job_id: job.name for job in self._jobs}
        self._items = {job_id: DeliveryItem(names[job_id]) for job_id in job_ids}
        self._reasons = {}
        commands = self._go(State.DELIVERING, self._delivering())
        return [*commands, ReleaseJobs(self.session_id, job_ids)]

    def _progress(self, event: JobProgress | JobPrinted | JobFailed) -> list[Command]:
        if self.state is not State.DELIVERING or event.job_id not in self._items:
            return []
        item = self._items[event.job_id]
        if isinstance(event, JobProgress):
            if item.state not in ("waiting", "sending"):
                return []
            # 100% is kept for "printed": the printer has the last word.
            total = event.total_bytes
            percent = min(99, event.bytes_sent * 100 // total) if total > 0 else 0
            updated = DeliveryItem(item.name, "sending", max(percent, item.percent))
        elif isinstance(event, JobPrinted):
            updated = DeliveryItem(item.name, "printed", 100)
        else:
            updated = DeliveryItem(item.name, "failed", item.percent)
            self._reasons[event.job_id] = event.reason
        if updated == item:
            return []  # throttles redraws to whole-percent steps
        self._items[event.job_id] = updated
        return self._go(State.DELIVERING, self._delivering())

    def _finished(self, error: str | None) -> list[Command]:
        if self.state is not State.DELIVERING:
            return []
        end = self._end_session()
        printed = sum(1 for item in self._items.values() if item.state == "printed")
        not_printed = len(self._items) - printed
        owner, self._owner = self._owner, ""
        if error is None and not self._items:
            return [*end, *self._idle()]  # a remote delivery found nothing left to print
        if error is None and not_printed == 0:
            done = DoneScreen(printed, owner)
            return [*self._go(State.DONE, done, self.timings.done_s), *end]
        reasons = list(dict.fromkeys(self._reasons.values()))  # distinct, in order
        if error is not None:
            reasons.append(error)
        held = "your job is still held" if not_printed <= 1 else "your jobs are still held"
        message = f"{'; '.join(reasons) or 'Not sent'} — {held}"
        title = (
            "Not printed" if printed == 0 else f"{not_printed} of {len(self._items)} not printed"
        )
        return [*self._error(ErrorScreen(title, message)), *end]

    # ---- outages (station-hw) ----

    def _outage(self, event: CloudDown | CloudUp) -> list[Command]:
        if isinstance(event, CloudUp):
            self._offline = None
            return self._idle() if self.state is State.OFFLINE else []
        self._offline = event.message
        if self.state in (State.IDLE, State.DONE, State.ERROR):
            return self._idle()
        return []  # a session or a delivery in progress finishes (or fails) first

    # ---- screens ----

    def _job_list(self) -> JobListScreen:
        return JobListScreen(self._display_name, self._jobs, self._cursor, self._selected)

    def _delivering(self) -> DeliveringScreen:
        return DeliveringScreen(tuple(self._items.values()), self._owner)

    # ---- releases made from a phone (station-entry) ----

    def _remote(self, event: RemoteReleases | RemoteJobs) -> list[Command]:
        if isinstance(event, RemoteReleases):
            if self.state is not State.IDLE or not event.release_ids:
                return []  # busy (or offline): the long-poll reports them again when idle
            self._forget_session()
            self._items, self._reasons = {}, {}
            self._owner = ""
            commands = self._go(State.DELIVERING, self._delivering())
            return [*commands, DeliverRemote(event.release_ids)]
        if self.state is not State.DELIVERING or self.session_id is not None:
            return []  # only a remote delivery (no session) takes the names of remote jobs
        self._items = {job.job_id: DeliveryItem(job.name) for job in event.jobs}
        self._owner = ", ".join(dict.fromkeys(job.owner for job in event.jobs))
        return self._go(State.DELIVERING, self._delivering())
