"""Importing users and badges by tag: the cloud's half of `pullprint admin user import`.

The admin's machine reads the spreadsheet, turns each printed badge number into the station's
keyed tag with the site key, and hands over only (email, name, label, tag) entries: the cloud
never sees a badge number. Here every entry is applied idempotently, so an interrupted import
can be run again: a user who exists is reused, a badge already enrolled to that user is
reported as such, a badge enrolled to someone else is a failed row (never silently moved).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from cloud.errors import CredentialExistsError, UserExistsError, UserNotFoundError
from cloud.identity import Identity
from cloud.passcodes import Passcodes

MAX_ENTRIES_PER_CALL = 1000


@dataclass(frozen=True, slots=True)
class ImportEntry:
    """One checked spreadsheet row: a user and, optionally, one badge by its tag."""

    line: int
    email: str
    name: str
    label: str = ""
    tag: str | None = field(default=None, repr=False)


@dataclass(slots=True)
class ImportedRow:
    """What importing one row did (or, on a dry run, would do)."""

    line: int
    email: str
    user: str  # "created", "exists", "would be created"
    badge: str  # "added", "would be added", "already enrolled to this user", "none", ...
    ok: bool = True


@dataclass(slots=True)
class ImportResult:
    """The rows, and the API tokens of the users created (shown once)."""

    rows: list[ImportedRow] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict, repr=False)


def import_entries(
    identity: Identity,
    passcodes: Passcodes,
    entries: Sequence[ImportEntry],
    site: str,
    *,
    dry_run: bool = False,
) -> ImportResult:
    """Create the users and enrol the badges of `entries` in `site` (nothing on a dry run).

    Raises:
        InvalidTagError: a tag is malformed.
        NotFoundError: no such site.
    """
    result = ImportResult()
    users: dict[str, uuid.UUID] = {}
    for entry in entries:
        key = entry.email.strip().lower()
        user_state = "exists"
        if key not in users:
            try:
                users[key] = passcodes.user_by_email(entry.email, site).id
            except UserNotFoundError:
                if dry_run:
                    users[key] = uuid.UUID(int=0)  # no user: no badge can be theirs yet
                    user_state = "would be created"
                else:
                    try:
                        issued = identity.create_user(entry.email, entry.name, site)
                    except UserExistsError:  # created meanwhile by someone else
                        users[key] = passcodes.user_by_email(entry.email, site).id
                    else:
                        users[key] = issued.id
                        result.tokens[issued.email] = issued.api_token
                        user_state = "created"
        row = ImportedRow(entry.line, entry.email, user_state, "none")
        result.rows.append(row)
        if entry.tag is None:
            continue
        owner = identity.card_owner(entry.tag, site)
        if owner is not None:
            mine = owner == users[key]
            row.badge = "already enrolled to this user" if mine else "enrolled to another user"
            row.ok = mine
        elif dry_run:
            row.badge = "would be added"
        else:
            try:
                identity.add_card(users[key], entry.tag, entry.label, site)
            except CredentialExistsError:
                row.badge, row.ok = "enrolled to another user", False
            else:
                row.badge = "added"
    return result
