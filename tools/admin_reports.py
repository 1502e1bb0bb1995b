"""`pullprint admin user list`, `admin job list`, `admin audit`: what the cloud holds, as a table
or as JSON (`--json`, one object per command, for scripts).

Read-only, on the cloud host (`tools.admin.open_service`); nothing listed is secret: no tokens,
no tags, no document names or content.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from tools.table import format_table

Common = Callable[..., None]


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _dump(key: str, rows: list[Any]) -> None:
    items = [{k: _jsonable(v) for k, v in asdict(row).items()} for row in rows]
    print(json.dumps({key: items}, ensure_ascii=False, indent=2))


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def _show(
    args: argparse.Namespace,
    key: str,
    rows: list[Any],
    headers: list[str],
    cells: Callable[[Any], list[object]],
) -> int:
    """The rows as `{key: [...]}` JSON with `--json`, else as a table of `cells(row)`."""
    if args.json:
        _dump(key, rows)
    else:
        print(format_table(headers, [cells(r) for r in rows]))
    return 0


def _cmd_user_list(args: argparse.Namespace) -> int:
    from tools.admin import open_service  # noqa: PLC0415 - the cloud stack loads only when used

    with open_service(args) as service:
        rows = service.reports.users(args.site)
    return _show(
        args,
        "users",
        rows,
        ["ID", "EMAIL", "NAME", "BADGES", "HELD", "HELD BYTES", "CREATED"],
        lambda r: [
            r.id,
            r.email,
            r.display_name,
            r.cards,
            r.held_jobs,
            r.held_bytes,
            _when(r.created_at),
        ],
    )


def _cmd_job_list(args: argparse.Namespace) -> int:
    from tools.admin import open_service  # noqa: PLC0415 - the cloud stack loads only when used

    with open_service(args) as service:
        rows = service.reports.jobs(
            args.site, state=args.state, owner_email=args.owner, limit=args.limit
        )
    return _show(
        args,
        "jobs",
        rows,
        ["ID", "OWNER", "FORMAT", "BYTES", "PAGES", "COPIES", "STATE", "SUBMITTED", "EXPIRES"],
        lambda r: [
            r.id,
            r.owner_email,
            r.document_format,
            r.size_bytes,
            r.pages,
            r.copies,
            r.state,
            _when(r.submitted_at),
            _when(r.expires_at),
        ],
    )


def _cmd_audit(args: argparse.Namespace) -> int:
    from tools.admin import open_service, parse_id  # noqa: PLC0415 - loads the cloud when used

    job_id = parse_id(args.job, "--job takes a job id (a UUID)") if args.job else None
    with open_service(args) as service:
        rows = service.reports.audit(
            args.site, after=args.after, kind=args.kind, job_id=job_id, limit=args.limit
        )
    return _show(
        args,
        "events",
        rows,
        ["ID", "AT", "KIND", "USER", "STATION", "JOB", "RELEASE", "DETAIL"],
        lambda r: [
            r.id,
            f"{r.at:%Y-%m-%d %H:%M:%S}",
            r.kind,
            r.user_id,
            r.station_id,
            r.job_id,
            r.release_id,
            r.detail,
        ],
    )


def _limit(text: str) -> int:
    from cloud.reports import MAX_LIMIT  # noqa: PLC0415 - the cloud stack loads only when used

    value = int(text)
    if not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"between 1 and {MAX_LIMIT}")
    return value


def register_user_list(
    user: argparse._SubParsersAction[argparse.ArgumentParser], common: Common
) -> None:
    """Add `admin user list` to the `admin user` commands."""
    listing = user.add_parser("list", help="the site's users, badge and held-job counts")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    common(listing)
    listing.set_defaults(func=_cmd_user_list)


def register(admin: argparse._SubParsersAction[argparse.ArgumentParser], common: Common) -> None:
    """Add `admin job list` and `admin audit`."""
    job = admin.add_parser("job", help="jobs (metadata only)")
    job_cmds = job.add_subparsers(dest="job_cmd", required=True)
    jobs = job_cmds.add_parser("list", help="the site's newest jobs")
    jobs.add_argument("--state", help="only jobs in this state (held, printed, expired, ...)")
    jobs.add_argument("--owner", help="only this user's jobs (email)")
    jobs.add_argument("--limit", type=_limit, default=100)
    jobs.add_argument("--json", action="store_true", help="JSON instead of a table")
    common(jobs)
    jobs.set_defaults(func=_cmd_job_list)

    audit = admin.add_parser("audit", help="the site's audit trail, oldest first")
    audit.add_argument("--after", type=int, default=0, help="events after this id (paging)")
    audit.add_argument("--kind", help="only events of this kind (e.g. release.printed)")
    audit.add_argument("--job", help="only events about this job id")
    audit.add_argument("--limit", type=_limit, default=100)
    audit.add_argument("--json", action="store_true", help="JSON instead of a table")
    common(audit)
    audit.set_defaults(func=_cmd_audit)
