"""`pullprint pair CODE`: an admin approves a station's pairing request, on the cloud host.

    pullprint admin site init --data-dir /var/lib/pullprint           # once per site
    pullprint pair BCDF-GHJK --printer "Floor 2" --printer-uri ipps://p2.local/ipp/print \\
        --data-dir /var/lib/pullprint

The station shows the code and its key fingerprint; this command shows the fingerprint of the
request that code names, asks the admin to compare the two, and then approves (or, on "no",
denies) it. Approval seals the grant for the station, including the site key for credential tags.

The site key lives in a site-key file the admin keeps (default
`$XDG_CONFIG_HOME/pullprint/site-keys/<site>.key`, mode 0600), outside the cloud's data directory
and database: the cloud never stores it in the clear (DESIGN.md, "Security constructions"), and
this command is the only place it is read, to be sealed to the new station's key.
"""

from __future__ import annotations

import argparse
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloud.registry import PrinterView
    from cloud.service import CloudService

SITE_KEY_BYTES = 32


def default_site_key_path(site: str) -> Path:
    """Where `admin site init` puts a site's key unless told otherwise."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pullprint" / "site-keys" / f"{site}.key"


def default_site_private_key_path(site: str) -> Path:
    """Where `pullprint policy zk-init` puts a zero-knowledge site's X25519 private key."""
    return default_site_key_path(site).with_name(f"{site}.zk.key")


def write_new_site_key(path: Path) -> None:
    """Write a fresh random site key (64 hex characters, mode 0600), never overwriting one.

    Raises:
        FileExistsError: `path` exists (replacing it would orphan every enrolled badge).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(SITE_KEY_BYTES) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_site_key(path: Path) -> bytes:
    """Read a site-key file (64 hex characters).

    Raises:
        CliError: missing, readable by others, or malformed (the message never shows the key).
    """
    from tools.cli import CliError  # noqa: PLC0415 - tools.cli imports this module

    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise CliError(
            f"no site key at {path}: run `pullprint admin site init` (or pass --site-key-file)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the site key {path}: {exc}") from exc
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CliError(f"the site key {path} is readable by others; run: chmod 600 {path}")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != SITE_KEY_BYTES:
        raise CliError(f"{path} is not a site key (64 hex characters)")
    return key


def _cmd_pair(args: argparse.Namespace) -> int:
    from tools.admin import open_service  # noqa: PLC0415 - the cloud stack loads only when used
    from tools.cli import CliError  # noqa: PLC0415 - tools.cli imports this module

    with open_service(args) as service:
        site = args.site or service.config.site
        key_path = Path(args.site_key_file) if args.site_key_file else default_site_key_path(site)
        site_key = read_site_key(key_path)
        site_private_key = None
        if service.policies.get(site).zero_knowledge:
            private_path = (
                Path(args.site_private_key_file)
                if args.site_private_key_file
                else default_site_private_key_path(site)
            )
            site_private_key = read_site_key(private_path)
        pending = service.pairing.find(args.code)
        printer = registered_printer(service, args.printer, args.printer_uri, site)
        print(f"pairing request {pending.request_id}")
        print(f"  key fingerprint: {pending.fingerprint}")
        print(f"  printer:         {printer.name} at {printer.uri} (site {site})")
        if not args.yes:
            answer = input("Does the station's screen show this fingerprint? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                service.pairing.deny(args.code)
                raise CliError("denied: the station's next poll is refused; it must start again")
        approved = service.pairing.approve(
            args.code,
            site_key=site_key,
            printer_name=printer.name,
            printer_uri=printer.uri,
            site=site,
            site_private_key=site_private_key,
        )
        service.registry.assign(printer.id, approved.station_id, site)
    print(f"paired station {approved.station_id} ({approved.name})")
    print("The station picks up its configuration at its next poll.")
    return 0


def registered_printer(service: CloudService, name: str, uri: str | None, site: str) -> PrinterView:
    """The registered printer NAME (the registry is the source of a station's printer config);
    registered with just `uri` if the site has none of that name.

    Raises:
        CliError: no such printer and no URI, or a URI that differs from the registered one.
    """
    from cloud.errors import PrinterNotFoundError  # noqa: PLC0415 - cloud stack loads when used
    from cloud.registry import PrinterSpec  # noqa: PLC0415 - cloud stack loads when used
    from tools.cli import CliError  # noqa: PLC0415 - tools.cli imports this module

    try:
        printer = service.registry.find(name, site)
    except PrinterNotFoundError:
        if uri is None:
            raise CliError(
                f"site {site} has no printer {name!r}: register it with "
                "`pullprint admin printer add` (or give --printer-uri)"
            ) from None
        return service.registry.add(PrinterSpec(name=name, uri=uri), site)
    if uri is not None and uri != printer.uri:
        raise CliError(
            f"printer {name!r} is registered at {printer.uri}; change it with "
            "`pullprint admin printer set` rather than at pairing"
        )
    return printer


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `pair CODE` to the command tree."""
    pair = sub.add_parser("pair", help="approve a station's pairing request (on the cloud host)")
    pair.add_argument("code", help="the code the station shows, e.g. BCDF-GHJK")
    pair.add_argument("--printer", required=True, help="the printer's name (names the station)")
    pair.add_argument(
        "--printer-uri",
        help="registers the printer if the site has none of that name (pullprint admin printer "
        "add does it with a transport policy and pin), e.g. ipp://printer.local/ipp/print",
    )
    pair.add_argument("--site", help="the site (default: the cloud's)")
    pair.add_argument("--site-key-file", help="the site key (default: see `admin site init`)")
    pair.add_argument(
        "--site-private-key-file",
        help="zero-knowledge sites: the site private key (default: see `policy zk-init`)",
    )
    pair.add_argument("--yes", action="store_true", help="approve without asking (scripts)")
    pair.add_argument("--data-dir", help="the cloud's data directory (database, secrets.toml)")
    pair.add_argument("--config", help="the cloud's cloud.toml")
    pair.set_defaults(func=_cmd_pair)
