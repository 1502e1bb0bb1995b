"""The printer registry, station assignments and heartbeats, device data, discovered devices.

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-26

Stations paired before this revision keep working from the printer URI in their config; an admin
registers their printer and assigns them (`pullprint admin printer add|assign`) to manage them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the registry and device-data tables."""
    op.create_table(
        "printers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("uri", sa.String(length=2048), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=True),
        sa.Column("ipp_uri", sa.String(length=2048), nullable=True),
        sa.Column("raw_uri", sa.String(length=2048), nullable=True),
        sa.Column("pin", sa.String(length=64), nullable=True),
        sa.Column("raw_pjl", sa.Boolean(), nullable=False),
        sa.Column("snmp_community", sa.String(length=255), nullable=True),
        sa.Column("location", sa.String(length=200), nullable=False),
        sa.Column("capabilities", sa.Text(), nullable=False),
        sa.Column("config_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_printers")),
        sa.UniqueConstraint("site", "name", name=op.f("uq_printers_site_name")),
    )
    op.create_table(
        "station_assignments",
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("printer_id", sa.Uuid(), nullable=False),
        sa.Column("assigned_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["printer_id"], ["printers.id"], name=op.f("fk_station_assignments_printer_id_printers")
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_station_assignments_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("station_id", name=op.f("pk_station_assignments")),
    )
    op.create_index(
        op.f("ix_station_assignments_printer_id"), "station_assignments", ["printer_id"]
    )
    op.create_table(
        "station_health",
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("config_etag", sa.String(length=64), nullable=True),
        sa.Column("health", sa.Text(), nullable=False),
        sa.Column("heartbeats", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_station_health_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("station_id", name=op.f("pk_station_health")),
    )
    op.create_table(
        "printer_readings",
        sa.Column("printer_id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=True),
        sa.Column("read_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["printer_id"], ["printers.id"], name=op.f("fk_printer_readings_printer_id_printers")
        ),
        sa.PrimaryKeyConstraint("printer_id", name=op.f("pk_printer_readings")),
    )
    op.create_table(
        "printer_meters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("printer_id", sa.Uuid(), nullable=False),
        sa.Column("read_at", UTCDateTime(), nullable=False),
        sa.Column("page_count", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["printer_id"], ["printers.id"], name=op.f("fk_printer_meters_printer_id_printers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_printer_meters")),
    )
    op.create_index(
        op.f("ix_printer_meters_printer_id_read_at"), "printer_meters", ["printer_id", "read_at"]
    )
    op.create_table(
        "printer_alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("printer_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=32), nullable=False),
        sa.Column("words", sa.String(length=255), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("cleared_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["printer_id"], ["printers.id"], name=op.f("fk_printer_alerts_printer_id_printers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_printer_alerts")),
    )
    op.create_index(
        op.f("ix_printer_alerts_printer_id_key_cleared_at"),
        "printer_alerts",
        ["printer_id", "key", "cleared_at"],
    )
    op.create_table(
        "discovered_devices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("identity", sa.String(length=255), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("reported_by", sa.Uuid(), nullable=True),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("printer_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["printer_id"], ["printers.id"], name=op.f("fk_discovered_devices_printer_id_printers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discovered_devices")),
        sa.UniqueConstraint("site", "identity", name=op.f("uq_discovered_devices_site_identity")),
    )


def downgrade() -> None:
    """Drop the registry and device-data tables."""
    op.drop_table("discovered_devices")
    op.drop_index(op.f("ix_printer_alerts_printer_id_key_cleared_at"), table_name="printer_alerts")
    op.drop_table("printer_alerts")
    op.drop_index(op.f("ix_printer_meters_printer_id_read_at"), table_name="printer_meters")
    op.drop_table("printer_meters")
    op.drop_table("printer_readings")
    op.drop_table("station_health")
    op.drop_index(op.f("ix_station_assignments_printer_id"), table_name="station_assignments")
    op.drop_table("station_assignments")
    op.drop_table("printers")
