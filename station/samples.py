"""Every screen filled with sample data: for golden tests and `pullprint station screens`."""

from __future__ import annotations

from datetime import datetime

from station.models import JobSummary
from station.screens import (
    CardUnreadableScreen,
    DeliveringScreen,
    DeliveryItem,
    DoneScreen,
    EmailEntryScreen,
    EnrolmentScreen,
    ErrorScreen,
    IdleScreen,
    JobListScreen,
    NoJobsScreen,
    OfflineScreen,
    PairingScreen,
    PinEntryScreen,
    ReadingScreen,
    Screen,
)

SAMPLE_JOBS = tuple(
    JobSummary(f"j{i}", name, datetime(2026, 5, 9, 9 + i, 5), size, pages)
    for i, (name, size, pages) in enumerate(
        [
            ("Quarterly report final v3.pdf", 1_234_567, 12),
            ("Boarding pass", 80_000, 1),
            ("notes.txt", 3_000, None),
            ("Thesis chapter 2 — draft with comments", 5_500_000, 48),
            ("Invoice 2026-117", 40_000, 2),
            ("Menu", 9_000, 1),
        ]
    )
)


def sample_screens() -> dict[str, Screen]:
    """Each kind of screen (and a few hard cases: scrolling, long text), by a file-safe name."""
    return {
        "idle": IdleScreen("Floor 2 East"),
        "reading": ReadingScreen(),
        "jobs": JobListScreen("Ana Lima", SAMPLE_JOBS, 3, frozenset({"j1", "j3"})),
        "jobs-top": JobListScreen("Ana Lima", SAMPLE_JOBS[:2], 0, frozenset()),
        "delivering": DeliveringScreen(
            (
                DeliveryItem("Quarterly report final v3.pdf", "printed", 100),
                DeliveryItem("Boarding pass", "sending", 42),
                DeliveryItem("notes.txt"),
            )
        ),
        "done": DoneScreen(2),
        "error": ErrorScreen("Not printed", "Out of paper — your job is still held"),
        "error-long": ErrorScreen("Something went wrong", "word " * 80),
        "no-jobs": NoJobsScreen("Ana Lima"),
        "offline": OfflineScreen(),
        "pin": PinEntryScreen(entered=4, message="Wrong PIN, try again"),
        "passcode": PinEntryScreen("Enter passcode", entered=7, length=10),
        "checking": ReadingScreen("Checking…"),
        "too-many": ErrorScreen("Too many attempts", "Wait 8 seconds and try again"),
        "pin-locked": ErrorScreen("PIN locked", "Ask your administrator to reset it"),
        "pairing": PairingScreen("WDJB-MJHT", "SHA256:4f2a 91c0 77de 03b5"),
        "enrolment": EnrolmentScreen("k7dq-m2xr"),
        "unreadable": CardUnreadableScreen("garbled"),
        "unreadable-unsupported": CardUnreadableScreen("unsupported"),
        "email": EmailEntryScreen("ana.lima@exa"),
        "email-long": EmailEntryScreen("ana.maria.lima-santos+printing@faculty.example.org"),
        "delivering-remote": DeliveringScreen(
            (DeliveryItem("Boarding pass", "sending", 64),), owner="Ana Lima"
        ),
        "done-remote": DoneScreen(1, owner="Ana Lima"),
        "email-wrong": EmailEntryScreen("ana.lima@example.org", "Wrong email or PIN, try again"),
    }
