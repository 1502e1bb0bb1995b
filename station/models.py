"""Plain values the station's parts share: what a held job looks like on the station.

No I/O here: the workflow and the screen model import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class JobSummary:
    """One held job as listed on the station screen (API.md, POST /station/sessions `jobs`)."""

    job_id: str
    name: str
    submitted_at: datetime  # in the station's local time, for display
    size_bytes: int
    pages: int | None = None  # unknown until the cloud has counted them
    copies: int = 1
    # Printed already and kept for reprint by the site: listed, but "print all" leaves it out.
    reprint: bool = False
