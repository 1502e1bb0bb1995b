"""The virtual printer's records: jobs, documents as they stream in, and response helpers.

Plain data and functions without locks or I/O: `VirtualPrinter` owns every instance and guards
them with its condition variable.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from hardware.ipp.codec import Attribute, IppMessage, encode_message
from hardware.ipp.enums import JobState, StatusCode, Tag


@dataclass(frozen=True, slots=True)
class ReceivedDocument:
    """A document the virtual printer printed (or aborted)."""

    printer_job_id: int
    job_name: str
    user_name: str
    document_format: str
    data: bytes  # empty when the printer was made with keep_documents=False
    first_byte_at: float | None  # time.monotonic() when the first document byte arrived
    completed_at: float  # time.monotonic() when the job reached its terminal state
    copies: int = 1
    size: int = 0  # document bytes received, kept or not
    sha256: str = ""  # of the document bytes received, kept or not


@dataclass(slots=True)
class VirtualJob:
    """One job as the virtual printer holds it (all access under its condition variable)."""

    job_id: int
    name: str
    user: str
    document_format: str
    copies: int
    created_at: float
    fault: str | None
    started_at: float | None = None  # the document is in: processing runs from here
    sink: DocumentSink | None = None
    data: bytes = b""
    first_byte_at: float | None = None
    size: int = 0
    sha256: str = ""
    state: JobState = JobState.PENDING
    reasons: list[str] = field(default_factory=lambda: ["none"])
    timer: threading.Timer | None = None


class DocumentSink:
    """Collects a document as it streams in: its size and SHA-256 always, its bytes if asked."""

    def __init__(self, keep: bool) -> None:
        self._parts: list[bytes] | None = [] if keep else None
        self.size = 0
        self.sha256 = hashlib.sha256()

    def add(self, chunk: bytes) -> int:
        if self._parts is not None:
            self._parts.append(chunk)
        self.size += len(chunk)
        self.sha256.update(chunk)
        return len(chunk)

    def data(self) -> bytes:
        return b"".join(self._parts) if self._parts is not None else b""


def job_id_of(request: IppMessage) -> int | None:
    """The job a request names, by job-id or by the tail of job-uri."""
    job_id = request.get_int(Tag.OPERATION_ATTRIBUTES, "job-id")
    if job_id is not None:
        return job_id
    job_uri = request.get_str(Tag.OPERATION_ATTRIBUTES, "job-uri") or ""
    tail = job_uri.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def reply(status: StatusCode, request: IppMessage, message: str | None = None) -> IppMessage:
    """A response to `request`, with a status-message when given."""
    extra = [Attribute.of("status-message", Tag.TEXT_WITHOUT_LANGUAGE, message)] if message else []
    return IppMessage.response(status, request.request_id, *extra)


def error_response(status: StatusCode, request_id: int, message: str) -> bytes:
    """An encoded error response for a request that could not be decoded or validated."""
    return encode_message(
        IppMessage.response(
            status,
            request_id,
            Attribute.of("status-message", Tag.TEXT_WITHOUT_LANGUAGE, message[:255]),
        )
    )


def drain(body: Iterator[bytes]) -> None:
    """Read the rest of a request body, so the connection can carry the next request."""
    for _ in body:
        pass
