"""TLS certificates: managed and configured, rotated forward only (cloud/tls.py, cloud/server.py).

The rule under test is the one CUPS enforces on a pinned server certificate: a different
certificate is accepted only if it expires strictly later and still covers the host name. The
live tests read the certificate a real TLS handshake presents before and after a rotation.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import stat
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cloud.app import create_app
from cloud.config import load_config
from cloud.errors import ConfigError
from cloud.server import RunningServer, prepare_tls, start_in_thread
from cloud.tls import (
    CERT_FILE,
    KEY_FILE,
    SERVED_FILE,
    CertificateInfo,
    CertificateRollbackError,
    ServerCertificates,
    TlsCertificateError,
    TlsSettings,
    issue_self_signed,
)
from tests.cloud.conftest import ADMIN_TOKEN, make_config

NAMES = ("localhost", "127.0.0.1")
START = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


class Clock:
    def __init__(self, moment: datetime = START) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def managed(
    tmp_path: Path, clock: Callable[[], datetime], **settings: object
) -> ServerCertificates:
    values: dict[str, object] = {
        "mode": "self-signed",
        "state_dir": tmp_path / "tls",
        "hostnames": NAMES,
        "cert_days": 90,
        "renew_days": 30,
    }
    values.update(settings)
    return ServerCertificates(TlsSettings(**values), now=clock)  # type: ignore[arg-type]


def write_pair(
    directory: Path,
    not_after: datetime,
    names: tuple[str, ...] = NAMES,
    key: ec.EllipticCurvePrivateKey | None = None,
    not_before: datetime | None = None,
) -> tuple[Path, Path]:
    """A certificate and key as an operator (or an ACME client) would drop them in place."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    start = not_before or min(not_after, datetime.now(UTC)) - timedelta(days=1)
    cert = issue_self_signed(key, names, start, not_after)
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def configured(
    tmp_path: Path, cert: Path, key: Path, clock: Callable[[], datetime]
) -> ServerCertificates:
    settings = TlsSettings("files", tmp_path / "tls", cert_file=cert, key_file=key)
    return ServerCertificates(settings, now=clock)


# -- managed (self-signed) ------------------------------------------------------------------------


def test_managed_certificate_is_issued_once_with_a_private_key(tmp_path: Path) -> None:
    clock = Clock()
    certs = managed(tmp_path, clock)
    info = certs.prepare()
    assert info.names == frozenset(NAMES)
    assert info.not_before <= START < info.not_after == START + timedelta(days=90)
    assert stat.S_IMODE((tmp_path / "tls" / KEY_FILE).stat().st_mode) == 0o600
    record = json.loads((tmp_path / "tls" / SERVED_FILE).read_text())
    assert record["sha256"] == info.sha256
    # A restart within its life serves the same certificate.
    assert managed(tmp_path, clock).prepare().sha256 == info.sha256


def test_managed_certificate_renews_before_expiry_same_key_later_expiry(tmp_path: Path) -> None:
    clock = Clock()
    certs = managed(tmp_path, clock)
    first = certs.prepare()
    clock.moment = first.not_after - timedelta(days=31)
    assert certs.refresh() is None  # not due yet
    clock.moment = first.not_after - timedelta(days=29)
    second = certs.refresh()
    assert second is not None
    assert second.not_after > first.not_after
    assert second.spki_sha256 == first.spki_sha256  # public-key pins survive
    assert second.sha256 != first.sha256
    assert certs.info == second
    assert (
        CertificateInfo.of(
            x509.load_pem_x509_certificate((tmp_path / "tls" / CERT_FILE).read_bytes())
        )
        == second
    )


def test_shorter_validity_still_moves_the_expiry_forward(tmp_path: Path) -> None:
    clock = Clock()
    first = managed(tmp_path, clock, cert_days=300).prepare()
    # The operator shortens the validity: the next certificate must still expire later.
    renewed = managed(tmp_path, clock, cert_days=60).renew()
    assert renewed.not_after == first.not_after + timedelta(seconds=1)


def test_renewal_with_a_new_key_still_moves_forward(tmp_path: Path) -> None:
    clock = Clock()
    certs = managed(tmp_path, clock)
    first = certs.prepare()
    renewed = certs.renew(new_key=True)
    assert renewed.spki_sha256 != first.spki_sha256
    assert renewed.not_after > first.not_after


def test_names_are_only_ever_added(tmp_path: Path) -> None:
    clock = Clock()
    first = managed(tmp_path, clock, hostnames=("print.example.org", "127.0.0.1")).prepare()
    # A new name is covered at once; the old ones stay (a client may still use them).
    second = managed(tmp_path, clock, hostnames=("queue.example.org",)).prepare()
    assert second.sha256 != first.sha256
    assert second.names == {"print.example.org", "127.0.0.1", "queue.example.org"}
    assert second.not_after > first.not_after


def test_a_crash_between_record_and_certificate_is_repaired_forward(tmp_path: Path) -> None:
    clock = Clock()
    first = managed(tmp_path, clock).prepare()
    record_path = tmp_path / "tls" / SERVED_FILE
    # The record says a later certificate may have been served, but the file is the old one.
    later = first.not_after + timedelta(days=5)
    record_path.write_text(
        json.dumps({"not_after": later.isoformat(), "names": list(NAMES), "sha256": "ab" * 32})
    )
    repaired = managed(tmp_path, clock).prepare()
    assert repaired.not_after > later


def test_an_unreadable_record_stops_with_a_clear_error(tmp_path: Path) -> None:
    clock = Clock()
    managed(tmp_path, clock).prepare()
    (tmp_path / "tls" / SERVED_FILE).write_text("{not json")
    with pytest.raises(TlsCertificateError, match="records the last certificate served"):
        managed(tmp_path, clock).prepare()


# -- configured files -----------------------------------------------------------------------------


def test_configured_replacement_with_earlier_expiry_is_refused(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    cert, key = write_pair(tmp_path / "v1", now + timedelta(days=60))
    first = configured(tmp_path, cert, key, lambda: now).prepare()
    older_cert, older_key = write_pair(tmp_path / "v2", now + timedelta(days=30))
    with pytest.raises(CertificateRollbackError, match="not after the current one"):
        configured(tmp_path, older_cert, older_key, lambda: now).prepare()
    same_expiry, same_key = write_pair(tmp_path / "v3", first.not_after)
    with pytest.raises(CertificateRollbackError, match="CUPS clients"):
        configured(tmp_path, same_expiry, same_key, lambda: now).prepare()
    # The same certificate again is no rotation at all.
    assert configured(tmp_path, cert, key, lambda: now).prepare().sha256 == first.sha256


def test_configured_replacement_dropping_a_name_is_refused(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    cert, key = write_pair(tmp_path / "v1", now + timedelta(days=60))
    configured(tmp_path, cert, key, lambda: now).prepare()
    narrower, narrower_key = write_pair(tmp_path / "v2", now + timedelta(days=90), ("localhost",))
    with pytest.raises(CertificateRollbackError, match=r"drops 127\.0\.0\.1"):
        configured(tmp_path, narrower, narrower_key, lambda: now).prepare()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("mismatched key", "is not the key of"),
        ("expired", "expired on"),
        ("not yet valid", "not valid before"),
        ("not pem", "no PEM certificate"),
    ],
)
def test_unusable_configured_certificates_are_refused(
    tmp_path: Path, case: str, message: str
) -> None:
    now = datetime.now(UTC)
    cert, key = write_pair(tmp_path / "a", now + timedelta(days=60))
    if case == "mismatched key":
        _, key = write_pair(tmp_path / "b", now + timedelta(days=60))
    elif case == "expired":
        cert, key = write_pair(tmp_path / "b", now - timedelta(days=1))
    elif case == "not yet valid":
        later = now + timedelta(days=2)
        cert, key = write_pair(tmp_path / "b", now + timedelta(days=60), not_before=later)
    else:
        cert.write_text("hello")
    with pytest.raises(TlsCertificateError, match=message):
        configured(tmp_path, cert, key, lambda: now).prepare()


def test_refresh_keeps_serving_after_a_refused_file_then_takes_a_good_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    live = tmp_path / "live"
    cert, key = write_pair(live, now + timedelta(days=60))
    certs = configured(tmp_path, cert, key, lambda: now)
    first = certs.prepare()
    write_pair(live, now + timedelta(days=10))  # the operator installs an older certificate
    with caplog.at_level(logging.ERROR, logger="cloud.tls"):
        assert certs.refresh() is None
        assert certs.refresh() is None
    assert certs.info == first
    refusals = [r for r in caplog.records if "not rotated" in r.getMessage()]
    assert len(refusals) == 1  # said once, not every check
    write_pair(live, now + timedelta(days=90))
    rotated = certs.refresh()
    assert rotated is not None
    assert rotated.not_after > first.not_after


# -- configuration --------------------------------------------------------------------------------


def _secrets_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PULLPRINT_DATA_DIR": str(tmp_path / "data"),
        "PULLPRINT_MASTER_KEY": "11" * 32,
        "PULLPRINT_PEPPER": "22" * 32,
        "PULLPRINT_ADMIN_TOKEN": ADMIN_TOKEN,
        **extra,
    }


def test_tls_settings_from_toml_and_environment(tmp_path: Path) -> None:
    assert load_config(None, _secrets_env(tmp_path)).tls == "off"
    toml = tmp_path / "cloud.toml"
    toml.write_text(
        'tls_cert_file = "certs/server.crt"\ntls_key_file = "certs/server.key"\n'
        'tls_hostnames = ["print.example.org", "10.0.0.5"]\n'
    )
    config = load_config(toml, _secrets_env(tmp_path))
    assert config.tls == "files"  # implied by the files
    assert config.tls_cert_file == tmp_path / "certs" / "server.crt"  # relative to the file
    assert config.tls_hostnames == ("print.example.org", "10.0.0.5")
    env = _secrets_env(tmp_path, PULLPRINT_TLS="self-signed", PULLPRINT_TLS_HOSTNAMES="a, b")
    config = load_config(None, env)
    assert (config.tls, config.tls_hostnames) == ("self-signed", ("a", "b"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"PULLPRINT_TLS": "maybe"}, "tls must be one of"),
        ({"PULLPRINT_TLS": "files"}, "needs both"),
        ({"PULLPRINT_TLS_CERT_FILE": "/x.crt"}, "needs both"),
        ({"PULLPRINT_TLS": "self-signed", "PULLPRINT_TLS_CERT_FILE": "/x"}, "only used with"),
        ({"PULLPRINT_TLS_CERT_DAYS": "30", "PULLPRINT_TLS_RENEW_DAYS": "30"}, "less than"),
    ],
)
def test_half_configured_tls_is_refused(
    tmp_path: Path, extra: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, _secrets_env(tmp_path, **extra))


# -- live: a real TLS listener --------------------------------------------------------------------


def presented(server: RunningServer) -> CertificateInfo:
    """The certificate a fresh TLS handshake with the server presents."""
    pem = ssl.get_server_certificate((server.host, server.port), timeout=10)
    return CertificateInfo.of(x509.load_pem_x509_certificate(pem.encode()))


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[RunningServer]:
    config = make_config(tmp_path / "data", tls="self-signed", tls_hostnames=NAMES)
    certificates = prepare_tls(config)
    assert certificates is not None
    server = start_in_thread(create_app(config, run_sweeper=False), certificates=certificates)
    try:
        yield server
    finally:
        server.stop()


def test_rotation_on_a_running_server_reaches_new_connections(tls_server: RunningServer) -> None:
    certificates = tls_server.certificates
    assert certificates is not None
    before = presented(tls_server)
    assert before.sha256 == certificates.info.sha256
    # The client trusts exactly the certificate it first saw, as a pinning client would.
    pinned = ssl.create_default_context(cadata=certificates.cert_file.read_text())
    with httpx.Client(verify=pinned) as keep_alive:
        assert keep_alive.get(tls_server.url + "/ipp/about").status_code == 200
        certificates.renew()
        after = presented(tls_server)
        assert after.sha256 == certificates.info.sha256 != before.sha256
        assert after.not_after > before.not_after
        assert after.spki_sha256 == before.spki_sha256
        # A connection opened before the rotation goes on working.
        assert keep_alive.get(tls_server.url + "/ipp/about").status_code == 200


def test_rotator_thread_picks_up_a_replaced_file(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    live = tmp_path / "live"
    cert, key = write_pair(live, now + timedelta(days=30))
    config = make_config(tmp_path / "data", tls="files", tls_cert_file=cert, tls_key_file=key)
    certificates = prepare_tls(config)
    assert certificates is not None
    server = start_in_thread(
        create_app(config, run_sweeper=False), certificates=certificates, rotation_check_s=0.1
    )
    try:
        first = presented(server)
        write_pair(live, now + timedelta(days=60))
        deadline = time.monotonic() + 10
        while presented(server).sha256 == first.sha256:
            assert time.monotonic() < deadline, "the replaced certificate was never served"
            time.sleep(0.1)
        assert presented(server).not_after > first.not_after
    finally:
        server.stop()
    assert os.path.exists(tmp_path / "data" / "tls" / SERVED_FILE)
