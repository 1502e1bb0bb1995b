"""The cloud client against a scripted stdlib HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud.http_signatures import (
    check_content_digest,
    parse_signature,
    signature_base,
    verify_signature,
)
from hardware.printers.virtual_tls import self_signed_identity
from station.cloud_client import CONTENT_CHUNK_BYTES, CloudClient
from station.cloud_http import CloudHttp, _system_trust
from station.errors import (
    CloudError,
    CloudRejectedError,
    CloudUnreachableError,
    SessionExpiredError,
    UnknownCredentialError,
)
from station.heartbeat import StationLink
from station.signing import SignatureAuth, StationIdentity

IDENTITY = StationIdentity(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
STATION_ID = "0b7e1c2a-0000-4000-8000-000000000001"
AUTH = SignatureAuth(IDENTITY, STATION_ID)
TAG = "c" * 64
DATA_KEY = bytes(range(32))


@dataclass
class Reply:
    status: int
    body: bytes | dict | None = None
    content_type: str = "application/json"
    delay_s: float = 0.0


@dataclass
class Script:
    """Replies per (method, path), consumed in order; the last one repeats."""

    replies: dict[tuple[str, str], list[Reply]] = field(default_factory=dict)
    seen: list[tuple[str, str, dict, bytes]] = field(default_factory=list)
    peers: list[tuple[str, int]] = field(default_factory=list)  # the connection of each request

    def on(self, method: str, path: str, *replies: Reply) -> None:
        self.replies[(method, path)] = list(replies)

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _, _ in self.seen if (m, p) == (method, path))


def problem(status: int, code: str, detail: str = "") -> Reply:
    body = {
        "type": f"urn:pullprint:problem:{code}",
        "title": code,
        "status": status,
        "detail": detail,
        "code": code,
    }
    return Reply(status, body, "application/problem+json")


def make_handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            script.seen.append((self.command, self.path, dict(self.headers), body))
            script.peers.append(self.client_address)
            queue = script.replies.get((self.command, self.path)) or [Reply(404, b"")]
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.status == 0:  # drop the connection without an answer
                self.close_connection = True
                return
            if reply.status < 0:  # announce -status bytes, send a few, then hang up
                self.send_response(200)
                self.send_header("Content-Length", str(-reply.status))
                self.end_headers()
                self.wfile.write(b"cut")
                self.close_connection = True
                return
            data = (
                reply.body
                if isinstance(reply.body, bytes)
                else (b"" if reply.body is None else json.dumps(reply.body).encode())
            )
            self.send_response(reply.status)
            if reply.status != 204:
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if reply.status != 204:
                # The client may have given up already (the timeout test).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

    return Handler


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def server(script) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(script))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def tls_server(script, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The scripted cloud behind TLS with a self-signed certificate for "localhost"; yields its
    URL and the certificate as a CA file."""
    identity = self_signed_identity("localhost")
    ca_file = tmp_path / "cloud-ca.pem"
    ca_file.write_text(ssl.DER_cert_to_PEM_cert(identity.certificate_der))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(script))
    httpd.daemon_threads = True
    httpd.socket = identity.context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"https://localhost:{httpd.server_address[1]}", ca_file
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def client(server) -> Iterator[CloudClient]:
    cloud = CloudClient(server, AUTH, timeout_s=2, backoff_s=0)
    yield cloud
    cloud.close()


SESSION = {
    "session_id": "s1",
    "user": {"display_name": "Ana Lima"},
    "expires_at": "2026-05-09T10:00:00Z",
    "jobs": [
        {
            "id": "j1",
            "name": "report.pdf",
            "format": "application/pdf",
            "size_bytes": 1234,
            "pages": 3,
            "copies": 1,
            "submitted_at": "2026-05-09T09:00:00Z",
            "expires_at": "2026-05-10T09:00:00Z",
        },
        {
            "id": "j2",
            "name": "notes.txt",
            "format": "text/plain",
            "size_bytes": 10,
            "pages": None,
            "copies": 2,
            "submitted_at": "2026-05-09T09:05:00+00:00",
            "expires_at": "2026-05-10T09:05:00Z",
        },
    ],
}
RELEASE = {
    "id": "r1",
    "job_id": "00000000-0000-4000-8000-000000000001",
    "name": "report.pdf",
    "format": "application/pdf",
    "copies": 1,
    "size_bytes": 1234,
    "content_bytes": 1400,
    "user_name": "ana",
    "data_key": base64.b64encode(DATA_KEY).decode(),
    "site": "hq",
    "state": "requested",
}


def test_open_session(client, script):
    script.on("POST", "/api/v1/station/sessions", Reply(201, SESSION))
    info = client.open_session(TAG)
    assert info.session_id == "s1"
    assert info.display_name == "Ana Lima"
    assert [job.job_id for job in info.jobs] == ["j1", "j2"]
    assert info.jobs[0].pages == 3
    assert info.jobs[1].pages is None
    assert info.jobs[1].copies == 2
    assert info.jobs[0].submitted_at.utcoffset() is not None
    _, path, headers, body = script.seen[0]
    assert "Authorization" not in headers
    assert json.loads(body) == {"tag": TAG}
    assert_signed_for_the_cloud("POST", path, headers, body)


def assert_signed_for_the_cloud(method: str, target: str, headers: dict, body: bytes) -> str:
    """The cloud's own verifier accepts what the station sent; returns the nonce."""
    lower = {k.lower(): v for k, v in headers.items()}
    signed = parse_signature(lower)
    assert str(signed.station_id) == STATION_ID
    path, _, query = target.partition("?")
    base = signature_base(signed, method, path, query, lower["content-digest"])
    verify_signature(IDENTITY.signing_public, signed, base)
    check_content_digest(lower["content-digest"], body)
    return signed.nonce


def test_every_attempt_is_signed_afresh(client, script):
    path = "/api/v1/station/releases/r1/outcome"
    script.on("POST", path, Reply(503, {}), Reply(200, {"id": "r1", "state": "printed"}))
    client.report_outcome("r1", "printed", None, 7)
    nonces = [assert_signed_for_the_cloud(m, p, h, b) for m, p, h, b in script.seen]
    assert len(nonces) == 2 and nonces[0] != nonces[1]


def test_get_signs_the_empty_body(client, script):
    script.on("GET", "/api/v1/station/releases/r1/content", Reply(200, b"x", "text/plain"))
    with client.stream_content("r1") as chunks:
        assert b"".join(chunks) == b"x"
    method, path, headers, body = script.seen[0]
    assert body == b""
    assert_signed_for_the_cloud(method, path, headers, body)


def test_unknown_credential(client, script):
    script.on("POST", "/api/v1/station/sessions", problem(404, "unknown-credential"))
    with pytest.raises(UnknownCredentialError) as caught:
        client.open_session(TAG)
    assert caught.value.code == "unknown-credential"
    assert caught.value.status == 404
    assert TAG not in str(caught.value)


def test_open_session_is_not_retried(client, script):
    script.on("POST", "/api/v1/station/sessions", Reply(503, {}), Reply(201, SESSION))
    with pytest.raises(CloudUnreachableError):
        client.open_session(TAG)
    assert script.count("POST", "/api/v1/station/sessions") == 1


def test_release_all_and_listed(client, script):
    path = "/api/v1/station/sessions/s1/releases"
    script.on("POST", path, Reply(201, {"releases": [RELEASE]}))
    (release,) = client.release("s1", None)
    assert release.id == "r1"
    assert release.data_key == DATA_KEY
    assert release.content_bytes == 1400
    assert "data_key" not in repr(release) or repr(DATA_KEY) not in repr(release)
    client.release("s1", ["j1", "j2"])
    assert json.loads(script.seen[0][3]) == {"all": True}
    assert json.loads(script.seen[1][3]) == {"job_ids": ["j1", "j2"]}


def test_release_is_not_retried(client, script):
    path = "/api/v1/station/sessions/s1/releases"
    script.on("POST", path, Reply(503, {}), Reply(201, {"releases": [RELEASE]}))
    with pytest.raises(CloudUnreachableError):
        client.release("s1", None)
    assert script.count("POST", path) == 1


def test_release_problem_mapping(client, script):
    path = "/api/v1/station/sessions/s1/releases"
    script.on("POST", path, problem(410, "session-expired"), problem(409, "job-not-held", "j1"))
    with pytest.raises(SessionExpiredError):
        client.release("s1", None)
    with pytest.raises(CloudRejectedError) as caught:
        client.release("s1", None)
    assert (caught.value.status, caught.value.code, caught.value.detail) == (
        409,
        "job-not-held",
        "j1",
    )


def test_malformed_release_is_a_cloud_error(client, script):
    bad = dict(RELEASE, data_key="not base64!")
    script.on("POST", "/api/v1/station/sessions/s1/releases", Reply(201, {"releases": [bad]}))
    with pytest.raises(CloudError, match="malformed"):
        client.release("s1", None)


def test_outcome_is_retried_on_503(client, script):
    path = "/api/v1/station/releases/r1/outcome"
    script.on(
        "POST", path, Reply(503, {}), Reply(503, {}), Reply(200, {"id": "r1", "state": "printed"})
    )
    client.report_outcome("r1", "printed", None, 7)
    assert script.count("POST", path) == 3
    assert json.loads(script.seen[-1][3]) == {
        "outcome": "printed",
        "reason": None,
        "printer_job_id": 7,
    }


def test_outcome_gives_up_after_the_retries(server, script):
    path = "/api/v1/station/releases/r1/outcome"
    script.on("POST", path, Reply(503, {}))
    cloud = CloudClient(server, AUTH, timeout_s=2, retries=2, backoff_s=0)
    with pytest.raises(CloudUnreachableError):
        cloud.report_outcome("r1", "failed", "Out of paper", None)
    assert script.count("POST", path) == 3


def test_end_session_and_delete_job_are_retried(client, script):
    script.on("DELETE", "/api/v1/station/sessions/s1", Reply(503, {}), Reply(204))
    script.on("DELETE", "/api/v1/station/sessions/s1/jobs/j1", Reply(502, {}), Reply(204))
    client.end_session("s1")
    client.delete_job("s1", "j1")
    assert script.count("DELETE", "/api/v1/station/sessions/s1") == 2
    assert script.count("DELETE", "/api/v1/station/sessions/s1/jobs/j1") == 2


def test_stream_content(client, script):
    data = bytes(range(256)) * 1000  # 256 000 bytes
    script.on(
        "GET",
        "/api/v1/station/releases/r1/content",
        Reply(503, {}),
        Reply(200, data, "application/octet-stream"),
    )
    with client.stream_content("r1") as chunks:
        received = list(chunks)
    assert b"".join(received) == data
    assert max(len(chunk) for chunk in received) <= CONTENT_CHUNK_BYTES
    assert script.count("GET", "/api/v1/station/releases/r1/content") == 2


def test_stream_content_of_another_station_is_refused(client, script):
    script.on("GET", "/api/v1/station/releases/r1/content", problem(404, "release-not-found"))
    with pytest.raises(CloudRejectedError) as caught, client.stream_content("r1"):
        pass
    assert caught.value.code == "release-not-found"


def test_timeout_is_unreachable(server, script):
    script.on("POST", "/api/v1/station/sessions", Reply(201, SESSION, delay_s=1.0))
    cloud = CloudClient(server, AUTH, timeout_s=0.2, backoff_s=0)
    started = time.monotonic()
    with pytest.raises(CloudUnreachableError):
        cloud.open_session(TAG)
    assert time.monotonic() - started < 0.9
    assert script.count("POST", "/api/v1/station/sessions") == 1


def test_a_long_poll_may_wait_longer_than_the_read_timeout(server, script):
    script.on("GET", "/api/v1/station/wait", Reply(200, {"woken": True}, delay_s=0.5))
    http = CloudHttp(server, timeout_s=0.2, signer=AUTH)
    with pytest.raises(CloudUnreachableError, match="ReadTimeoutError"):
        http.request("GET", "/api/v1/station/wait")
    answer = http.request("GET", "/api/v1/station/wait", read_timeout_s=2)
    assert (answer.status, answer.json()) == (200, {"woken": True})
    http.close()


def test_dropped_connection_retries_get_but_never_post(client, script):
    script.on("POST", "/api/v1/station/sessions", Reply(0), Reply(201, SESSION))
    with pytest.raises(CloudUnreachableError):
        client.open_session(TAG)
    assert script.count("POST", "/api/v1/station/sessions") == 1
    data = b"container bytes"
    script.on(
        "GET",
        "/api/v1/station/releases/r1/content",
        Reply(0),
        Reply(200, data, "application/octet-stream"),
    )
    with client.stream_content("r1") as chunks:
        assert b"".join(chunks) == data
    assert script.count("GET", "/api/v1/station/releases/r1/content") == 2


def test_connection_refused_is_unreachable_and_not_retried_for_post():
    cloud = CloudClient("http://127.0.0.1:9", AUTH, timeout_s=1, backoff_s=0)
    with pytest.raises(CloudUnreachableError) as caught:
        cloud.open_session(TAG)
    assert isinstance(caught.value, ConnectionError)
    assert "Ed25519" not in repr(cloud) and "private" not in repr(AUTH).lower()


def test_unauthorized_is_rejected(client, script):
    script.on("POST", "/api/v1/station/sessions", problem(401, "unauthorized"))
    with pytest.raises(CloudRejectedError) as caught:
        client.open_session(TAG)
    assert caught.value.code == "unauthorized"


def test_non_problem_error_body(client, script):
    script.on("DELETE", "/api/v1/station/sessions/s1", Reply(500, b"oops", "text/plain"))
    with pytest.raises(CloudRejectedError) as caught:
        client.end_session("s1")
    assert (caught.value.status, caught.value.code) == (500, None)


def test_calls_reuse_one_kept_alive_connection(client, script):
    script.on("DELETE", "/api/v1/station/sessions/s1", Reply(204))
    script.on("GET", "/api/v1/station/releases/r1/content", Reply(200, b"x" * 70_000, "x/y"))
    client.end_session("s1")
    with client.stream_content("r1") as chunks:
        assert len(b"".join(chunks)) == 70_000
    with pytest.raises(CloudRejectedError):
        client.ping()  # /healthz is not scripted: 404, refused, and the connection still kept
    client.end_session("s1")
    assert len(script.peers) == 4
    assert len(set(script.peers)) == 1


def test_a_stream_cut_short_is_unreachable_and_the_connection_not_reused(client, script):
    script.on("GET", "/api/v1/station/releases/r1/content", Reply(-100_000))
    with pytest.raises(CloudUnreachableError, match="broke off"), client.stream_content("r1") as c:
        b"".join(c)
    script.on("DELETE", "/api/v1/station/sessions/s1", Reply(204))
    client.end_session("s1")
    assert script.peers[0] != script.peers[1]


def test_a_stream_left_unread_does_not_leak_into_the_next_answer(client, script):
    script.on("GET", "/api/v1/station/releases/r1/content", Reply(200, b"y" * 500_000, "x/y"))
    with client.stream_content("r1") as chunks:
        assert len(next(chunks)) == CONTENT_CHUNK_BYTES  # then given up on
    script.on("POST", "/api/v1/station/sessions", Reply(201, SESSION))
    assert client.open_session(TAG).session_id == "s1"


def test_a_cloud_with_an_untrusted_certificate_is_unreachable_and_gets_no_request(
    tls_server, script
):
    url, _ = tls_server
    cloud = CloudClient(url, AUTH, timeout_s=2, retries=0)
    with pytest.raises(CloudUnreachableError, match="SSLError"):
        cloud.end_session("s1")
    assert script.seen == []  # the handshake failed: no request line, no signature went out
    cloud.close()


def test_a_cloud_verified_against_a_given_ca_is_reached(tls_server, script):
    url, ca_file = tls_server
    script.on("DELETE", "/api/v1/station/sessions/s1", Reply(204))
    cloud = CloudClient(url, AUTH, timeout_s=2, ca_certs=str(ca_file))
    cloud.end_session("s1")
    cloud.end_session("s1")
    assert len(script.seen) == 2 and len(set(script.peers)) == 1  # one handshake, kept alive
    cloud.close()
    # The same certificate presented for another name is refused: the host name is checked too.
    by_address = CloudClient(
        url.replace("localhost", "127.0.0.1"), AUTH, timeout_s=2, retries=0, ca_certs=str(ca_file)
    )
    with pytest.raises(CloudUnreachableError):
        by_address.end_session("s1")
    by_address.close()
    assert len(script.seen) == 2


def test_the_system_trust_store_is_read_by_subject_hash_only_as_needed(
    tls_server, script, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    url, ca_file = tls_server
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is not installed: apt-get install openssl")
    subject_hash = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", str(ca_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    store = tmp_path / "certs"  # a system store as Debian's ca-certificates lays it out
    store.mkdir()
    (store / "ca-certificates.crt").write_bytes(ca_file.read_bytes())
    (store / f"{subject_hash}.0").write_bytes(ca_file.read_bytes())
    monkeypatch.setenv("SSL_CERT_DIR", str(store))
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    _system_trust.cache_clear()
    try:
        script.on("DELETE", "/api/v1/station/sessions/s1", Reply(204))
        cloud = CloudClient(url, AUTH, timeout_s=2)
        assert _system_trust().cert_store_stats()["x509"] == 0  # nothing parsed yet
        cloud.end_session("s1")
        assert _system_trust().cert_store_stats()["x509"] == 1  # only what the chain needed
        cloud.close()
    finally:
        _system_trust.cache_clear()


def test_heartbeats_carry_only_the_headers_the_cloud_needs(server, script):
    script.on("POST", "/api/v1/station/heartbeat", Reply(304, b""))
    link = StationLink(server, AUTH, timeout_s=2)
    reply = link.heartbeat('"etag-1"', None)
    assert (reply.changed, reply.etag) == (False, '"etag-1"')
    method, path, headers, body = script.seen[0]
    assert {name.lower() for name in headers} == {
        "host",
        "content-length",
        "if-none-match",
        "content-digest",
        "signature-input",
        "signature",
    }
    assert body == b""
    assert_signed_for_the_cloud(method, path, headers, body)
    link.close()
