"""`pullprint admin`: enrol users and issue app passcodes, working on the cloud's data directly.

Setting up the secure queue for someone takes two commands and one lpadmin::

    pullprint admin user add ada@example.org --name "Ada Lovelace" --data-dir /var/lib/pullprint
    pullprint admin passcode issue ada@example.org --data-dir /var/lib/pullprint
    lpadmin -p secure -E -m everywhere \\
        -v "ipps://ada%40example.org:PASSCODE@cloud.example.org/ipp/print"

The commands open the cloud's database and config directly (`CloudService.open`, migrating it if
needed), so they run on the cloud host. Secrets are printed once, to stdout, and never logged.
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloud.service import CloudService


@contextmanager
def _service(args: argparse.Namespace) -> Iterator[CloudService]:
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


def _cmd_user_add(args: argparse.Namespace) -> int:
    with _service(args) as service:
        issued = service.identity.create_user(args.email, args.name or args.email)
    print(f"user id:   {issued.id}")
    print(f"API token: {issued.api_token}")
    print("The token is shown only this once.")
    return 0


def _cmd_passcode_issue(args: argparse.Namespace) -> int:
    with _service(args) as service:
        user = service.passcodes.user_by_email(args.email)
        issued = service.passcodes.issue(user.id, args.label)
    print(f"passcode id: {issued.id}")
    print(f"passcode:    {issued.passcode}")
    print(f"Use it with {user.email} as the password of the secure queue; shown only this once.")
    return 0


def _cmd_passcode_list(args: argparse.Namespace) -> int:
    with _service(args) as service:
        user = service.passcodes.user_by_email(args.email)
        for view in service.passcodes.list_for(user.id):
            state = f"revoked {view.revoked_at:%Y-%m-%d}" if view.revoked_at else "active"
            print(f"{view.id}  {view.created_at:%Y-%m-%d %H:%M}  {state:<18} {view.label}")
    return 0


def _cmd_passcode_revoke(args: argparse.Namespace) -> int:
    from tools.cli import CliError  # noqa: PLC0415 - the cloud stack loads only when used

    try:
        passcode_id = uuid.UUID(args.passcode_id)
    except ValueError:
        raise CliError("PASSCODE_ID is a UUID (see `pullprint admin passcode list`)") from None
    with _service(args) as service:
        user = service.passcodes.user_by_email(args.email)
        service.passcodes.revoke(user.id, passcode_id)
    print(f"revoked passcode {passcode_id}")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="the cloud's data directory (database, secrets.toml)")
    parser.add_argument("--config", help="the cloud's cloud.toml")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `admin user add` and `admin passcode issue|list|revoke` to the command tree."""
    admin = sub.add_parser("admin", help="enrol users, issue app passcodes").add_subparsers(
        dest="admin_cmd", required=True
    )
    user = admin.add_parser("user", help="users").add_subparsers(dest="user_cmd", required=True)
    add = user.add_parser("add", help="create a user; prints their id and API token once")
    add.add_argument("email")
    add.add_argument("--name", help="display name (default: the email)")
    _common(add)
    add.set_defaults(func=_cmd_user_add)

    passcode = admin.add_parser("passcode", help="app passcodes for the IPP queue")
    commands = passcode.add_subparsers(dest="passcode_cmd", required=True)
    issue = commands.add_parser("issue", help="issue a passcode; prints it once")
    issue.add_argument("email")
    issue.add_argument("--label", default="", help="what it is for, e.g. 'laptop'")
    _common(issue)
    issue.set_defaults(func=_cmd_passcode_issue)
    listing = commands.add_parser("list", help="a user's passcodes (never their secrets)")
    listing.add_argument("email")
    _common(listing)
    listing.set_defaults(func=_cmd_passcode_list)
    revoke = commands.add_parser("revoke", help="revoke one passcode at once")
    revoke.add_argument("email")
    revoke.add_argument("passcode_id")
    _common(revoke)
    revoke.set_defaults(func=_cmd_passcode_revoke)
