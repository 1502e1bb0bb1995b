"""IPP INFRA (PWG 5100.18): output devices, their fetchable jobs, events and subscriptions.

Revision ID: 0010
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the four INFRA tables."""
    op.create_table(
        "infra_devices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("output_device_uuid", sa.String(length=64), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("attributes", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=True),
        sa.Column("deregistered_at", UTCDateTime(), nullable=True),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_infra_devices_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_infra_devices")),
        sa.UniqueConstraint(
            "site", "output_device_uuid", name=op.f("uq_infra_devices_site_output_device_uuid")
        ),
        sa.UniqueConstraint("station_id", name=op.f("uq_infra_devices_station_id")),
    )
    op.create_table(
        "infra_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("release_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("document_state", sa.String(length=16), nullable=True),
        sa.Column("output_device_job_id", sa.Integer(), nullable=True),
        sa.Column("impressions", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["infra_devices.id"], name=op.f("fk_infra_jobs_device_id_infra_devices")
        ),
        sa.ForeignKeyConstraint(
            ["release_id"], ["releases.id"], name=op.f("fk_infra_jobs_release_id_releases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_infra_jobs")),
        sa.UniqueConstraint("release_id", name=op.f("uq_infra_jobs_release_id")),
    )
    op.create_index(op.f("ix_infra_jobs_device_id"), "infra_jobs", ["device_id"], unique=False)
    op.create_table(
        "infra_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["infra_devices.id"],
            name=op.f("fk_infra_events_device_id_infra_devices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_infra_events")),
    )
    op.create_index(op.f("ix_infra_events_device_id"), "infra_events", ["device_id"], unique=False)
    op.create_table(
        "infra_subscriptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("events", sa.String(length=500), nullable=False),
        sa.Column("user_data", sa.LargeBinary(length=63), nullable=True),
        sa.Column("subscriber", sa.String(length=255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["infra_devices.id"],
            name=op.f("fk_infra_subscriptions_device_id_infra_devices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_infra_subscriptions")),
    )
    op.create_index(
        op.f("ix_infra_subscriptions_device_id"), "infra_subscriptions", ["device_id"], unique=False
    )


def downgrade() -> None:
    """Drop the INFRA tables."""
    op.drop_index(op.f("ix_infra_subscriptions_device_id"), table_name="infra_subscriptions")
    op.drop_table("infra_subscriptions")
    op.drop_index(op.f("ix_infra_events_device_id"), table_name="infra_events")
    op.drop_table("infra_events")
    op.drop_index(op.f("ix_infra_jobs_device_id"), table_name="infra_jobs")
    op.drop_table("infra_jobs")
    op.drop_table("infra_devices")
