"""TLS for the cloud (`ipps://`, `https://`): a configured or managed certificate, rotated forward.

Why forward: CUPS pins a server's certificate on first use (per host name, in `~/.cups/ssl` or
`/etc/cups/ssl`) and later accepts a *different* certificate only if it expires strictly later
than the pinned one and is valid for the host name in the queue's URI (CUPS 2.4,
`httpCredentialsGetTrust`); otherwise the job stops with `cups-pki-invalid` and the queue with
it. So every certificate this server presents must

* expire strictly later than every certificate it presented before, and
* cover every DNS name and IP address of its predecessor (a client may use any of them).

The last certificate served is recorded in `<data_dir>/tls/served.json` (its notAfter, names
and SHA-256) *before* it is served, so the record is never behind what a client may have seen.

Two sources (`tls` in the config):

* `self-signed`: a managed certificate in `<data_dir>/tls/` (ECDSA P-256 key, mode 0600). It is
  renewed `tls_renew_days` before it expires, or at once when a configured name is missing, with
  the same key (so public-key pins survive), a new serial, and
  notAfter = max(now + `tls_cert_days`, previous notAfter + 1 s). Names are only ever added.
* `files`: the operator's `tls_cert_file` / `tls_key_file` (e.g. from an ACME client). A changed
  file is picked up by `refresh()`; a replacement that would move the expiry backwards, drop a
  name, is expired or does not match its key is refused with a clear error, and the server goes
  on serving the previous certificate (at start-up, the refusal stops the start).

Rotation without a restart: the listening socket's context hands every handshake to the current
context from its SNI callback (OpenSSL calls it for every ClientHello, with or without SNI), and
a rotation swaps that reference for a freshly built context; nothing is mutated under a
handshake in progress.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import logging
import os
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloud.config import CloudConfig
from cloud.errors import ConfigError

log = logging.getLogger(__name__)

TLS_DIR_NAME = "tls"
KEY_FILE, CERT_FILE, SERVED_FILE, LOCK_FILE = "key.pem", "cert.pem", "served.json", ".lock"
MODES = ("off", "self-signed", "files")
# A managed certificate's notBefore lies this far back: a client whose clock is a little behind
# must not see a certificate that is "not yet valid" (CUPS checks the activation time too).
_BACKDATE = timedelta(hours=1)
_ONE_SECOND = timedelta(seconds=1)


class TlsCertificateError(ConfigError):
    """A certificate or key cannot be used: unreadable, malformed, mismatched or expired."""

    code = "tls-certificate"
    title = "Unusable TLS certificate"


class CertificateRollbackError(TlsCertificateError):
    """A replacement would break clients that pinned the current certificate."""

    code = "tls-rollback"
    title = "TLS certificate would move backwards"


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What clients see of a certificate, and what rotation compares."""

    subject: str
    not_before: datetime
    not_after: datetime
    names: frozenset[str]  # DNS names and IP addresses (subjectAltName)
    sha256: str  # of the DER certificate: what a pin compares
    spki_sha256: str  # of the public key: unchanged across same-key renewals

    @classmethod
    def of(cls, cert: x509.Certificate) -> Self:
        """Read the facts of a parsed certificate."""
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = {str(n) for n in san.get_values_for_type(x509.DNSName)}
            names |= {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
        except x509.ExtensionNotFound:
            names = set()
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(
            subject=cert.subject.rfc4514_string(),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            names=frozenset(names),
            sha256=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
            spki_sha256=hashlib.sha256(spki).hexdigest(),
        )


@dataclass(frozen=True, slots=True)
class ServedRecord:
    """The latest certificate this server may have presented (what clients may have pinned)."""

    not_after: datetime
    names: frozenset[str]
    sha256: str

    @classmethod
    def of(cls, info: CertificateInfo) -> Self:
        """The record of `info`."""
        return cls(info.not_after, info.names, info.sha256)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """The TLS part of the configuration."""

    mode: str  # "self-signed" or "files"
    state_dir: Path
    cert_file: Path | None = None
    key_file: Path | None = None
    hostnames: tuple[str, ...] = ()
    cert_days: int = 397
    renew_days: int = 30

    @classmethod
    def from_config(cls, config: CloudConfig) -> Self | None:
        """The settings, or None when TLS is off."""
        if config.tls == "off":
            return None
        return cls(
            mode=config.tls,
            state_dir=config.data_dir / TLS_DIR_NAME,
            cert_file=config.tls_cert_file,
            key_file=config.tls_key_file,
            hostnames=config.tls_hostnames or default_hostnames(),
            cert_days=config.tls_cert_days,
            renew_days=config.tls_renew_days,
        )


def default_hostnames() -> tuple[str, ...]:
    """Names a managed certificate covers unless configured: this host and the loopback names."""
    names = [socket.gethostname(), "localhost", "127.0.0.1", "::1"]
    return tuple(dict.fromkeys(name for name in names if name))


def check_forward(previous: ServedRecord | None, new: CertificateInfo, now: datetime) -> None:
    """Refuse a certificate that clients which pinned `previous` (or anything before) reject.

    Raises:
        TlsCertificateError: `new` is expired or not yet valid.
        CertificateRollbackError: `new` differs from `previous` and does not expire strictly
            later, or lacks one of its names.
    """
    if new.not_after <= now:
        raise TlsCertificateError(f"the certificate expired on {new.not_after:%Y-%m-%d %H:%M}Z")
    if new.not_before > now:
        raise TlsCertificateError(
            f"the certificate is not valid before {new.not_before:%Y-%m-%d %H:%M}Z"
        )
    if previous is None or previous.sha256 == new.sha256:
        return
    if new.not_after <= previous.not_after:
        raise CertificateRollbackError(
            f"the new certificate expires {new.not_after:%Y-%m-%d %H:%M:%S}Z, not after the "
            f"current one ({previous.not_after:%Y-%m-%d %H:%M:%S}Z): CUPS clients that pinned "
            "the current certificate would refuse it (cups-pki-invalid). Use a certificate that "
            "expires later"
        )
    missing = previous.names - new.names
    if missing:
        raise CertificateRollbackError(
            f"the new certificate drops {', '.join(sorted(missing))}: clients printing to those "
            "names would refuse it. Include every name of the current certificate"
        )


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` durably: temp file beside it, fsync, rename, fsync the directory."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _read_record(path: Path) -> ServedRecord | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return ServedRecord(
            not_after=datetime.fromisoformat(raw["not_after"]).astimezone(UTC),
            names=frozenset(str(name) for name in raw["names"]),
            sha256=str(raw["sha256"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # Never guess: a lost record could let the expiry move backwards unnoticed.
        raise TlsCertificateError(
            f"{path} is unreadable ({exc}); it records the last certificate served. Restore it, "
            "or remove it deliberately to accept any certificate (pinned clients may refuse it)"
        ) from None


def _write_record(path: Path, record: ServedRecord) -> None:
    text = json.dumps(
        {
            "not_after": record.not_after.isoformat(),
            "names": sorted(record.names),
            "sha256": record.sha256,
        },
        indent=2,
    )
    _atomic_write(path, text.encode() + b"\n")


def load_pair(cert_file: Path, key_file: Path) -> tuple[x509.Certificate, bytes, bytes]:
    """Read a certificate (with any chain after it) and its key; check that they belong together.

    Returns the leaf certificate and the PEM bytes of both files.

    Raises:
        TlsCertificateError: unreadable, not PEM, or the key is not the certificate's.
    """
    try:
        cert_pem, key_pem = cert_file.read_bytes(), key_file.read_bytes()
    except OSError as exc:
        raise TlsCertificateError(f"cannot read {exc.filename}: {exc.strerror}") from None
    try:
        cert = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError:
        raise TlsCertificateError(f"{cert_file} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise TlsCertificateError(f"{key_file} holds no unencrypted PEM private key") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ) != cert.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise TlsCertificateError(f"{key_file} is not the key of {cert_file}")
    return cert, cert_pem, key_pem


def issue_self_signed(
    key: CertificateIssuerPrivateKeyTypes,
    names: Iterable[str],
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    """A self-signed server certificate for `names` (DNS names and IP addresses)."""
    names = list(dict.fromkeys(names))
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PullPrint"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64]),
        ]
    )
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    # Python's server defaults (TLS 1.2 and later, OpenSSL's cipher list), no client certificates.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # No TLS 1.3 session tickets: libcups (gnutls) with a timeout set polls the socket before
    # each read, and the tickets sent after the handshake leave the response buffered inside
    # gnutls, so `ipptool -T 30` and CUPS's backend hang until their timeout. Resumption buys
    # little here: IPP clients keep their connection alive.
    context.num_tickets = 0
    context.load_cert_chain(cert_file, key_file)
    return context


class ServerCertificates:
    """The certificate the server presents, kept valid and moved forward only.

    `prepare()` once before serving, then `server_context()` for the listening socket;
    `refresh()` periodically (and after `pullprint tls renew`) to rotate.
    """

    def __init__(
        self, settings: TlsSettings, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.settings = settings
        self._now = now
        self._dir = settings.state_dir
        self._current: ssl.SSLContext | None = None
        self._info: CertificateInfo | None = None
        self._refused: str | None = None  # the sha256 of a refused file, reported once

    @property
    def cert_file(self) -> Path:
        """The certificate served (a managed one lives in the state directory)."""
        if self.settings.mode == "files":
            assert self.settings.cert_file is not None
            return self.settings.cert_file
        return self._dir / CERT_FILE

    @property
    def key_file(self) -> Path:
        """The key of `cert_file`."""
        if self.settings.mode == "files":
            assert self.settings.key_file is not None
            return self.settings.key_file
        return self._dir / KEY_FILE

    @property
    def info(self) -> CertificateInfo:
        """The certificate being served."""
        if self._info is None:
            raise RuntimeError("prepare() first")
        return self._info

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # One writer at a time across processes (the server and `pullprint tls renew`).
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self._dir / LOCK_FILE, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def served(self) -> ServedRecord | None:
        """The record of the last certificate served, if any."""
        return _read_record(self._dir / SERVED_FILE)

    def prepare(self) -> CertificateInfo:
        """Make the certificate ready (issue or renew a managed one) and load it.

        Raises:
            TlsCertificateError / CertificateRollbackError: the certificate cannot be served.
        """
        with self._locked():
            info = self._ready_on_disk()
            self._load(info)
        return info

    def refresh(self) -> CertificateInfo | None:
        """Rotate if due or if the files changed; the new certificate, or None if unchanged.

        A refused replacement is logged (once) and the current certificate stays in service.
        """
        try:
            with self._locked():
                info = self._ready_on_disk()
                if self._info is not None and info.sha256 == self._info.sha256:
                    return None
                self._load(info)
        except TlsCertificateError as exc:
            fingerprint = self._file_fingerprint()
            if fingerprint != self._refused:
                log.error("TLS certificate not rotated, still serving the current one: %s", exc)
                self._refused = fingerprint
            return None
        self._refused = None
        log.info("TLS certificate rotated: now expires %s", info.not_after.isoformat())
        return info

    def renew(self, *, new_key: bool = False) -> CertificateInfo:
        """Issue a managed certificate now (the CLI's `pullprint tls renew`); a running server
        picks it up at its next `refresh()`.

        Raises:
            TlsCertificateError: not in self-signed mode.
        """
        if self.settings.mode != "self-signed":
            raise TlsCertificateError("only a managed (self-signed) certificate is renewed here")
        with self._locked():
            info = self._issue(self.served(), new_key=new_key)
            self._load(info)
        return info

    def server_context(self) -> ssl.SSLContext:
        """The listening socket's context: every handshake switches to the current certificate."""
        if self._current is None:
            raise RuntimeError("prepare() first")
        front = _context(self.cert_file, self.key_file)

        def pick(ssl_object: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
            current = self._current
            if current is not None:
                ssl_object.context = current

        front.sni_callback = pick
        return front

    # -- internals ---------------------------------------------------------------------------

    def _file_fingerprint(self) -> str:
        try:
            return hashlib.sha256(self.cert_file.read_bytes()).hexdigest()
        except OSError:
            return ""

    def _load(self, info: CertificateInfo) -> None:
        context = _context(self.cert_file, self.key_file)
        self._current, self._info = context, info

    def _ready_on_disk(self) -> CertificateInfo:
        """Check (files) or issue/renew (self-signed) the certificate; record it as served."""
        now = self._now()
        previous = self.served()
        if self.settings.mode == "files":
            cert, _, _ = load_pair(self.cert_file, self.key_file)
            info = CertificateInfo.of(cert)
            check_forward(previous, info, now)
            if previous is None or previous.sha256 != info.sha256:
                _write_record(self._dir / SERVED_FILE, ServedRecord.of(info))
            return info
        if not (self._dir / KEY_FILE).exists() or not (self._dir / CERT_FILE).exists():
            return self._issue(previous, new_key=not (self._dir / KEY_FILE).exists())
        try:
            cert, _, _ = load_pair(self._dir / CERT_FILE, self._dir / KEY_FILE)
        except TlsCertificateError:
            # A crash between writing a new key and its certificate: certify the key on disk.
            return self._issue(previous, new_key=False)
        info = CertificateInfo.of(cert)
        due = info.not_after - timedelta(days=self.settings.renew_days) <= now
        uncovered = set(self.settings.hostnames) - info.names
        behind = previous is not None and previous.sha256 != info.sha256
        if due or uncovered or behind:
            # `behind`: a crash after recording and before writing the certificate; reissue.
            return self._issue(previous, new_key=False)
        return info

    def _issue(self, previous: ServedRecord | None, *, new_key: bool) -> CertificateInfo:
        now = self._now().replace(microsecond=0)
        key_path, cert_path = self._dir / KEY_FILE, self._dir / CERT_FILE
        if new_key or not key_path.exists():
            key: ec.EllipticCurvePrivateKey = ec.generate_private_key(ec.SECP256R1())
            key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        else:
            key_pem = key_path.read_bytes()
            loaded = serialization.load_pem_private_key(key_pem, password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise TlsCertificateError(f"{key_path} is not an EC key")
            key = loaded
        names = list(self.settings.hostnames)
        if previous is not None:  # names are only ever added (pinned clients may use any)
            names += sorted(previous.names - set(names))
        not_after = now + timedelta(days=self.settings.cert_days)
        if previous is not None and not_after <= previous.not_after:
            not_after = previous.not_after.replace(microsecond=0) + _ONE_SECOND
        cert = issue_self_signed(key, names, now - _BACKDATE, not_after)
        info = CertificateInfo.of(cert)
        check_forward(previous, info, now)
        # Record first: the record must never be behind what a client may have seen.
        _write_record(self._dir / SERVED_FILE, ServedRecord.of(info))
        if new_key or not key_path.exists():
            _atomic_write(key_path, key_pem, mode=0o600)
        _atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        log.info("issued a self-signed TLS certificate, expires %s", info.not_after.isoformat())
        return info
