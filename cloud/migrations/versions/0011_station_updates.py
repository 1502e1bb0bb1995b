"""Station updates: published bundles, per-site update policies, stations' update status.

Revision ID: 0011
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add `update_bundles`, `update_policies` and `station_update_status`."""
    op.create_table(
        "update_bundles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("min_version", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("blob_key", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_update_bundles")),
        sa.UniqueConstraint("site", "version", name=op.f("uq_update_bundles_site_version")),
    )
    op.create_table(
        "update_policies",
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("target_version", sa.String(length=64), nullable=True),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_update_policies")),
    )
    op.create_table(
        "station_update_status",
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("current_version", sa.String(length=64), nullable=True),
        sa.Column("available_version", sa.String(length=64), nullable=True),
        sa.Column("step", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("reported_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_station_update_status_station_id_stations"),
        ),
        sa.PrimaryKeyConstraint("station_id", name=op.f("pk_station_update_status")),
    )
    op.create_index(
        op.f("ix_station_update_status_site"), "station_update_status", ["site"], unique=False
    )


def downgrade() -> None:
    """Drop the update tables."""
    op.drop_index(op.f("ix_station_update_status_site"), table_name="station_update_status")
    op.drop_table("station_update_status")
    op.drop_table("update_policies")
    op.drop_table("update_bundles")
