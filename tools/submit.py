"""`pullprint submit`: stream a file to the cloud's REST submit endpoint.

Every submission carries an `Idempotency-Key`, so a submission retried after a lost answer (a
connection reset, a 502-504 from a proxy) yields one job, never two.

A zero-knowledge site (`GET /api/v1/site` says so and gives its X25519 public key) gets a *sealed*
job: the file is encrypted here into the job container (`cloud.container.Encryptor`, a fresh
data key and job id) and the data key is wrapped to the site key with HPKE; the cloud receives
only ciphertext, a page count made here, and the wrapped key. The container is written to a
temporary file first (ciphertext only) so that a retry sends the very same bytes.
"""

from __future__ import annotations

import base64
import mimetypes
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import requests

from cloud.container import Encryptor, hpke_wrap_key, new_data_key
from cloud.pagecount import page_counter_for

CHUNK_BYTES = 64 * 1024
SEALED_JOB_TYPE = "application/vnd.pullprint.sealed-job"
_RETRY_STATUSES = (502, 503, 504)


class SubmitError(Exception):
    """The cloud refused the document or could not be reached."""


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(CHUNK_BYTES):
            yield block


def _refusal(response: requests.Response) -> SubmitError:
    try:
        problem = response.json()
        detail = problem.get("detail") or problem.get("title")
    except ValueError:
        detail = response.text[:200]
    return SubmitError(f"the cloud refused the document ({response.status_code}): {detail}")


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
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """POST a document (bytes or an iterator of chunks, sent chunked) and return the job JSON.

    A one-shot iterator cannot be sent twice, so this makes one attempt; `submit_file` retries.
    """
    http = session or requests.Session()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": document_format}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    try:
        response = http.post(
            f"{cloud_url.rstrip('/')}/api/v1/jobs",
            params={"name": name, "copies": str(copies)},
            data=chunks,
            headers=headers,
            timeout=(5.0, timeout_s),
        )
    except requests.RequestException as exc:
        raise SubmitError(f"cannot reach the cloud at {cloud_url}: {exc}") from exc
    finally:
        if session is None:
            http.close()
    if response.status_code not in (200, 201):
        raise _refusal(response)
    job: dict[str, Any] = response.json()
    return job


def site_policy(cloud_url: str, token: str, http: requests.Session) -> dict[str, Any]:
    """The caller's site policy (`GET /api/v1/site`)."""
    try:
        response = http.get(
            f"{cloud_url.rstrip('/')}/api/v1/site",
            headers={"Authorization": f"Bearer {token}"},
            timeout=(5.0, 30.0),
        )
    except requests.RequestException as exc:
        raise SubmitError(f"cannot reach the cloud at {cloud_url}: {exc}") from exc
    if response.status_code != 200:
        raise _refusal(response)
    policy: dict[str, Any] = response.json()["policy"]
    return policy


def count_pages(path: Path, document_format: str) -> int | None:
    """The file's pages, as the cloud would count them (None: unknown)."""
    counter = page_counter_for(document_format)
    for block in _chunks(path):
        counter.feed(block)
    return counter.close()


def seal_file(
    path: Path, out: IO[bytes], *, site: str, public_key: bytes
) -> tuple[uuid.UUID, bytes]:
    """Encrypt `path` into a job container written to `out`; return (job id, wrapped key)."""
    job_id = uuid.uuid4()
    data_key = new_data_key()
    encryptor = Encryptor(data_key, job_id, site)
    out.write(encryptor.header)
    for block in _chunks(path):
        out.write(encryptor.update(block))
    out.write(encryptor.finalize())
    return job_id, hpke_wrap_key(public_key, data_key, job_id, site)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unpad(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def submit_file(
    cloud_url: str,
    token: str,
    path: Path,
    *,
    name: str | None = None,
    document_format: str | None = None,
    copies: int = 1,
    attempts: int = 3,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Submit a file from disk, streamed; sealed to the site key for a zero-knowledge site.

    Retried (same Idempotency-Key, same bytes) after a connection error or a 502-504.
    """
    if not path.is_file():
        raise SubmitError(f"no such file: {path}")
    fmt = document_format or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    http = session or requests.Session()
    key = str(uuid.uuid4())
    try:
        policy = site_policy(cloud_url, token, http)
        with tempfile.TemporaryFile() as sealed:
            params: dict[str, str] = {"name": name or path.name, "copies": str(copies)}
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
            if policy.get("zero_knowledge"):
                job_id, wrapped = seal_file(
                    path, sealed, site=str(policy["site"]), public_key=_unpad(policy["public_key"])
                )
                pages = count_pages(path, fmt)
                params.update({"job_id": str(job_id), "format": fmt})
                if pages is not None:
                    params["pages"] = str(pages)
                headers.update(
                    {"Content-Type": SEALED_JOB_TYPE, "PullPrint-Wrapped-Key": _b64url(wrapped)}
                )
            else:
                headers["Content-Type"] = fmt
            return _post_with_retries(
                http,
                cloud_url,
                params,
                headers,
                sealed=sealed if policy.get("zero_knowledge") else None,
                path=path,
                attempts=attempts,
            )
    finally:
        if session is None:
            http.close()


def _post_with_retries(
    http: requests.Session,
    cloud_url: str,
    params: dict[str, str],
    headers: dict[str, str],
    *,
    sealed: IO[bytes] | None,
    path: Path,
    attempts: int,
) -> dict[str, Any]:
    url = f"{cloud_url.rstrip('/')}/api/v1/jobs"
    last: Exception | None = None
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(0.2 * 2**attempt)
        if sealed is not None:
            sealed.seek(0)
            body: Iterator[bytes] = iter(lambda: sealed.read(CHUNK_BYTES), b"")
        else:
            body = _chunks(path)
        try:
            response = http.post(
                url, params=params, data=body, headers=headers, timeout=(5.0, 120.0)
            )
        except requests.RequestException as exc:
            last = SubmitError(f"cannot reach the cloud at {cloud_url}: {exc}")
            continue
        if response.status_code in _RETRY_STATUSES:
            last = _refusal(response)
            continue
        if response.status_code not in (200, 201):
            raise _refusal(response)
        job: dict[str, Any] = response.json()
        return job
    assert last is not None
    raise last
