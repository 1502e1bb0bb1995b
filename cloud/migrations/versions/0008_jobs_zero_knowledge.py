"""Jobs and releases: site policies, zero-knowledge key wrap, idempotency keys, delegation.

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-26

* `site_policies`: per-site job policies (zero-knowledge with the site public key, job-name
  privacy, expiry, per-user quota, keeping printed jobs for reprint, release-all-on-tap);
* `jobs.key_wrap` says how the data key is wrapped ("master" or "hpke"); `jobs.sha256` becomes
  nullable (zero-knowledge jobs have none);
* `releases.printer_uri`, `releases.reprint`, `releases.released_by`;
* `job_idempotency_keys` and `delegations`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the policy, idempotency and delegation tables and the new job/release columns."""
    op.create_table(
        "site_policies",
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("zero_knowledge", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=True),
        sa.Column("job_names", sa.String(length=8), server_default="keep", nullable=False),
        sa.Column("job_expiry_h", sa.Integer(), nullable=True),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=True),
        sa.Column("keep_printed", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("release_all_on_tap", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_site_policies")),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("key_wrap", sa.String(length=16), server_default="master", nullable=False)
        )
        batch.alter_column("sha256", existing_type=sa.String(length=64), nullable=True)
    with op.batch_alter_table("releases") as batch:
        batch.add_column(sa.Column("printer_uri", sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column("reprint", sa.Boolean(), server_default="0", nullable=False))
        batch.add_column(sa.Column("released_by", sa.Uuid(), nullable=True))
    op.create_table(
        "job_idempotency_keys",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_job_idempotency_keys_owner_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_idempotency_keys_job_id_jobs")
        ),
        sa.PrimaryKeyConstraint("owner_id", "key", name=op.f("pk_job_idempotency_keys")),
    )
    op.create_index(
        op.f("ix_job_idempotency_keys_created_at"), "job_idempotency_keys", ["created_at"]
    )
    op.create_table(
        "delegations",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("delegate_id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_delegations_owner_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["delegate_id"], ["users.id"], name=op.f("fk_delegations_delegate_id_users")
        ),
        sa.PrimaryKeyConstraint("owner_id", "delegate_id", name=op.f("pk_delegations")),
    )
    op.create_index(op.f("ix_delegations_delegate_id"), "delegations", ["delegate_id"])


def downgrade() -> None:
    """Drop what `upgrade` added (zero-knowledge jobs keep a NULL digest, so it stays nullable)."""
    op.drop_index(op.f("ix_delegations_delegate_id"), table_name="delegations")
    op.drop_table("delegations")
    op.drop_index(op.f("ix_job_idempotency_keys_created_at"), table_name="job_idempotency_keys")
    op.drop_table("job_idempotency_keys")
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("released_by")
        batch.drop_column("reprint")
        batch.drop_column("printer_uri")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("key_wrap")
    op.drop_table("site_policies")
