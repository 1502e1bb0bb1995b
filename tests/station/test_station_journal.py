"""The release journal, and reconciliation after a restart: nothing lost, nothing printed twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hardware.display.simulated import SimulatedDisplay
from hardware.errors import PrinterUnreachableError
from hardware.readers.simulated import SimulatedCardReader
from station.app import build_station
from station.config import load_config
from station.errors import CloudUnreachableError
from station.journal import JournalEntry, ReleaseJournal

SITE_KEY = bytes(range(32))


def test_entries_survive_and_are_removed_only_when_forgotten(tmp_path: Path) -> None:
    journal = ReleaseJournal(tmp_path / "j")
    journal.begin("r1", "j1")
    journal.begin("r2", "j2")
    journal.settle("r2", "j2", "printed", None, 7)
    again = ReleaseJournal(tmp_path / "j")  # a new process reads the same directory
    assert again.entries() == [
        JournalEntry("r1", "j1"),
        JournalEntry("r2", "j2", "printed", None, 7),
    ]
    again.forget("r1")
    assert [e.release_id for e in journal.entries()] == ["r2"]
    assert not list((tmp_path / "j").glob(".entry-*"))  # no temp files left behind


def test_a_damaged_entry_is_skipped_not_deleted(tmp_path: Path) -> None:
    journal = ReleaseJournal(tmp_path / "j")
    (tmp_path / "j" / "broken.json").write_text("{not json")
    journal.begin("r1", "j1")
    assert [e.release_id for e in journal.entries()] == ["r1"]
    assert (tmp_path / "j" / "broken.json").exists()


@pytest.mark.parametrize("bad", ["", "../x", ".hidden", "a/b"])
def test_release_ids_cannot_escape_the_directory(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="release id"):
        ReleaseJournal(tmp_path).begin(bad, "j")


class Cloud:
    """Records outcomes; can be made unreachable."""

    def __init__(self) -> None:
        self.outcomes: dict[str, tuple[str, str | None]] = {}
        self.offline = False

    def report_outcome(self, release_id, outcome, reason=None, printer_job_id=None) -> None:
        if self.offline:
            raise CloudUnreachableError("cannot reach the cloud")
        self.outcomes[release_id] = (outcome, reason)

    def close(self) -> None: ...


class Printer:
    """Answers job_outcome from a table; sends nothing (reconciliation must not print)."""

    uri = "ipp://127.0.0.1:1/ipp/print"

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.delivered = 0

    def job_outcome(self, job_name: str) -> str:
        answer = self.answers[job_name]
        if answer == "unreachable":
            raise PrinterUnreachableError("Printer not reachable")
        return answer

    def deliver(self, *args, **kwargs):  # pragma: no cover - must never be called here
        self.delivered += 1
        raise AssertionError("reconciliation must not send anything")

    def close(self) -> None: ...


def _station(tmp_path: Path, cloud: Cloud, printer: Printer):
    (tmp_path / "station.toml").write_text(
        f'[station]\nname = "s"\n[cloud]\nurl = "http://127.0.0.1:1"\n'
        'station_id = "6f1c2a54-9d3e-4c1b-8a7f-2b5d0e9c4a11"\n'
        f'[site]\nkey_hex = "{SITE_KEY.hex()}"\n[printer]\nuri = "{printer.uri}"\n'
        f'[spool]\ndir = "{tmp_path / "spool"}"\n'
    )
    config = load_config(tmp_path / "station.toml", {})
    return build_station(
        config,
        reader=SimulatedCardReader(),
        display=SimulatedDisplay(),
        transport=printer,
        client=cloud,
    )


def test_restart_settles_every_release_by_asking_the_printer(tmp_path: Path) -> None:
    journal = ReleaseJournal(tmp_path / "spool" / "journal")
    journal.begin("done", "j1")  # sent, printer finished, station died before reporting
    journal.begin("gone", "j2")  # sent, but the printer never got it
    journal.begin("queued", "j3")  # still in the printer's queue: ask again later
    journal.begin("nobody", "j4")  # the printer cannot be reached right now
    journal.settle("known", "j5", "printed", None, 4)  # the cloud was down when it printed
    cloud = Cloud()
    printer = Printer(
        {"done": "completed", "gone": "absent", "queued": "pending", "nobody": "unreachable"}
    )
    station = _station(tmp_path, cloud, printer)
    station.start()
    try:
        deadline = time.monotonic() + 5
        while len(cloud.outcomes) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        station.stop()
    assert cloud.outcomes == {
        "done": ("printed", None),
        "gone": ("failed", "Interrupted by a station restart"),
        "known": ("printed", None),
    }
    assert printer.delivered == 0
    assert sorted(e.release_id for e in journal.entries()) == ["nobody", "queued"]


def test_an_outcome_the_cloud_missed_is_kept_until_it_is_taken(tmp_path: Path) -> None:
    journal = ReleaseJournal(tmp_path / "spool" / "journal")
    journal.settle("r", "j", "printed")
    cloud, printer = Cloud(), Printer({})
    cloud.offline = True
    station = _station(tmp_path, cloud, printer)
    station.start()
    station.stop()
    assert [e.outcome for e in journal.entries()] == ["printed"]  # not lost
    cloud.offline = False
    station.reconcile()
    assert cloud.outcomes == {"r": ("printed", None)}
    assert journal.entries() == []


def test_listing_while_another_thread_forgets_an_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker settles (`forget`) while the engine lists: an entry gone between the
    directory listing and its stat is simply not there, not a crash (seen in CI under load)."""
    journal = ReleaseJournal(tmp_path / "j")
    journal.begin("r1", "j1")
    journal.begin("r2", "j2")
    listed = sorted(journal.directory.glob("*.json"))

    def glob_then_forget(_self: Path, _pattern: str) -> list[Path]:
        journal.forget("r1")  # gone after the listing, before it is looked at
        return listed

    monkeypatch.setattr(Path, "glob", glob_then_forget)
    assert journal.entries() == [JournalEntry("r2", "j2")]
