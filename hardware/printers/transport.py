"""The `PrinterTransport` port: deliver one document to one printer and prove it printed.

Invariant: `deliver` returns only when the printer has said the job reached a terminal state
(completed), and raises `PrinterError` (never returns) for anything else, so a caller can report a
release printed exactly when `deliver` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PrintJob:
    """What the printer is told about a document."""

    job_name: str  # the release id: lets a restarted station find the job on the printer
    user_name: str
    document_format: str = "application/octet-stream"
    copies: int = 1


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The printer's word that a job completed."""

    printer_job_id: int | None
    bytes_sent: int
    impressions: int | None = None  # job-impressions-completed, where the printer reports it


class PrinterTransport(Protocol):
    """One way of reaching one printer (chosen by URI scheme)."""

    uri: str

    def deliver(
        self,
        job: PrintJob,
        document: Iterable[bytes],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> DeliveryResult:
        """Send `document` (streamed, constant memory) and wait for the printer to complete it.

        `on_progress(bytes_sent)` is called as bytes go out. Raises `PrinterError` subclasses.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
