"""Identity at the station: site policies, release passcodes, self-enrolment codes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26

`site_identity_policies` holds a site's card + PIN and self-enrolment switches and its release
passcode policy (no row: the defaults); `release_passcodes` the keyed hashes of passcodes typed
at a station; `passcode_station_failures` the back-off counters for wrong passcodes;
`enrolment_codes` the one-time codes shown for unknown badges.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the four identity tables."""
    op.create_table(
        "site_identity_policies",
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("card_pin", sa.Boolean(), nullable=False),
        sa.Column("self_enrolment", sa.Boolean(), nullable=False),
        sa.Column("passcode_mode", sa.String(length=16), nullable=False),
        sa.Column("passcode_ttl_s", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_site_identity_policies")),
    )
    op.create_table(
        "release_passcodes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("lookup", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("single_use", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_release_passcodes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release_passcodes")),
        sa.UniqueConstraint("lookup", name=op.f("uq_release_passcodes_lookup")),
    )
    op.create_index(
        op.f("ix_release_passcodes_user_id"), "release_passcodes", ["user_id"], unique=False
    )
    op.create_table(
        "passcode_station_failures",
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("blocked_until", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_passcode_station_failures_station_id_stations"),
        ),
        sa.PrimaryKeyConstraint("station_id", name=op.f("pk_passcode_station_failures")),
    )
    op.create_table(
        "enrolment_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("card_lookup", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("redeemed_at", UTCDateTime(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_enrolment_codes_station_id_stations")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_enrolment_codes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolment_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_enrolment_codes_code_hash")),
    )
    for column in ("site", "station_id", "created_at"):
        op.create_index(
            op.f(f"ix_enrolment_codes_{column}"), "enrolment_codes", [column], unique=False
        )


def downgrade() -> None:
    """Drop the identity tables."""
    op.drop_table("enrolment_codes")
    op.drop_table("passcode_station_failures")
    op.drop_table("release_passcodes")
    op.drop_table("site_identity_policies")
