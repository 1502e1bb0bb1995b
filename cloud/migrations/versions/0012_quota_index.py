"""A covering, partial index for the per-user quota sum.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26

A submission sums what the user's jobs hold in the store (`cloud.uploads.held_bytes`: jobs whose
content is not destroyed yet) twice: before it accepts the body and again in the transaction that
records the job. The (owner, state, expiry) index found every job the user ever had that is still
in the table, printed and deleted ones included, and read each row. This index holds only jobs
whose content is still stored, and every column the sum needs (the wrapped key too, which SQLite
needs to see in the index to answer from it alone: it holds no more than the row beside it, and
leaves the index with it when the content is destroyed).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("wrapped_key IS NOT NULL")


def upgrade() -> None:
    """Add the index."""
    op.create_index(
        "ix_jobs_held_content",
        "jobs",
        ["owner_id", "site", "content_bytes", "wrapped_key"],
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_jobs_held_content", table_name="jobs")
