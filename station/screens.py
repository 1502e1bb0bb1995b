"""The screen model: what the station shows, as plain frozen values (no pixels, no I/O).

The workflow produces these; `station.render` turns one into a Pillow image sized to whatever
display is fitted, and `lines()` gives the same content as text (the demo prints it to a terminal,
tests read it). `label` is a short name for file names of saved frames.

Invariant: a screen never carries a card tag, a token or document content; only what the person
at the printer may see (their display name and their own job names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from station.models import JobSummary

ItemState = Literal["waiting", "sending", "printed", "failed"]


def format_size(size_bytes: int) -> str:
    """A short human size: 800 B, 12 KB, 3.4 MB."""
    if size_bytes < 1000:
        return f"{size_bytes} B"
    if size_bytes < 1_000_000:
        return f"{size_bytes // 1000} KB"
    if size_bytes < 10_000_000:
        return f"{size_bytes / 1_000_000:.1f} MB"
    return f"{size_bytes // 1_000_000} MB"


def job_details(job: JobSummary, *, with_time: bool = True) -> str:
    """Submission time and pages (or size, while pages are unknown) of a job."""
    amount = f"{job.pages} p" if job.pages is not None else format_size(job.size_bytes)
    return f"{job.submitted_at:%H:%M} {amount}" if with_time else amount


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@dataclass(frozen=True, slots=True)
class IdleScreen:
    """Waiting for a badge."""

    station_name: str = ""

    @property
    def label(self) -> str:
        """Short name for frame files."""
        return "idle"

    def lines(self) -> list[str]:
        """The screen as text."""
        lines = ["PullPrint", "Tap your badge to print"]
        return [*lines, self.station_name] if self.station_name else lines


@dataclass(frozen=True, slots=True)
class ReadingScreen:
    """A badge was tapped (or a PIN or passcode entered); asking the cloud who it is."""

    message: str = "Reading badge…"

    @property
    def label(self) -> str:
        """Short name for frame files."""
        return "reading"

    def lines(self) -> list[str]:
        """The screen as text."""
        return ["PullPrint", self.message]


@dataclass(frozen=True, slots=True)
class JobListScreen:
    """The user's held jobs; `cursor` is the highlighted row, `selected` the ticked job ids."""

    display_name: str
    jobs: tuple[JobSummary, ...]
    cursor: int = 0
    selected: frozenset[str] = field(default_factory=frozenset)

    @property
    def label(self) -> str:
        """Short name for frame files."""
        return "jobs"

    @property
    def title(self) -> str:
        """The header line: who, and how many jobs."""
        return f"{self.display_name}: {_plural(len(self.jobs), 'job')}"

    def row(self, index: int) -> str:
        """One job as text: cursor mark, tick box, name, time and pages."""
        job = self.jobs[index]
        mark = ">" if index == self.cursor else " "
        tick = "x" if job.job_id in self.selected else " "
        return f"{mark} [{tick}] {job.name}  {job_details(job)}"

    def lines(self) -> list[str]:
        """The screen as text."""
        return [self.title, *(self.row(i) for i in range(len(self.jobs)))]


@dataclass(frozen=True, slots=True)
class DeliveryItem:
    """One job on the delivering screen."""

    name: str
    state: ItemState = "waiting"
    percent: int = 0

    @property
    def status(self) -> str:
        """The state in words."""
        return f"{self.percent}%" if self.state == "sending" else self.state


@dataclass(frozen=True, slots=True)
class DeliveringScreen:
    """Jobs on their way to the printer, with per-job progress; `owner` names whose jobs they
    are when nobody is at the station (released from a phone)."""

    items: tuple[DeliveryItem, ...]
    owner: str = ""

    @property
    def label(self) -> str:
        """Short name for frame files."""
        return "delivering"

    @property
    def title(self) -> str:
        """The header line."""
        return f"Printing for {self.owner}" if self.owner else "Printing"

    def lines(self) -> list[str]:
        """The screen as text."""
        return [self.title, *(f"{item.name}  {item.status}" for item in self.items)]


@dataclass(frozen=True, slots=True)
class DoneScreen:
    """Every chosen job printed (`owner`: for whom, when released from a phone)."""

    printed: int
    owner: str = ""

    @property
    def label(self) -> str:
        """Short name for frame files."""
        return "done"

    def lines(self) -> list[str]:
        """The screen as text."""
        printed = f"Printed {_plural(self.printed, 'job')}"
        if self.owner:
            printed += f" for {self.owner}"
        return ["Done", printed, "Collect your pages"]


@dataclass(frozen=True, slots=True)
class ErrorScreen:
    """Something went wrong; `message` says what, in words a user understands."""

    title: str
    message: str

    @property
    def label(self) -> str:
        """Short name for frame files."""
        return "error"

    def lines(self) -> list[str]:
        """The screen as text."""
        return [self.title, self.message]


@dataclass(frozen=True, slots=True)
class NoJobsScreen:
    """The user has nothing held."""

    display_name: str = ""

    @property
    def label(self) -> str:
        """Short name for frame files."""
        return "no-jobs"

    def lines(self) -> list[str]:
        """The screen as text."""
        hello = f"Hello, {self.display_name}" if self.display_name else "Hello"
        return [hello, "No jobs waiting"]


@dataclass(frozen=True, slots=True)
class OfflineScreen:
    """The print service cannot be reached; the station keeps trying by itself."""

    message: str = "Cannot reach the print service"

    @property
    def label(self) -> str:
        """Short name for frame files."""
        return "offline"

    def lines(self) -> list[str]:
        """The screen as text."""
        return ["Offline", self.message]


@dataclass(frozen=True, slots=True)
class PinEntryScreen:
    """Typing a PIN or passcode on the keypad: only a dot per digit is ever shown."""

    prompt: str = "Enter your PIN"
    entered: int = 0  # how many digits typed so far
    length: int = 6  # the expected length, for the empty slots
    message: str = ""  # e.g. "Wrong PIN, 2 tries left"

    @property
    def label(self) -> str:
        """Short name for frame files."""
        return "pin"

    def lines(self) -> list[str]:
        """The screen as text."""
        slots = max(self.length, self.entered)
        dots = " ".join("*" if i < self.entered else "_" for i in range(slots))
        return [self.prompt, dots, *([self.message] if self.message else [])]


@dataclass(frozen=True, slots=True)
class PairingScreen:
    """A new station asks to be paired: an admin types `code` and checks the key fingerprint."""

    code: str
    fingerprint: str

    @property
    def label(self) -> str:
        """Short name for frame files."""
        return "pairing"

    def lines(self) -> list[str]:
        """The screen as text."""
        return ["Pair this station", f"Code: {self.code}", f"Key: {self.fingerprint}"]


@dataclass(frozen=True, slots=True)
class EnrolmentScreen:
    """An unknown badge: its owner signs in elsewhere and redeems `code` to claim it."""

    code: str
    minutes_valid: int = 10

    @property
    def label(self) -> str:
        """Short name for frame files."""
        return "enrolment"

    def lines(self) -> list[str]:
        """The screen as text."""
        return [
            "New badge",
            f"Enrolment code: {self.code}",
            f"Sign in and enter it within {self.minutes_valid} minutes",
        ]


# What the person at the reader is told for each reason a card could not be read (the reasons of
# hardware.readers.errors.CardUnreadableError): (title, advice), short enough for the title bar
# and two rows of a 128x64 OLED in large type. Not "not recognised": that is the cloud's answer
# for an unknown badge, which needs enrolling, not another tap. An unknown reason gets the first.
UNREADABLE_TEXT: dict[str, tuple[str, str]] = {
    "garbled": ("Card not read", "Hold the card still and try again"),
    "parity": ("Card not read", "Misread: hold it still, try again"),
    "not-read": ("Card not read", "Hold the card flat on the reader"),
    "unsupported": ("Unusable card", "This card type cannot be used"),
}


@dataclass(frozen=True, slots=True)
class CardUnreadableScreen:
    """A card was presented but could not be read. Holds only the reason word: no card data."""

    reason: str = "garbled"

    @property
    def label(self) -> str:
        """Short name for frame files."""
        return "unreadable"

    def lines(self) -> list[str]:
        """The screen as text."""
        title, advice = UNREADABLE_TEXT.get(self.reason, UNREADABLE_TEXT["garbled"])
        return [title, advice]


# --- station-entry: email + PIN sign-in at a full keyboard ---


@dataclass(frozen=True, slots=True)
class EmailEntryScreen:
    """Typing an email address on a full keyboard; shown as typed (an address is not secret,
    the PIN that follows is masked)."""

    text: str = ""
    message: str = ""  # e.g. "Not an email address"
    prompt: str = "Enter your email"

    @property
    def label(self) -> str:
        """Short name for frame files."""
        return "email"

    def lines(self) -> list[str]:
        """The screen as text."""
        return [self.prompt, f"{self.text}_", *([self.message] if self.message else [])]


# --- end station-entry ---


Screen = (
    IdleScreen
    | ReadingScreen
    | JobListScreen
    | DeliveringScreen
    | DoneScreen
    | ErrorScreen
    | NoJobsScreen
    | OfflineScreen
    | PinEntryScreen
    | PairingScreen
    | EnrolmentScreen
    | CardUnreadableScreen
    | EmailEntryScreen
)
