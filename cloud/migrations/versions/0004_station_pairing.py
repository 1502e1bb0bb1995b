"""Station pairing: stations known by an Ed25519 public key; pairing requests; signature nonces.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10

The per-station bearer secret (`stations.secret_hash`) is replaced by `stations.public_key`.
Stations created before this revision have no key and cannot sign, so they are revoked here and
must be paired again. `pairing_requests` holds RFC 8628-style device grants (codes as keyed
hashes, the grant only sealed to the station); `station_nonces` holds the RFC 9421 signature
nonces still inside the clock window, keyed so a replay fails the INSERT on any replica.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Swap the station secret for a public key; add the pairing and nonce tables."""
    _revoke_all_stations()
    with op.batch_alter_table("stations") as batch:
        batch.add_column(sa.Column("public_key", sa.LargeBinary(length=32), nullable=True))
        batch.create_unique_constraint(op.f("uq_stations_public_key"), ["public_key"])
        batch.drop_column("secret_hash")
    op.create_table(
        "station_nonces",
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_station_nonces_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("station_id", "nonce", name=op.f("pk_station_nonces")),
    )
    op.create_index(op.f("ix_station_nonces_created_at"), "station_nonces", ["created_at"])
    op.create_table(
        "pairing_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("user_code_hash", sa.String(length=64), nullable=False),
        sa.Column("device_code_hash", sa.String(length=64), nullable=False),
        sa.Column("signing_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("exchange_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("source_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("station_id", sa.Uuid(), nullable=True),
        sa.Column("sealed_grant", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_pairing_requests_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pairing_requests")),
        sa.UniqueConstraint("device_code_hash", name=op.f("uq_pairing_requests_device_code_hash")),
        sa.UniqueConstraint("user_code_hash", name=op.f("uq_pairing_requests_user_code_hash")),
    )
    op.create_index(op.f("ix_pairing_requests_created_at"), "pairing_requests", ["created_at"])
    op.create_index(op.f("ix_pairing_requests_source_hash"), "pairing_requests", ["source_hash"])


def downgrade() -> None:
    """Back to 0003. Paired stations keep their rows but lose their keys, so they are revoked."""
    op.drop_index(op.f("ix_pairing_requests_source_hash"), table_name="pairing_requests")
    op.drop_index(op.f("ix_pairing_requests_created_at"), table_name="pairing_requests")
    op.drop_table("pairing_requests")
    op.drop_index(op.f("ix_station_nonces_created_at"), table_name="station_nonces")
    op.drop_table("station_nonces")
    with op.batch_alter_table("stations") as batch:
        # An unmatchable placeholder: no token hashes to 64 "x" characters.
        batch.add_column(
            sa.Column("secret_hash", sa.String(length=64), nullable=False, server_default="x" * 64)
        )
        batch.drop_constraint(op.f("uq_stations_public_key"), type_="unique")
        batch.drop_column("public_key")
    _revoke_all_stations()


def _revoke_all_stations() -> None:
    # Through the column type, so the timestamp is stored as the ORM stores it on every engine.
    stations = sa.table("stations", sa.column("revoked_at", UTCDateTime()))
    op.execute(
        stations.update()
        .where(stations.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
