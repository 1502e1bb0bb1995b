"""`pullprint submit`: stream a file to the cloud's REST submit endpoint."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

CHUNK_BYTES = 64 * 1024


class SubmitError(Exception):
    """The cloud refused the document or could not be reached."""


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(CHUNK_BYTES):
            yield block


def submit_stream(
    cloud_url: str,
    token: str,
    chunks: Iterator[bytes] | bytes,
    *,
    name: str,
    document_format: str,
    copies: int = 1,
    timeout_s: float = 60.0,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """POST a document (bytes or an iterator of chunks, sent chunked) and return the job JSON."""
    http = session or requests.Session()
    try:
        response = http.post(
            f"{cloud_url.rstrip('/')}/api/v1/jobs",
            params={"name": name, "copies": str(copies)},
            data=chunks,
            headers={"Authorization": f"Bearer {token}", "Content-Type": document_format},
            timeout=(5.0, timeout_s),
        )
    except requests.RequestException as exc:
        raise SubmitError(f"cannot reach the cloud at {cloud_url}: {exc}") from exc
    finally:
        if session is None:
            http.close()
    if response.status_code != 201:
        try:
            problem = response.json()
            detail = problem.get("detail") or problem.get("title")
        except ValueError:
            detail = response.text[:200]
        raise SubmitError(f"the cloud refused the document ({response.status_code}): {detail}")
    job: dict[str, Any] = response.json()
    return job


def submit_file(
    cloud_url: str,
    token: str,
    path: Path,
    *,
    name: str | None = None,
    document_format: str | None = None,
    copies: int = 1,
) -> dict[str, Any]:
    """Submit a file from disk, streamed."""
    if not path.is_file():
        raise SubmitError(f"no such file: {path}")
    fmt = document_format or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return submit_stream(
        cloud_url, token, _chunks(path), name=name or path.name, document_format=fmt, copies=copies
    )
