"""`pullprint policy`: a site's job policies, and zero-knowledge mode, on the cloud host.

    pullprint policy show [--site S]
    pullprint policy set [--site S] [--job-names keep|hide|drop] [--expiry-h H]
        [--quota-bytes N] [--keep-printed | --no-keep-printed]
        [--release-all-on-tap | --no-release-all-on-tap]
    pullprint policy zk-init [--site S] [--site-private-key-file PATH]

`zk-init` makes the site's X25519 key pair, writes the private key (64 hex characters, mode 0600,
never overwriting one) next to the site key in the admin's site-key directory, and turns on
zero-knowledge mode with the public key. The cloud never holds the private key: `pullprint pair`
reads it from that file and seals it into each new station's grant. Stations paired before
zk-init lack it: pair them again. Zero-knowledge mode cannot be turned off.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey


def write_new_private_key(path: Path) -> bytes:
    """Make an X25519 key pair, write the private key (hex, 0600, exclusive); return the public.

    Raises:
        FileExistsError: `path` exists (replacing it would orphan every held zero-knowledge job).
    """
    key = X25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(raw.hex() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _show(policy: object) -> None:
    from cloud.policies import Policy  # noqa: PLC0415 - the cloud stack loads only when used

    assert isinstance(policy, Policy)
    quota = f"{policy.quota_bytes} bytes per user" if policy.quota_bytes else "none"
    print(f"site:               {policy.site}")
    print(f"zero-knowledge:     {'yes' if policy.zero_knowledge else 'no'}")
    print(f"job names:          {policy.job_names}")
    print(f"job expiry:         {policy.job_expiry_h} h")
    print(f"quota:              {quota}")
    print(f"keep printed jobs:  {'yes, until expiry' if policy.keep_printed else 'no'}")
    print(f"release all on tap: {'yes' if policy.release_all_on_tap else 'no'}")


def _cmd_show(args: argparse.Namespace) -> int:
    from tools.admin import open_service  # noqa: PLC0415 - the cloud stack loads only when used

    with open_service(args) as service:
        _show(service.policies.get(args.site or service.config.site))
    return 0


def _cmd_set(args: argparse.Namespace) -> int:
    from cloud.policies import JobNames, PolicyChange  # noqa: PLC0415
    from tools.admin import open_service  # noqa: PLC0415

    change = PolicyChange(
        job_names=JobNames(args.job_names) if args.job_names else None,
        job_expiry_h=args.expiry_h,
        quota_bytes=args.quota_bytes,
        keep_printed=args.keep_printed,
        release_all_on_tap=args.release_all_on_tap,
    )
    with open_service(args) as service:
        _show(service.policies.update(args.site or service.config.site, change))
    return 0


def _cmd_zk_init(args: argparse.Namespace) -> int:
    from cloud.policies import PolicyChange  # noqa: PLC0415
    from tools.admin import open_service  # noqa: PLC0415
    from tools.cli import CliError  # noqa: PLC0415 - tools.cli imports this module
    from tools.pair_cmd import default_site_private_key_path  # noqa: PLC0415

    with open_service(args) as service:
        site = args.site or service.config.site
        if service.policies.get(site).zero_knowledge:
            raise CliError(f"site {site} is zero-knowledge already")
        path = (
            Path(args.site_private_key_file)
            if args.site_private_key_file
            else default_site_private_key_path(site)
        )
        try:
            public = write_new_private_key(path)
        except FileExistsError:
            raise CliError(f"{path} exists already; it may be the key of held jobs") from None
        except OSError as exc:
            raise CliError(f"cannot write {path}: {exc.strerror}") from exc
        service.policies.update(site, PolicyChange(zero_knowledge=True, public_key=public))
    print(f"site {site} is zero-knowledge; its private key is in {path} (mode 0600)")
    print("Keep it (and a backup) off the cloud host; pair stations again to give them the key.")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `policy show|set|zk-init` to the command tree."""
    policy = sub.add_parser("policy", help="a site's job policies and zero-knowledge mode")
    cmds = policy.add_subparsers(dest="policy_cmd", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--data-dir", help="the cloud's data directory")
        parser.add_argument("--config", help="the cloud's cloud.toml")
        parser.add_argument("--site", help="the site (default: the cloud's)")

    show = cmds.add_parser("show", help="the policies in force")
    common(show)
    show.set_defaults(func=_cmd_show)

    change = cmds.add_parser("set", help="change policies (options left out stay as they are)")
    common(change)
    change.add_argument("--job-names", choices=["keep", "hide", "drop"])
    change.add_argument("--expiry-h", type=int, help="hours a held job is kept")
    change.add_argument("--quota-bytes", type=int, help="held bytes per user (0: no quota)")
    change.add_argument("--keep-printed", action=argparse.BooleanOptionalAction, default=None)
    change.add_argument("--release-all-on-tap", action=argparse.BooleanOptionalAction, default=None)
    change.set_defaults(func=_cmd_set)

    zk = cmds.add_parser("zk-init", help="make the site key pair; turn on zero-knowledge mode")
    common(zk)
    zk.add_argument("--site-private-key-file", help="where to write the private key")
    zk.set_defaults(func=_cmd_zk_init)
