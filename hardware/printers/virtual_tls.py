"""A self-signed TLS identity for the virtual printer, made with `cryptography` at start.

Real printers ship self-signed certificates, which is why PullPrint pins keys instead of
trusting chains; the virtual printer does the same so the pinning code runs for real in tests.
An EC P-256 key is used because it is generated in about a millisecond.
"""

from __future__ import annotations

import datetime
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hardware.printers.pinning import spki_pin


@dataclass(frozen=True, slots=True)
class TlsIdentity:
    """A server SSL context with its certificate (DER) and the certificate's key pin."""

    context: ssl.SSLContext
    certificate_der: bytes
    pin: str


def self_signed_identity(common_name: str = "localhost") -> TlsIdentity:
    """A fresh key and self-signed certificate, valid for a day, loaded into a server context."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(common_name), x509.DNSName("localhost")]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl loads keys from files only: write them to a private directory and remove it at once.
    with tempfile.TemporaryDirectory(prefix="virtual-printer-tls-") as directory:
        cert_path, key_path = Path(directory, "cert.pem"), Path(directory, "key.pem")
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context.load_cert_chain(cert_path, key_path)
    der = certificate.public_bytes(serialization.Encoding.DER)
    return TlsIdentity(context, der, spki_pin(der))
