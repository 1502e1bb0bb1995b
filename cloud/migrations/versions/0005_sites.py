"""Sites: the tenants, with per-site admin tokens.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Rows already carry a `site` name (since 0001); this adds the table naming the sites. The
default site (the config's) is created by the service at start, not here, because the migration
does not know the config.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the `sites` table."""
    op.create_table(
        "sites",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("admin_token_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("name", name=op.f("uq_sites_name")),
    )


def downgrade() -> None:
    """Drop the `sites` table."""
    op.drop_table("sites")
