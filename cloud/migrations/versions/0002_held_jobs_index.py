"""Index a user's held jobs by (owner, state, expiry).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

The station's job list asks for one owner's held, unexpired jobs. With only (owner_id, state)
indexed, SQLite without statistics prefers the (state, expires_at) index and walks every held job
of the site: about 25 ms per badge tap at 100k held jobs. With the expiry in the owner index the
lookup is a narrow range again.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Replace the owner index with one that also covers the expiry."""
    op.drop_index(op.f("ix_jobs_owner_id_state"), table_name="jobs")
    op.create_index(
        op.f("ix_jobs_owner_id_state_expires_at"), "jobs", ["owner_id", "state", "expires_at"]
    )


def downgrade() -> None:
    """Back to the 0001 index."""
    op.drop_index(op.f("ix_jobs_owner_id_state_expires_at"), table_name="jobs")
    op.create_index(op.f("ix_jobs_owner_id_state"), "jobs", ["owner_id", "state"])
