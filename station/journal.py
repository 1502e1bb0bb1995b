"""The release journal: releases this station sent to its printer and has not settled yet.

Invariant (DESIGN.md, "The loop"): a release is never reported printed without the printer's word,
and never delivered twice. So an entry is written *before* the first byte goes to the printer, the
outcome is written as soon as the printer has spoken, and the entry is removed only after the cloud
acknowledged that outcome. After a crash or power loss the entries left over say exactly which
releases must be settled by asking the printer (`job_outcome(release id)`) instead of sending again.

Entries are small JSON files, one per release, written atomically (temp file, fsync, rename) in a
directory that must survive restarts (`[spool] dir` on a station). No document content, key or
credential is ever written here: only ids, the job name the printer knows, and the outcome.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

Outcome = Literal["printed", "failed"]


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One release between "sending" and "the cloud knows how it ended"."""

    release_id: str
    job_id: str
    outcome: Outcome | None = None  # None: the printer has not said yet (or we crashed)
    reason: str | None = None
    printer_job_id: int | None = None


class ReleaseJournal:
    """Crash-safe records of releases in flight, in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _path(self, release_id: str) -> Path:
        if not release_id or "/" in release_id or release_id.startswith("."):
            raise ValueError("not a release id")
        return self.directory / f"{release_id}.json"

    def begin(self, release_id: str, job_id: str) -> None:
        """Record that `release_id` is about to be sent to the printer."""
        self._write(JournalEntry(release_id, job_id))

    def settle(
        self,
        release_id: str,
        job_id: str,
        outcome: Outcome,
        reason: str | None = None,
        printer_job_id: int | None = None,
    ) -> None:
        """Record what the printer said, before telling the cloud."""
        self._write(JournalEntry(release_id, job_id, outcome, reason, printer_job_id))

    def forget(self, release_id: str) -> None:
        """The cloud acknowledged the outcome: nothing is left to do for this release."""
        self._path(release_id).unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def entries(self) -> list[JournalEntry]:
        """Every unsettled release, oldest file first; unreadable files are skipped, not lost."""
        found = []
        dated = []
        for path in self.directory.glob("*.json"):
            try:
                dated.append((path.stat().st_mtime, path))
            except FileNotFoundError:
                continue  # settled (`forget`) by another thread while we listed
        for _, path in sorted(dated):
            try:
                data = json.loads(path.read_text())
                found.append(JournalEntry(**data))
            except (OSError, ValueError, TypeError):
                continue  # left in place for a person to look at; never silently deleted
        return found

    def _write(self, entry: JournalEntry) -> None:
        target = self._path(entry.release_id)
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".entry-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(asdict(entry), out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.directory)


def _fsync_dir(directory: Path) -> None:
    # The rename (or unlink) is durable only once the directory itself is synced.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
