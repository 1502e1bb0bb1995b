"""The IPP endpoint: app passcodes, integer IPP job-ids, and job template values on jobs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

`app_passcodes` holds HMAC(pepper, passcode) for HTTP Basic on `/ipp/print`; `ipp_sequences` is
the per-site job-id counter and `ipp_jobs` maps each integer job-id (RFC 8011 §5.3.2) to its
owner and, once the document is in, to the parked job. `jobs` gains `sides` and `color_mode`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the three tables and the two job columns."""
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("sides", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("color_mode", sa.String(length=32), nullable=True))
    op.create_table(
        "app_passcodes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_app_passcodes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_passcodes")),
    )
    op.create_index(op.f("ix_app_passcodes_user_id"), "app_passcodes", ["user_id"])
    op.create_table(
        "ipp_sequences",
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("last_job_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_ipp_sequences")),
    )
    op.create_table(
        "ipp_jobs",
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("job_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("cloud_job_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("document_format", sa.String(length=127), nullable=True),
        sa.Column("copies", sa.Integer(), nullable=False),
        sa.Column("sides", sa.String(length=32), nullable=True),
        sa.Column("color_mode", sa.String(length=32), nullable=True),
        sa.Column("media", sa.String(length=64), nullable=True),
        sa.Column("hold_until", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["cloud_job_id"], ["jobs.id"], name=op.f("fk_ipp_jobs_cloud_job_id_jobs")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_ipp_jobs_owner_id_users")
        ),
        sa.PrimaryKeyConstraint("site", "job_id", name=op.f("pk_ipp_jobs")),
        sa.UniqueConstraint("cloud_job_id", name=op.f("uq_ipp_jobs_cloud_job_id")),
    )
    op.create_index(op.f("ix_ipp_jobs_owner_id_job_id"), "ipp_jobs", ["owner_id", "job_id"])


def downgrade() -> None:
    """Back to 0002 (IPP job history and passcodes are dropped)."""
    op.drop_index(op.f("ix_ipp_jobs_owner_id_job_id"), table_name="ipp_jobs")
    op.drop_table("ipp_jobs")
    op.drop_table("ipp_sequences")
    op.drop_index(op.f("ix_app_passcodes_user_id"), table_name="app_passcodes")
    op.drop_table("app_passcodes")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("color_mode")
        batch.drop_column("sides")
