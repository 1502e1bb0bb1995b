"""Plain-text tables for the command line: a header row, aligned columns, no dependencies."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, rule: bool = True
) -> str:
    """Columns padded to their widest cell; `None` shows as '-'. No rows gives '(none)'.

    `rule` draws dashes under the header (the printer commands' tables have none).
    """
    if not rows:
        return "(none)"
    cells = [[str(h) for h in headers]] + [
        ["-" if value is None else str(value) for value in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    if rule:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
