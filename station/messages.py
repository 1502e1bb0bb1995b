"""The release workflow's vocabulary: where it is (`State`), the keys and buttons it knows, the
events it takes in and the commands it gives out. Plain data; `station.workflow` holds the rules.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal

from station.models import JobSummary
from station.screens import Screen

RefusalKind = Literal[
    "unknown-card",
    "offline",
    "error",
    "wrong-pin",
    "wrong-passcode",
    "rate-limited",
    "pin-locked",
    "pin-not-set",
]


class State(enum.Enum):
    """Where the workflow is."""

    OFFLINE = "offline"  # the cloud is unreachable; the runtime probes it and says when it is back
    IDLE = "idle"
    IDENTIFYING = "identifying"
    JOB_LIST = "job-list"
    DELIVERING = "delivering"
    DONE = "done"
    ERROR = "error"
    PIN_ENTRY = "pin-entry"
    ENROLMENT = "enrolment"
    EMAIL_ENTRY = "email-entry"  # station-entry: a full keyboard


class Button(enum.Enum):
    """What a person can press (physical buttons or a touch panel)."""

    PRINT_ALL = "print-all"
    UP = "up"
    DOWN = "down"
    SELECT = "select"  # toggle the job under the cursor
    PRINT_SELECTED = "print-selected"
    DELETE = "delete"
    CANCEL = "cancel"


class Key(enum.Enum):
    """What a keypad can send."""

    DIGIT = "digit"
    BACKSPACE = "backspace"
    ENTER = "enter"
    ESCAPE = "escape"
    CHARACTER = "character"  # a full keyboard: a letter or one of "@.-_+"
    TAB = "tab"  # a full keyboard: opens email entry (an address may start with a digit)


# ---- events (in) ----


@dataclass(frozen=True, slots=True)
class CardPresented:
    """A badge was tapped; `tag` is its keyed tag (never shown, never logged)."""

    tag: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class CardUnreadable:
    """A card was presented but the reader could not read it; `reason` is one word
    ("garbled", "parity", "not-read", "unsupported"), never the card's data."""

    reason: str


@dataclass(frozen=True, slots=True)
class SessionOpened:
    """The cloud recognised the badge: the answer to `OpenSession` number `attempt`."""

    session_id: str
    display_name: str
    jobs: tuple[JobSummary, ...]
    attempt: int
    # The site's release-all-on-tap policy: print every held job at once, without the list.
    release_all: bool = False


@dataclass(frozen=True, slots=True)
class SessionRefused:
    """The cloud did not open a session for `OpenSession` number `attempt`."""

    kind: RefusalKind
    message: str
    attempt: int


@dataclass(frozen=True, slots=True)
class KeyPressed:
    """A keypad key; `digit` is "0".."9" for `Key.DIGIT` and the character for
    `Key.CHARACTER` (hidden from repr, never logged)."""

    key: Key
    digit: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class PinRequested:
    """The badge of `OpenSession` number `attempt` is known, and the site wants its PIN too.

    `pin_email` keys the PIN tag (the runtime computes it); it is never shown.
    """

    pin_email: str = field(repr=False)
    min_digits: int
    attempt: int


@dataclass(frozen=True, slots=True)
class EnrolmentOffered:
    """The badge of `OpenSession` number `attempt` is unknown and may be self-enrolled."""

    code: str = field(repr=False)
    minutes_valid: int
    attempt: int


@dataclass(frozen=True, slots=True)
class ButtonPressed:
    """A button was pressed."""

    button: Button


@dataclass(frozen=True, slots=True)
class JobProgress:
    """Bytes of a job's delivery done so far."""

    job_id: str
    bytes_sent: int
    total_bytes: int


@dataclass(frozen=True, slots=True)
class JobPrinted:
    """The printer completed a job (and the cloud was told)."""

    job_id: str


@dataclass(frozen=True, slots=True)
class JobFailed:
    """A job was not printed; `reason` is in words a user understands."""

    job_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeliveryFinished:
    """Every job of the last `ReleaseJobs` has an outcome; `error` if the release itself failed."""

    error: str | None = None


@dataclass(frozen=True, slots=True)
class JobDeleted:
    """A job was deleted at the user's request."""

    job_id: str


@dataclass(frozen=True, slots=True)
class Tick:
    """The clock, in seconds from any fixed origin (monotonic)."""

    now_s: float


# ---- outage events (station-hw) ----


@dataclass(frozen=True, slots=True)
class CloudDown:
    """The cloud stopped answering; `message` says so in words."""

    message: str = "Cannot reach the print service"


@dataclass(frozen=True, slots=True)
class CloudUp:
    """The cloud answers again."""


OFFLINE_TAP_MESSAGE = "Your badge cannot be checked until the print service is back"


# ---- releases made from a phone (station-entry) ----


@dataclass(frozen=True, slots=True)
class RemoteReleases:
    """The cloud has releases for this station that it did not make itself (from a phone)."""

    release_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RemoteJob:
    """One job of a remote release, as its grant names it."""

    job_id: str
    name: str
    owner: str


@dataclass(frozen=True, slots=True)
class RemoteJobs:
    """The jobs the runtime is about to deliver for `DeliverRemote` (those it could fetch)."""

    jobs: tuple[RemoteJob, ...]


Event = (
    CloudDown
    | CloudUp
    | CardPresented
    | CardUnreadable
    | SessionOpened
    | SessionRefused
    | ButtonPressed
    | JobProgress
    | JobPrinted
    | JobFailed
    | DeliveryFinished
    | JobDeleted
    | Tick
    | KeyPressed
    | PinRequested
    | EnrolmentOffered
    | RemoteReleases
    | RemoteJobs
)


# ---- commands (out) ----


@dataclass(frozen=True, slots=True)
class ShowScreen:
    """Show this screen."""

    screen: Screen


@dataclass(frozen=True, slots=True)
class OpenSession:
    """Ask the cloud who this badge is; answer with SessionOpened/SessionRefused(attempt),
    PinRequested (the site wants a PIN) or EnrolmentOffered (an unknown badge).

    With `pin`, the runtime sends the PIN tag keyed with `pin_email` along with the badge.
    """

    tag: str = field(repr=False)
    attempt: int
    pin: str | None = field(default=None, repr=False)
    pin_email: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class OpenPasscodeSession:
    """Ask the cloud whose release passcode this is; answer with SessionOpened/SessionRefused."""

    passcode: str = field(repr=False)
    attempt: int


@dataclass(frozen=True, slots=True)
class ReleaseJobs:
    """Release these jobs to this station's printer and deliver them, in order."""

    session_id: str
    job_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeleteJob:
    """Delete one held job; answer with JobDeleted."""

    session_id: str
    job_id: str


@dataclass(frozen=True, slots=True)
class EndSession:
    """End a session at the cloud (idempotent)."""

    session_id: str


@dataclass(frozen=True, slots=True)
class OpenEmailSession:
    """Ask the cloud whose email and PIN these are (the runtime sends the PIN's keyed tag);
    answer with SessionOpened/SessionRefused(attempt). Neither field is ever logged."""

    email: str = field(repr=False)
    pin: str = field(repr=False)
    attempt: int


@dataclass(frozen=True, slots=True)
class DeliverRemote:
    """Fetch the grants of these releases (made from a phone) and deliver them, in order;
    answer with RemoteJobs, then the usual JobProgress/JobPrinted/JobFailed, DeliveryFinished."""

    release_ids: tuple[str, ...]


Command = (
    ShowScreen
    | DeliverRemote
    | OpenSession
    | OpenPasscodeSession
    | OpenEmailSession
    | ReleaseJobs
    | DeleteJob
    | EndSession
)
