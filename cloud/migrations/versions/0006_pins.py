"""PINs: Argon2id verifiers over keyed tags, failure counters per account and per station.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26

`sites.min_pin_digits` is the site's PIN policy (6 unless a site allows 4..12).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the PIN policy column and the `pins` and `pin_station_failures` tables."""
    with op.batch_alter_table("sites") as batch:
        batch.add_column(
            sa.Column("min_pin_digits", sa.Integer(), server_default="6", nullable=False)
        )
    op.create_table(
        "pins",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("verifier", sa.String(length=255), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("blocked_until", UTCDateTime(), nullable=True),
        sa.Column("locked_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_pins_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_pins")),
    )
    op.create_table(
        "pin_station_failures",
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("blocked_until", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_pin_station_failures_station_id_stations"),
        ),
        sa.PrimaryKeyConstraint("station_id", name=op.f("pk_pin_station_failures")),
    )


def downgrade() -> None:
    """Drop the PIN tables and the policy column."""
    op.drop_table("pin_station_failures")
    op.drop_table("pins")
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("min_pin_digits")
