"""`pullprint admin`: users, app passcodes, stations and site keys, on the cloud's data directly.

Setting up the secure queue for someone takes two commands and one lpadmin::

    pullprint admin user add ada@example.org --name "Ada Lovelace" --data-dir /var/lib/pullprint
    pullprint admin passcode issue ada@example.org --data-dir /var/lib/pullprint
    lpadmin -p secure -E -m everywhere \\
        -v "ipps://ada%40example.org:PASSCODE@cloud.example.org/ipp/print"

Stations pair themselves and are approved with `pullprint pair` (`tools.pair_cmd`), which needs
the site key: `pullprint admin site init` makes it once, in a file the admin keeps outside the
cloud's data (the cloud never stores it). `pullprint admin station list|revoke` manage them.

The commands open the cloud's database and config directly (`CloudService.open`, migrating it if
needed), so they run on the cloud host. Secrets are printed once, to stdout, and never logged.
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tools import admin_reports

if TYPE_CHECKING:
    from cloud.service import CloudService


@contextmanager
def open_service(args: argparse.Namespace) -> Iterator[CloudService]:
    """The cloud service on `--data-dir` / `--config`, closed afterwards; errors as CliError."""
    from cloud.config import load_config  # noqa: PLC0415 - the cloud stack loads only when used
    from cloud.errors import CloudError  # noqa: PLC0415 - the cloud stack loads only when used
    from cloud.service import CloudService  # noqa: PLC0415 - the cloud stack loads only when used
    from tools.cli import CliError  # noqa: PLC0415 - the cloud stack loads only when used

    env = dict(os.environ)
    if args.data_dir:
        env["PULLPRINT_DATA_DIR"] = str(args.data_dir)
    try:
        config = load_config(Path(args.config) if args.config else None, env)
        service = CloudService.open(config)
    except CloudError as exc:
        raise CliError(str(exc)) from exc
    try:
        yield service
    except CloudError as exc:
        raise CliError(exc.detail) from exc
    finally:
        service.close()


def parse_id(text: str, message: str) -> uuid.UUID:
    """A UUID from the command line; `message` (which says where to find one) if it is not."""
    from tools.cli import CliError  # noqa: PLC0415 - the cloud stack loads only when used

    try:
        return uuid.UUID(text)
    except ValueError:
        raise CliError(message) from None


def _station_id(text: str) -> uuid.UUID:
    return parse_id(text, "STATION_ID is a UUID (see `pullprint admin station list`)")


def _site(args: argparse.Namespace, service: CloudService) -> str:
    """`--site`, or the cloud's own."""
    return str(args.site or service.config.site)


def _site_key_path(args: argparse.Namespace, site: str) -> Path:
    from tools.pair_cmd import default_site_key_path  # noqa: PLC0415

    return Path(args.site_key_file) if args.site_key_file else default_site_key_path(site)


def _site_key(args: argparse.Namespace, site: str) -> bytes:
    from tools.pair_cmd import read_site_key  # noqa: PLC0415

    return read_site_key(_site_key_path(args, site))


def _user(service: CloudService, email: str, site: str | None) -> uuid.UUID:
    return service.passcodes.user_by_email(email, site).id


def _state(revoked_at: datetime | None) -> str:
    return f"revoked {revoked_at:%Y-%m-%d}" if revoked_at else "active"


def _print_passcode(passcode_id: uuid.UUID, passcode: str) -> None:
    print(f"passcode id: {passcode_id}")
    print(f"passcode:    {passcode}")


def _cmd_user_add(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        issued = service.identity.create_user(args.email, args.name or args.email, args.site)
    print(f"user id:   {issued.id}")
    print(f"API token: {issued.api_token}")
    print("The token is shown only this once.")
    return 0


def _cmd_passcode_issue(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        user = service.passcodes.user_by_email(args.email, args.site)
        issued = service.passcodes.issue(user.id, args.label, user.site)
    _print_passcode(issued.id, issued.passcode)
    print(f"Use it with {user.email} as the password of the secure queue; shown only this once.")
    return 0


def _cmd_passcode_list(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        user = service.passcodes.user_by_email(args.email, args.site)
        for view in service.passcodes.list_for(user.id, user.site):
            state = _state(view.revoked_at)
            print(f"{view.id}  {view.created_at:%Y-%m-%d %H:%M}  {state:<18} {view.label}")
    return 0


def _cmd_passcode_revoke(args: argparse.Namespace) -> int:
    passcode_id = parse_id(
        args.passcode_id, "PASSCODE_ID is a UUID (see `pullprint admin passcode list`)"
    )
    with open_service(args) as service:
        user = service.passcodes.user_by_email(args.email, args.site)
        service.passcodes.revoke(user.id, passcode_id, user.site)
    print(f"revoked passcode {passcode_id}")
    return 0


def _cmd_station_list(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        for view in service.stations.list(args.site):
            state = _state(view.revoked_at)
            print(
                f"{view.id}  {state:<18} {view.fingerprint or '-':<39}  {view.name}  "
                f"{view.printer_uri}"
            )
    return 0


def _cmd_station_revoke(args: argparse.Namespace) -> int:
    station_id = _station_id(args.station_id)
    with open_service(args) as service:
        view = service.stations.revoke(station_id, args.site)
    print(f"revoked station {view.id} ({view.name}); its next request is refused")
    return 0


def _cmd_site_init(args: argparse.Namespace) -> int:
    from tools.cli import CliError  # noqa: PLC0415 - the cloud stack loads only when used
    from tools.pair_cmd import write_new_site_key  # noqa: PLC0415

    site = args.site
    if site is None:
        with open_service(args) as service:
            site = service.config.site
    path = _site_key_path(args, site)
    try:
        write_new_site_key(path)
    except FileExistsError:
        raise CliError(
            f"{path} exists already; replacing a site key orphans every enrolled badge"
        ) from None
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from exc
    print(f"wrote a new site key for site {site} to {path} (mode 0600)")
    print("Keep it (and a backup) away from the cloud host's data: the cloud must not hold it.")
    return 0


def _cmd_site_add(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        issued = service.sites.add(args.name)
    print(f"site id:     {issued.id}")
    print(f"admin token: {issued.admin_token}")
    print(f"The admin token of site {issued.name} is shown only this once.")
    return 0


def _cmd_site_list(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        default = service.config.site
        for view in service.sites.list():
            print(f"{view.id}  {view.name}{'  (default)' if view.name == default else ''}")
    return 0


def _cmd_pin_set(args: argparse.Namespace) -> int:
    import getpass  # noqa: PLC0415 - only this command prompts

    from tools.cli import CliError  # noqa: PLC0415 - the cloud stack loads only when used

    with open_service(args) as service:
        site = _site(args, service)
        site_key = _site_key(args, site)
        pin = getpass.getpass("PIN: ")
        if getpass.getpass("PIN again: ") != pin:
            raise CliError("the PINs differ; nothing was changed")
        user_id = service.pins.set_pin(args.email, pin, site_key, site)
    print(f"PIN set for user {user_id}")
    return 0


def _cmd_pin_reset(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        user_id = service.pins.reset(args.email, args.site)
    print(f"PIN failures and lockout cleared for user {user_id}")
    return 0


def _cmd_site_policy(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        site = args.name or service.config.site
        if args.min_pin_digits is not None:
            service.pins.set_min_digits(site, args.min_pin_digits)
        policy = service.identity.set_policy(
            site,
            card_pin=_switch(args.card_pin),
            self_enrolment=_switch(args.self_enrolment),
            passcode_mode=args.passcode_mode,
            passcode_ttl_s=args.passcode_ttl_s,
        )
        digits = service.pins.min_digits(site)
    print(f"site {site}: PINs of at least {digits} digits")
    print(f"  card + PIN:        {'on' if policy.card_pin else 'off'}")
    print(f"  self-enrolment:    {'on' if policy.self_enrolment else 'off'}")
    ttl = f", valid {policy.passcode_ttl_s} s" if policy.passcode_mode == "single-use" else ""
    print(f"  release passcodes: {policy.passcode_mode}{ttl}")
    return 0


def _switch(value: str | None) -> bool | None:
    return None if value is None else value == "on"


def _cmd_user_import(args: argparse.Namespace) -> int:
    from tools.cli import CliError  # noqa: PLC0415 - the cloud stack loads only when used
    from tools.user_import import (  # noqa: PLC0415
        ImportApiError,
        ImportFileError,
        ImportReport,
        import_users,
        import_users_over_api,
        render,
        write_tokens,
    )

    path = Path(args.file)
    tokens_out = Path(args.tokens_out) if args.tokens_out else None
    if tokens_out is not None and tokens_out.exists():
        raise CliError(f"{tokens_out} exists; refusing to overwrite it")
    report: ImportReport
    try:
        with path.open(encoding="utf-8-sig", newline="") as lines:
            if args.cloud:
                # From any machine: only tags cross the wire; the admin token from the
                # environment, never the command line (which other users can read).
                token = os.environ.get("PULLPRINT_ADMIN_TOKEN", "")
                if not token:
                    raise CliError("--cloud needs the admin token in PULLPRINT_ADMIN_TOKEN")
                if not (args.site_key_file or args.site):
                    raise CliError("--cloud needs --site-key-file (or --site to find it)")
                site_key = _site_key(args, args.site)
                report = import_users_over_api(
                    args.cloud,
                    token,
                    lines,
                    site_key,
                    default_format=args.format,
                    dry_run=args.dry_run,
                )
            else:
                with open_service(args) as service:
                    site = _site(args, service)
                    report = import_users(
                        service,
                        lines,
                        _site_key(args, site),
                        site=site,
                        default_format=args.format,
                        dry_run=args.dry_run,
                    )
    except (ImportFileError, ValueError) as exc:
        raise CliError(f"{path}: {exc}") from exc
    except ImportApiError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    print(render(report, as_json=args.json), end="" if not args.json else "\n")
    if report.tokens:
        if tokens_out is not None:
            write_tokens(tokens_out, report.tokens)
            print(f"API tokens of {len(report.tokens)} new user(s) written to {tokens_out}")
        elif not args.json:
            print(f"{len(report.tokens)} new user(s); pass --tokens-out FILE to keep their tokens")
    return 0 if report.ok else 1


def _cmd_badge_add(args: argparse.Namespace) -> int:
    from hardware.readers.errors import CardFormatError  # noqa: PLC0415
    from station.credentials import credential_tag  # noqa: PLC0415
    from tools.cli import CliError  # noqa: PLC0415
    from tools.user_import import badge_credential, badge_format  # noqa: PLC0415

    try:
        fmt = badge_format(args.format)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    with open_service(args) as service:
        site = _site(args, service)
        try:
            tag = credential_tag(_site_key(args, site), badge_credential(args.number, fmt))
        except CardFormatError as exc:
            raise CliError(f"badge: {exc}") from exc
        card = service.identity.add_card(_user(service, args.email, site), tag, args.label, site)
    print(f"badge {card.id} ({card.label or 'no label'}) enrolled for {args.email}")
    return 0


def _cmd_badge_list(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        site = _site(args, service)
        cards = service.identity.list_cards(_user(service, args.email, site), site)
    for card in cards:
        when = f"{card.created_at:%Y-%m-%d %H:%M}" if card.created_at else "-"
        print(f"{card.id}  {when}  {card.label}")
    return 0


def _cmd_badge_remove(args: argparse.Namespace) -> int:
    card_id = parse_id(args.badge_id, "BADGE_ID is a UUID (see `pullprint admin badge list`)")
    with open_service(args) as service:
        site = _site(args, service)
        service.identity.remove_card(_user(service, args.email, site), card_id, site)
    print(f"removed badge {card_id}; it no longer opens a session")
    return 0


def _cmd_passcode_release(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        site = _site(args, service)
        issued = service.release_passcodes.issue(_user(service, args.email, site), site, args.label)
    _print_passcode(issued.id, issued.passcode)
    if issued.expires_at is not None:
        print(f"Type it on a station's keypad once, before {issued.expires_at:%Y-%m-%d %H:%M} UTC.")
    else:
        print("Type it on a station's keypad; it works until revoked. Shown only this once.")
    return 0


def _common(parser: argparse.ArgumentParser, *, site: bool = True) -> None:
    parser.add_argument("--data-dir", help="the cloud's data directory (database, secrets.toml)")
    parser.add_argument("--config", help="the cloud's cloud.toml")
    if site:
        parser.add_argument("--site", help="the site to act in (default: the cloud's)")


def _command(
    group: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    func: Callable[[argparse.Namespace], int],
    *positionals: str,
    site: bool = True,
) -> argparse.ArgumentParser:
    """One `admin` command: its positionals, the common options, and what runs it; the caller
    adds any other options to the parser returned."""
    parser = group.add_parser(name, help=help_text)
    for positional in positionals:
        parser.add_argument(positional)
    _common(parser, site=site)
    parser.set_defaults(func=func)
    return parser


def _group(
    admin: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    return admin.add_parser(name, help=help_text).add_subparsers(dest=f"{name}_cmd", required=True)


_SITE_KEY_HELP = "the site key (default: under ~/.config)"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `admin user add|import`, `admin badge add|list|remove`, `admin passcode
    issue|list|revoke|release`, `admin station list|revoke`, `admin pin set|reset` and
    `admin site init|add|list|policy` to the command tree."""
    admin = sub.add_parser(
        "admin", help="users, app passcodes, stations, site keys, printers"
    ).add_subparsers(dest="admin_cmd", required=True)
    user = _group(admin, "user", "users")
    add = _command(
        user, "add", "create a user; prints their id and API token once", _cmd_user_add, "email"
    )
    add.add_argument("--name", help="display name (default: the email)")
    admin_reports.register_user_list(user, _common)
    admin_reports.register(admin, _common)
    imp = _command(
        user,
        "import",
        "users and badges from a CSV file (email,name,badge,format,label)",
        _cmd_user_import,
    )
    imp.add_argument("file", help="the CSV file; the first line names the columns")
    imp.add_argument("--format", help="badge format for rows without one, e.g. h10301/fn")
    imp.add_argument("--dry-run", action="store_true", help="check and report; write nothing")
    imp.add_argument("--json", action="store_true", help="the report as JSON")
    imp.add_argument("--tokens-out", help="write new users' API tokens here (mode 0600)")
    imp.add_argument("--site-key-file", help=_SITE_KEY_HELP)
    imp.add_argument(
        "--cloud", help="import through the admin API at this URL (token: PULLPRINT_ADMIN_TOKEN)"
    )

    badge = _group(admin, "badge", "users' badges (several per user, labelled)")
    badge_add = _command(
        badge, "add", "enrol a badge by its printed number", _cmd_badge_add, "email"
    )
    badge_add.add_argument("number", help="as printed, e.g. 90:324 (facility:number)")
    badge_add.add_argument("--format", required=True, help="e.g. h10301/fn, mifare/hex")
    badge_add.add_argument("--label", default="", help="e.g. 'blue badge'")
    badge_add.add_argument("--site-key-file", help=_SITE_KEY_HELP)
    _command(badge, "list", "a user's badges (labels, never numbers)", _cmd_badge_list, "email")
    _command(badge, "remove", "remove a badge at once", _cmd_badge_remove, "email", "badge_id")

    passcode = _group(admin, "passcode", "app passcodes for the IPP queue")
    issue = _command(
        passcode, "issue", "issue a passcode; prints it once", _cmd_passcode_issue, "email"
    )
    issue.add_argument("--label", default="", help="what it is for, e.g. 'laptop'")
    _command(
        passcode, "list", "a user's passcodes (never their secrets)", _cmd_passcode_list, "email"
    )
    _command(
        passcode,
        "revoke",
        "revoke one passcode at once",
        _cmd_passcode_revoke,
        "email",
        "passcode_id",
    )
    release = _command(
        passcode,
        "release",
        "issue a passcode to type at a station's keypad; prints it once",
        _cmd_passcode_release,
        "email",
    )
    release.add_argument("--label", default="", help="what it is for, e.g. 'visitor'")

    station = _group(admin, "station", "paired stations")
    _command(station, "list", "the site's stations and fingerprints", _cmd_station_list)
    _command(station, "revoke", "revoke a station at once", _cmd_station_revoke, "station_id")

    pin = _group(admin, "pin", "users' PINs for email + PIN at a station")
    pin_set = _command(
        pin, "set", "set a user's PIN (prompted; needs the site key)", _cmd_pin_set, "email"
    )
    pin_set.add_argument("--site-key-file", help=_SITE_KEY_HELP)
    _command(pin, "reset", "clear a user's PIN failures and lockout", _cmd_pin_reset, "email")

    site = _group(admin, "site", "sites and their keys")
    init = _command(
        site, "init", "make the site key for credential tags (once)", _cmd_site_init, site=False
    )
    init.add_argument("--site", help="the site (default: the cloud's)")
    init.add_argument("--site-key-file", help="where to write it (default: under ~/.config)")
    site_add = _command(
        site, "add", "add a site; prints its admin token once", _cmd_site_add, site=False
    )
    site_add.add_argument("name", help="a lowercase slug, e.g. branch-2")
    _command(site, "list", "the sites (never their tokens)", _cmd_site_list, site=False)
    policy = _command(
        site, "policy", "set (and show) a site's identity policy", _cmd_site_policy, site=False
    )
    policy.add_argument("name", nargs="?", help="the site (default: the cloud's)")
    policy.add_argument("--min-pin-digits", type=int, help="4 to 12 (default 6)")
    policy.add_argument("--card-pin", choices=("on", "off"), help="ask for a PIN after a tap")
    policy.add_argument(
        "--self-enrolment", choices=("on", "off"), help="unknown badges get an enrolment code"
    )
    policy.add_argument("--passcode-mode", choices=("single-use", "long-lived"))
    policy.add_argument("--passcode-ttl-s", type=int, help="life of a single-use passcode")

    from tools import admin_printers  # noqa: PLC0415 - the printer commands live in their module

    admin_printers.register(admin, _common)
