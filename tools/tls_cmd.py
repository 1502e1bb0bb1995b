"""`pullprint tls`: the cloud's TLS certificate, on the cloud host.

    pullprint tls status --data-dir /var/lib/pullprint        # what is served, until when
    pullprint tls renew --data-dir /var/lib/pullprint         # managed certificate, now
    pullprint tls check new.crt new.key --data-dir ...        # would this replacement be taken?

Serving TLS is a setting of `pullprint cloud serve` (`--tls self-signed`, or `--tls-cert` and
`--tls-key`; or `tls` in the config). A running server picks up a renewed or replaced
certificate within the hour, never one that would move the expiry backwards (cloud/tls.py).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloud.tls import CertificateInfo, TlsSettings


def _settings(args: argparse.Namespace) -> TlsSettings:
    from cloud.config import load_config  # noqa: PLC0415 - the cloud stack loads only when used
    from cloud.errors import CloudError  # noqa: PLC0415 - as above
    from cloud.tls import TlsSettings  # noqa: PLC0415 - as above
    from tools.cli import CliError  # noqa: PLC0415 - tools.cli imports this module

    env = dict(os.environ)
    if args.data_dir:
        env["PULLPRINT_DATA_DIR"] = str(args.data_dir)
    try:
        config = load_config(Path(args.config) if args.config else None, env)
    except CloudError as exc:
        raise CliError(str(exc)) from exc
    settings = TlsSettings.from_config(config)
    if settings is None:
        raise CliError("TLS is off: set tls = self-signed, or tls_cert_file and tls_key_file")
    return settings


def _describe(label: str, info: CertificateInfo) -> None:
    print(f"{label}: {info.subject}")
    print(f"  names:      {', '.join(sorted(info.names))}")
    print(f"  valid:      {info.not_before.isoformat()} .. {info.not_after.isoformat()}")
    print(f"  sha256:     {info.sha256}")
    print(f"  key sha256: {info.spki_sha256}")


def _cmd_status(args: argparse.Namespace) -> int:
    from cloud.errors import CloudError  # noqa: PLC0415 - the cloud stack loads only when used
    from cloud.tls import CertificateInfo, ServerCertificates, load_pair  # noqa: PLC0415
    from tools.cli import CliError  # noqa: PLC0415 - tools.cli imports this module

    settings = _settings(args)
    certificates = ServerCertificates(settings)
    print(f"mode: {settings.mode}")
    try:
        record = certificates.served()
        cert, _, _ = load_pair(certificates.cert_file, certificates.key_file)
    except CloudError as exc:
        raise CliError(str(exc)) from exc
    _describe(f"certificate ({certificates.cert_file})", CertificateInfo.of(cert))
    if record is not None:
        print(f"last served: expires {record.not_after.isoformat()}, sha256 {record.sha256}")
    return 0


def _cmd_renew(args: argparse.Namespace) -> int:
    from cloud.errors import CloudError  # noqa: PLC0415 - the cloud stack loads only when used
    from cloud.tls import ServerCertificates  # noqa: PLC0415 - as above
    from tools.cli import CliError  # noqa: PLC0415 - tools.cli imports this module

    settings = _settings(args)
    try:
        info = ServerCertificates(settings).renew(new_key=args.new_key)
    except CloudError as exc:
        raise CliError(str(exc)) from exc
    _describe("renewed", info)
    print("a running server serves it within the hour (or restart it to serve it now)")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415 - only for this command

    from cloud.errors import CloudError  # noqa: PLC0415 - the cloud stack loads only when used
    from cloud.tls import (  # noqa: PLC0415 - as above
        CertificateInfo,
        ServerCertificates,
        check_forward,
        load_pair,
    )
    from tools.cli import CliError  # noqa: PLC0415 - tools.cli imports this module

    settings = _settings(args)
    try:
        cert, _, _ = load_pair(Path(args.cert), Path(args.key))
        info = CertificateInfo.of(cert)
        check_forward(ServerCertificates(settings).served(), info, datetime.now(UTC))
    except CloudError as exc:
        raise CliError(f"refused: {exc}") from exc
    _describe("acceptable", info)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tls` to the command tree."""
    tls = sub.add_parser("tls", help="the cloud's TLS certificate (ipps://)").add_subparsers(
        dest="tls_cmd", required=True
    )

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--data-dir", help="the cloud's data directory")
        parser.add_argument("--config", help="a cloud.toml")

    status = tls.add_parser("status", help="the certificate served and the last one recorded")
    common(status)
    status.set_defaults(func=_cmd_status)
    renew = tls.add_parser("renew", help="renew the managed certificate now (expiry only later)")
    common(renew)
    renew.add_argument("--new-key", action="store_true", help="with a new key pair as well")
    renew.set_defaults(func=_cmd_renew)
    check = tls.add_parser("check", help="would this certificate be accepted as a replacement?")
    check.add_argument("cert")
    check.add_argument("key")
    common(check)
    check.set_defaults(func=_cmd_check)
