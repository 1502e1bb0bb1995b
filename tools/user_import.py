"""`pullprint admin user import FILE.csv`: users and their badges from a spreadsheet.

    email,name,badge,format,label
    ada@example.org,Ada Lovelace,90:324,h10301/fn,blue badge
    ada@example.org,,0x2D00A2,corp1000/hex,fob
    bob@example.org,Bob,04A1B2C3D4E5F6,mifare/hex,

A row names a user (created unless the email exists in the site) and optionally one badge in one
of the forms badge numbers are printed in. `format` (or `--format` for rows without one) is
`TECHNOLOGY/ENCODING[/OPTION...]`:

* TECHNOLOGY: `h10301` (HID 26-bit), `corp1000` (HID Corporate 1000, 35-bit), `mifare`,
  `iclass`;
* ENCODING: `fn` (facility:number, Wiegand only; `:`, `-`, `/` or a blank between the two),
  `decimal` or `hex` (the whole frame with its parity bits, or a UID);
* OPTION: `stripped` (the number lacks the Wiegand parity bits), `reversed` (a UID printed
  back to front).

The conversion is the one the station's readers use (`hardware.readers.text`), and the tag is
computed here, with the site key, by the very function the station uses
(`station.credentials.credential_tag`): the cloud receives only tags, never a badge number,
and an imported badge opens the same session as a tap at any station.

Every row is checked before anything is written; one bad row stops the import with every
row's error listed (by line number, never echoing the number). `--dry-run` checks and reports
without writing. Applying is idempotent: a user who exists is reused and a badge already
enrolled to that user is reported as such, so an interrupted import can simply be run again.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from cloud.user_import import ImportEntry
from hardware.readers.base import Credential
from hardware.readers.errors import CardFormatError
from hardware.readers.text import ReaderFormat, parse_reader_text
from station.credentials import credential_tag

if TYPE_CHECKING:
    from cloud.service import CloudService

COLUMNS = ("email", "name", "badge", "format", "label")
TECHNOLOGIES = ("h10301", "corp1000", "mifare", "iclass")
ENCODINGS = {"fn": "facility:number", "decimal": "decimal", "hex": "hex"}
OPTIONS = ("stripped", "reversed")
MAX_ROWS = 100_000
BATCH_ROWS = 500  # per API call (the cloud takes up to 1000)
_FN_SEPARATORS = "-/ "


class ImportFileError(ValueError):
    """The file as a whole cannot be read (no header, unknown columns, too many rows)."""


class ImportApiError(RuntimeError):
    """The cloud refused a batch of the import, or could not be reached."""


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One checked row: the user and, if the row has a badge, its tag (never the number)."""

    line: int
    email: str
    name: str
    label: str
    tag: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class RowError:
    """Why a row cannot be imported (never quoting the badge number)."""

    line: int
    message: str


@dataclass(slots=True)
class RowResult:
    """What importing one row did."""

    line: int
    email: str
    user: str  # "created", "exists", or "would be created" / "exists" on a dry run
    badge: str  # "added", "already enrolled to this user", "none", or an error
    ok: bool = True


@dataclass(slots=True)
class ImportReport:
    """The outcome of an import, row by row."""

    dry_run: bool
    errors: list[RowError] = field(default_factory=list)
    rows: list[RowResult] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict, repr=False)  # email -> API token

    @property
    def ok(self) -> bool:
        """True when no row failed."""
        return not self.errors and all(row.ok for row in self.rows)


def badge_format(spec: str) -> ReaderFormat:
    """The reader format a `format` cell names, e.g. "h10301/fn" or "mifare/hex/reversed".

    Raises:
        ValueError: an unknown technology, encoding or option, or a combination that makes no
            sense (facility:number of a UID, a reversed Wiegand number).
    """
    parts = [part.strip().lower() for part in spec.strip().split("/")]
    if len(parts) < 2 or parts[0] not in TECHNOLOGIES or parts[1] not in ENCODINGS:
        raise ValueError(
            f"format is TECHNOLOGY/ENCODING[/OPTION] with TECHNOLOGY one of "
            f"{', '.join(TECHNOLOGIES)} and ENCODING one of {', '.join(ENCODINGS)}"
        )
    options = parts[2:]
    for option in options:
        if option not in OPTIONS:
            raise ValueError(f"a format option is one of {', '.join(OPTIONS)}")
    encoding = ENCODINGS[parts[1]]
    return ReaderFormat(
        technology=parts[0],
        encoding=encoding,  # type: ignore[arg-type]  # checked against ENCODINGS above
        parity="stripped" if "stripped" in options else "included",
        reversed_bytes="reversed" in options,
    )


def badge_credential(number: str, fmt: ReaderFormat) -> Credential:
    """The canonical credential of a printed badge number.

    Raises:
        CardFormatError: the number is not a badge in this format (the message never quotes it).
    """
    text = number.strip()
    if fmt.encoding == "facility:number" and ":" not in text:
        # Printed forms vary: "90-324", "90/324", "90 324" all mean facility 90, card 324.
        for sep in _FN_SEPARATORS:
            head, found, tail = text.partition(sep)
            if found and head.strip() and tail.strip():
                text = f"{head.strip()}:{tail.strip()}"
                break
    return parse_reader_text(text, fmt)


def read_rows(
    lines: Iterable[str], site_key: bytes, default_format: str | None = None
) -> tuple[list[ImportRow], list[RowError]]:
    """Check every row of a CSV file; returns the good rows and every row's error.

    Raises:
        ImportFileError: no header, no `email` column, unknown columns, or too many rows.
    """
    reader = csv.DictReader(lines)
    header = [name.strip().lower() for name in reader.fieldnames or ()]
    if "email" not in header:
        raise ImportFileError("the first line must be a header naming at least `email`")
    unknown = sorted(set(header) - set(COLUMNS))
    if unknown:
        raise ImportFileError(
            f"unknown column(s) {', '.join(unknown)}; the columns are {', '.join(COLUMNS)}"
        )
    reader.fieldnames = header
    default = None
    if default_format:
        default = badge_format(default_format)  # a bad --format is the caller's ValueError
    rows: list[ImportRow] = []
    errors: list[RowError] = []
    for record in reader:
        line = reader.line_num
        if len(rows) + len(errors) >= MAX_ROWS:
            raise ImportFileError(f"more than {MAX_ROWS} rows: split the file")
        cells = {k: (v or "").strip() for k, v in record.items() if k is not None}
        if None in record:
            errors.append(RowError(line, "more cells than the header has columns"))
            continue
        email = cells.get("email", "")
        if email.count("@") != 1 or email.startswith("@") or email.endswith("@") or " " in email:
            errors.append(RowError(line, "email is missing or not an address"))
            continue
        tag = None
        number = cells.get("badge", "")
        if number:
            try:
                fmt = badge_format(cells["format"]) if cells.get("format") else default
            except ValueError as exc:
                errors.append(RowError(line, str(exc)))
                continue
            if fmt is None:
                errors.append(RowError(line, "the badge has no format (column or --format)"))
                continue
            try:
                tag = credential_tag(site_key, badge_credential(number, fmt))
            except CardFormatError as exc:
                errors.append(RowError(line, f"badge: {exc}"))
                continue
        elif cells.get("format"):
            errors.append(RowError(line, "a format but no badge"))
            continue
        rows.append(
            ImportRow(line, email, cells.get("name", "") or email, cells.get("label", ""), tag)
        )
    seen: dict[str, int] = {}
    for row in rows:  # one badge, two rows: the second would fail half-way through
        if row.tag is not None:
            if row.tag in seen:
                errors.append(RowError(row.line, f"the same badge as line {seen[row.tag]}"))
            seen.setdefault(row.tag, row.line)
    errors.sort(key=lambda error: error.line)
    return rows, errors


def import_users(
    service: CloudService,
    lines: Iterable[str],
    site_key: bytes,
    *,
    site: str | None = None,
    default_format: str | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Check every row, then (unless `dry_run` or a row is bad) create users and enrol badges
    through the cloud service in this process (on the cloud host).

    Raises:
        ImportFileError: see `read_rows`.
        ValueError: `default_format` is not a format.
    """
    from cloud.user_import import import_entries  # noqa: PLC0415 - the cloud stack, when used

    rows, errors = read_rows(lines, site_key, default_format)
    report = ImportReport(dry_run=dry_run, errors=errors)
    if errors:
        return report
    result = import_entries(
        service.identity,
        service.passcodes,
        [_entry(row) for row in rows],
        site or service.config.site,
        dry_run=dry_run,
    )
    report.rows = [RowResult(r.line, r.email, r.user, r.badge, r.ok) for r in result.rows]
    report.tokens = dict(result.tokens)
    return report


def import_users_over_api(
    cloud_url: str,
    admin_token: str,
    lines: Iterable[str],
    site_key: bytes,
    *,
    default_format: str | None = None,
    dry_run: bool = False,
    session: requests.Session | None = None,
) -> ImportReport:
    """As `import_users`, through the admin API from any machine: only tags go over the wire,
    in batches of `BATCH_ROWS` (each batch applied idempotently, so a failed run is re-run).

    Raises:
        ImportFileError: see `read_rows`.
        ValueError: `default_format` is not a format.
        ImportApiError: the cloud refused a batch or could not be reached.
    """
    rows, errors = read_rows(lines, site_key, default_format)
    report = ImportReport(dry_run=dry_run, errors=errors)
    if errors:
        return report
    http = session or requests.Session()
    try:
        for start in range(0, len(rows), BATCH_ROWS):
            batch = rows[start : start + BATCH_ROWS]
            body = {
                "dry_run": dry_run,
                "rows": [
                    {
                        "line": r.line,
                        "email": r.email,
                        "name": r.name,
                        "label": r.label,
                        "tag": r.tag,
                    }
                    for r in batch
                ],
            }
            try:
                response = http.post(
                    cloud_url.rstrip("/") + "/api/v1/admin/users/import",
                    json=body,
                    headers={"Authorization": f"Bearer {admin_token}"},
                    timeout=(10, 120),
                )
            except requests.RequestException as exc:
                raise ImportApiError(f"cannot reach the cloud ({type(exc).__name__})") from exc
            if response.status_code != 200:
                raise ImportApiError(_problem(response))
            answer = response.json()
            report.rows.extend(
                RowResult(r["line"], r["email"], r["user"], r["badge"], r["ok"])
                for r in answer["rows"]
            )
            report.tokens.update(answer.get("tokens", {}))
    finally:
        if session is None:
            http.close()
    return report


def _entry(row: ImportRow) -> ImportEntry:
    return ImportEntry(row.line, row.email, row.name, row.label, row.tag)


def _problem(response: requests.Response) -> str:
    try:
        body = response.json()
        detail = f"{body.get('code')}: {body.get('detail')}"
    except ValueError:
        detail = response.reason
    return f"the cloud refused the import (HTTP {response.status_code} {detail})"


def write_tokens(path: Path, tokens: dict[str, str]) -> None:
    """Write the new users' API tokens (email,api_token) to a file only its owner may read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "api_token"])
        writer.writerows(tokens.items())


def render(report: ImportReport, *, as_json: bool) -> str:
    """The report as a table (or JSON) for the terminal; never a badge number or token."""
    if as_json:
        return json.dumps(
            {
                "dry_run": report.dry_run,
                "ok": report.ok,
                "errors": [asdict(e) for e in report.errors],
                "rows": [asdict(r) for r in report.rows],
            },
            indent=2,
        )
    out = io.StringIO()
    for error in report.errors:
        out.write(f"line {error.line}: {error.message}\n")
    if report.errors:
        out.write(f"{len(report.errors)} row(s) with errors: nothing was imported\n")
        return out.getvalue()
    width = max([len(r.email) for r in report.rows] + [5])
    out.write(f"{'line':>5}  {'email':<{width}}  {'user':<16}  badge\n")
    for row in report.rows:
        out.write(f"{row.line:>5}  {row.email:<{width}}  {row.user:<16}  {row.badge}\n")
    failed = sum(1 for row in report.rows if not row.ok)
    verb = "checked (dry run, nothing written)" if report.dry_run else "imported"
    out.write(f"{len(report.rows)} row(s) {verb}; {failed} failed\n")
    return out.getvalue()
