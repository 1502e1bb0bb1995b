"""The schema: migrations reproduce the ORM exactly; SQLite runs in WAL with foreign keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Engine, Integer, MetaData, Select, Table, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.db import Base, Credential, User, make_engine
from cloud.migrate import downgrade, upgrade
from tests.support import profile


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """An empty database: a SQLite file, or a new PostgreSQL database (postgres profile)."""
    if profile.is_postgres():
        return profile.empty_database(tmp_path)
    return f"sqlite:///{tmp_path / 'test.db'}"


sqlite_only = pytest.mark.skipif(profile.is_postgres(), reason="SQLite's own settings")


def diff(url: str, metadata: MetaData) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_migration_produces_exactly_the_orm_metadata(db_url: str) -> None:
    upgrade(db_url)
    assert diff(db_url, Base.metadata) == []


def test_the_comparison_would_notice_a_difference(db_url: str) -> None:
    upgrade(db_url)
    extra = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(extra)
    Table("not_migrated", extra, Column("id", Integer, primary_key=True))
    assert diff(db_url, extra) != []


def test_upgrade_is_idempotent_and_creates_every_table(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    expected = {
        "users",
        "credentials",
        "stations",
        "jobs",
        "sessions",
        "releases",
        "audit_events",
        "app_passcodes",
        "ipp_sequences",
        "ipp_jobs",
        "station_nonces",
        "pairing_requests",
        "pins",
        "pin_station_failures",
        # --- ipp-infra ---
        "infra_devices",
        "infra_jobs",
        "infra_events",
        "infra_subscriptions",
        "site_policies",
        "job_idempotency_keys",
        "delegations",
        # devices (0009)
        "printers",
        "station_assignments",
        "station_health",
        "printer_readings",
        "printer_meters",
        "printer_alerts",
        "discovered_devices",
        "update_bundles",
        "update_policies",
        "station_update_status",
        "site_identity_policies",
        "release_passcodes",
        "passcode_station_failures",
        "enrolment_codes",
    }
    assert expected | {"alembic_version", "sites"} == tables
    for name in expected:  # every row belongs to a site (the `sites` table names them)
        assert "site" in Base.metadata.tables[name].c


@sqlite_only
def test_sqlite_runs_in_wal_with_foreign_keys(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with Session(engine) as db, pytest.raises(IntegrityError), db.begin():
            db.add(
                Credential(
                    id=uuid.uuid4(),
                    site="default",
                    user_id=uuid.uuid4(),  # no such user
                    kind="card",
                    lookup="0" * 64,
                    label="",
                    created_at=datetime.now(UTC),
                )
            )
    finally:
        engine.dispose()


def test_datetimes_come_back_aware_utc(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    moment = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    try:
        with Session(engine) as db, db.begin():
            db.add(
                User(
                    id=uuid.uuid4(),
                    site="default",
                    email="a@b.c",
                    display_name="A",
                    token_hash="0" * 64,
                    created_at=moment,
                )
            )
        with Session(engine) as db:
            stored = db.scalar(select(User.created_at))
            assert stored == moment
            assert stored is not None
            assert stored.tzinfo == UTC
            # Comparisons happen in UTC in SQL too.
            assert db.scalar(select(User.id).where(User.created_at < moment + timedelta(seconds=1)))
        with Session(engine) as db, pytest.raises(Exception, match="naive"), db.begin():
            db.add(
                User(
                    id=uuid.uuid4(),
                    site="default",
                    email="b@b.c",
                    display_name="B",
                    token_hash="0" * 64,
                    created_at=datetime(2030, 1, 1),  # naive on purpose
                )
            )
    finally:
        engine.dispose()


def test_memory_database_is_shared_across_sessions() -> None:
    engine = make_engine("sqlite://")
    try:
        upgrade(engine)
        assert "jobs" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def _index_names(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {ix["name"] or "" for ix in inspect(engine).get_indexes(table)}
    finally:
        engine.dispose()


def test_each_revision_steps_up_and_down_keeping_rows(db_url: str) -> None:
    upgrade(db_url, "0001")
    assert "ix_jobs_owner_id_state" in _index_names(db_url, "jobs")
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    user_id = uuid.uuid4()
    with Session(engine) as db, db.begin():
        db.add(
            User(
                id=user_id,
                site="s",
                email="a@b",
                display_name="A",
                token_hash="0" * 64,
                created_at=now,
            )
        )
    engine.dispose()
    upgrade(db_url)
    assert "ix_jobs_owner_id_state_expires_at" in _index_names(db_url, "jobs")
    assert diff(db_url, Base.metadata) == []
    downgrade(db_url, "0001")
    assert "ix_jobs_owner_id_state" in _index_names(db_url, "jobs")
    upgrade(db_url)
    engine = make_engine(db_url)
    with Session(engine) as db:
        assert db.get(User, user_id) is not None
    engine.dispose()


def _plan(engine: Engine, query: Select[Any]) -> str:
    """The database's query plan for `query`, as one line."""
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # An empty table is cheapest to scan; forbid that to see which index would serve.
            conn.exec_driver_sql("SET enable_seqscan = off")
            return " ".join(str(row[0]) for row in conn.exec_driver_sql(f"EXPLAIN {compiled}"))
        return " ".join(
            str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
        )


def test_a_users_held_jobs_are_found_through_the_owner_index(db_url: str) -> None:
    """The badge-tap query must not walk every held job of the site (see migration 0002)."""
    from cloud.jobs import held_jobs_query

    upgrade(db_url)
    engine = make_engine(db_url)

    plan = _plan(engine, held_jobs_query("default", uuid.uuid4(), datetime.now(UTC)))
    engine.dispose()
    assert "ix_jobs_owner_id_state_expires_at" in plan, plan


def test_the_quota_sum_reads_only_the_partial_index(db_url: str) -> None:
    """A submission sums the user's held bytes twice: from `ix_jobs_held_content` alone
    (migration 0012), which holds only jobs whose content is still stored."""
    from cloud.uploads import held_bytes_query

    upgrade(db_url)
    engine = make_engine(db_url)
    plan = _plan(engine, held_bytes_query("default", uuid.uuid4()))
    engine.dispose()
    assert "ix_jobs_held_content" in plan, plan
    if engine.dialect.name == "sqlite":
        assert "COVERING INDEX" in plan, plan  # no row is read
