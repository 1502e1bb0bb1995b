"""Initial schema: users, credentials, stations, jobs, sessions, releases, audit events.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Written out in full (not imported from cloud.db) so that this revision keeps describing the
schema as it was, whatever the ORM becomes later.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _site() -> sa.Column[str]:
    return sa.Column("site", sa.String(length=63), nullable=False)


def _utc(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    # cloud.db.UTCDateTime stores into this type.
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create every table of the first slice."""
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        _site(),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        _utc("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("site", "email", name=op.f("uq_users_site_email")),
    )
    op.create_table(
        "credentials",
        sa.Column("id", sa.Uuid(), nullable=False),
        _site(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("lookup", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        _utc("created_at"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_credentials_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("lookup", name=op.f("uq_credentials_lookup")),
    )
    op.create_index(op.f("ix_credentials_user_id"), "credentials", ["user_id"])
    op.create_table(
        "stations",
        sa.Column("id", sa.Uuid(), nullable=False),
        _site(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("printer_uri", sa.String(length=2048), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        _utc("created_at"),
        _utc("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        _site(),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("document_format", sa.String(length=127), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("content_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("copies", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("blob_key", sa.String(length=128), nullable=True),
        _utc("submitted_at"),
        _utc("expires_at"),
        _utc("printed_at", nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_jobs_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_owner_id_state"), "jobs", ["owner_id", "state"])
    op.create_index(op.f("ix_jobs_state_expires_at"), "jobs", ["state", "expires_at"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        _site(),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("credential_id", sa.Uuid(), nullable=True),
        _utc("opened_at"),
        _utc("expires_at"),
        _utc("ended_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_sessions_credential_id_credentials"),
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_sessions_station_id_stations")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    op.create_index(op.f("ix_sessions_station_id"), "sessions", ["station_id"])
    op.create_table(
        "releases",
        sa.Column("id", sa.Uuid(), nullable=False),
        _site(),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        _utc("requested_at"),
        _utc("lease_expires_at"),
        _utc("finished_at", nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("printer_job_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_releases_job_id_jobs")),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_releases_session_id_sessions")
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_releases_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_releases")),
    )
    op.create_index(op.f("ix_releases_job_id"), "releases", ["job_id"])
    op.create_index(
        op.f("ix_releases_state_lease_expires_at"), "releases", ["state", "lease_expires_at"]
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _site(),
        sa.Column("kind", sa.String(length=64), nullable=False),
        _utc("at"),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("station_id", sa.Uuid(), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("release_id", sa.Uuid(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_job_id"), "audit_events", ["job_id"])
    op.create_index(op.f("ix_audit_events_kind"), "audit_events", ["kind"])


def downgrade() -> None:
    """Drop every table (children first)."""
    for table in (
        "audit_events",
        "releases",
        "sessions",
        "jobs",
        "stations",
        "credentials",
        "users",
    ):
        op.drop_table(table)
