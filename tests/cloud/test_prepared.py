"""`cloud.prepared`: a prepared statement reads and writes exactly what SQLAlchemy's own execution
does, on the profile's engine (SQLite, or PostgreSQL in the second pass of `.ci/run`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, exc, insert, select, text, update
from sqlalchemy.dialects import sqlite

from cloud.db import AuditEvent, Job, Station, StationNonce, User, UTCDateTime
from cloud.jobs import HELD_JOB_ROWS, REPRINTABLE_JOB_ROWS
from cloud.prepared import Prepared
from cloud.service import CloudService
from tests.cloud.conftest import Enrolled
from tests.support import profile
from tools.bench import _pattern_chunks

WHOLE_ROWS = [
    select(*table.__table__.columns).order_by(*table.__table__.primary_key.columns)
    for table in (Job, Station, User, AuditEvent)
]


def _core_rows(
    service: CloudService, statement: Any, params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    with service.context.write_core() as conn:
        return [tuple(row) for row in conn.execute(statement, params)]


def _prepared_rows(
    service: CloudService, prepared: Prepared, params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    with service.context.write_core() as conn:
        return prepared.rows(conn, params)


@pytest.fixture
def with_jobs(service: CloudService, enrolled: Enrolled) -> Enrolled:
    for n in range(3):
        service.uploads.submit(
            enrolled.user,
            f"report {n}.pdf",
            _pattern_chunks(2000 + n),
            document_format="application/pdf",
        )
    return enrolled


@pytest.mark.parametrize("statement", WHOLE_ROWS, ids=lambda s: s.get_final_froms()[0].name)
def test_every_column_type_reads_as_core_reads_it(
    service: CloudService, with_jobs: Enrolled, statement: Any
) -> None:
    # Uuid, UTCDateTime (set and NULL), bytes, bool, int, text: every type the tables use.
    core = _core_rows(service, statement, {})
    assert core, "the fixture wrote rows"
    assert _prepared_rows(service, Prepared(statement), {}) == core


@pytest.mark.parametrize("statement", [HELD_JOB_ROWS, REPRINTABLE_JOB_ROWS])
def test_the_tap_job_lists_read_as_core_reads_them(
    service: CloudService, clock: Any, with_jobs: Enrolled, statement: Any
) -> None:
    params = {"site": with_jobs.user.site, "owner_id": with_jobs.user.id, "now": clock()}
    core = _core_rows(service, statement, params)
    assert len(core) == (3 if statement is HELD_JOB_ROWS else 0)
    # The statement's own literals (the held state) travel with it.
    assert _prepared_rows(service, Prepared(statement), params) == core
    other = {**params, "owner_id": uuid.uuid4()}
    assert _prepared_rows(service, Prepared(statement), other) == []


def test_an_insert_writes_what_core_reads_back(service: CloudService, enrolled: Enrolled) -> None:
    nonces = Prepared(insert(StationNonce), keys=("station_id", "nonce", "site", "created_at"))
    moment = datetime(2026, 11, 26, 17, 5, 9, 123456, tzinfo=UTC)
    with service.context.write_core() as conn:
        assert (
            nonces.run(
                conn,
                {
                    "station_id": enrolled.station.id,
                    "nonce": "n-1",
                    "site": enrolled.station.site,
                    # Another zone: stored as the same instant in UTC.
                    "created_at": moment.astimezone(datetime.now().astimezone().tzinfo),
                },
            )
            == 1
        )
    row = _core_rows(
        service,
        select(StationNonce.station_id, StationNonce.site, StationNonce.created_at).where(
            StationNonce.nonce == "n-1"
        ),
        {},
    )
    assert row == [(enrolled.station.id, enrolled.station.site, moment)]


def test_an_update_counts_the_rows_it_changed(service: CloudService, enrolled: Enrolled) -> None:
    rename = Prepared(
        update(User).where(User.id == bindparam("p_id")).values(display_name=bindparam("p_name"))
    )
    with service.context.write_core() as conn:
        assert rename.run(conn, {"p_id": enrolled.user.id, "p_name": "Ada L."}) == 1
        assert rename.run(conn, {"p_id": uuid.uuid4(), "p_name": "nobody"}) == 0
    assert _core_rows(
        service, select(User.display_name).where(User.id == enrolled.user.id), {}
    ) == [("Ada L.",)]


def test_first_named_reads_columns_by_name(service: CloudService, enrolled: Enrolled) -> None:
    station = Prepared(
        select(Station.name, Station.revoked_at).where(Station.id == bindparam("id"))
    )
    with service.context.write_core() as conn:
        found = station.first_named(conn, {"id": enrolled.station.id})
        missing = station.first_named(conn, {"id": uuid.uuid4()})
    assert found is not None and (found.name, found.revoked_at) == ("Floor 2", None)
    assert missing is None


def test_a_driver_error_is_sqlalchemys_without_its_parameters(
    service: CloudService, enrolled: Enrolled
) -> None:
    nonces = Prepared(insert(StationNonce), keys=("station_id", "nonce", "site", "created_at"))
    params = {
        "station_id": enrolled.station.id,
        "nonce": "secret-nonce-value",
        "site": enrolled.station.site,
        "created_at": datetime.now(UTC),
    }
    with service.context.write_core() as conn:
        nonces.run(conn, params)
    with pytest.raises(exc.IntegrityError) as raised, service.context.write_core() as conn:
        nonces.run(conn, params)
    # SQLAlchemy adds the statement but not its parameters (PostgreSQL's own DETAIL line may
    # still name a key's value: that is the server's message, as through `Connection.execute`).
    assert raised.value.params is None
    assert "INSERT INTO station_nonces" in str(raised.value)
    assert not raised.value.connection_invalidated
    # The transaction rolled back and the connection is still good.
    assert len(_core_rows(service, select(StationNonce.nonce), {})) == 1


@pytest.mark.skipif(not profile.is_postgres(), reason="a server connection to lose: postgres")
def test_a_lost_connection_is_invalidated(service: CloudService, enrolled: Enrolled) -> None:
    names = Prepared(select(User.display_name).where(User.id == bindparam("id")))
    invalidated: list[bool] = []

    def lose_connection_then_read() -> None:
        with service.context.write_core() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            with service.engine.connect() as killer:
                killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            try:
                names.rows(conn, {"id": enrolled.user.id})
            finally:
                invalidated.append(conn.invalidated)

    with pytest.raises(exc.OperationalError) as raised:
        lose_connection_then_read()
    assert raised.value.connection_invalidated
    assert invalidated == [True]
    # The pool does not hand the dead connection out again.
    with service.context.write_core() as conn:
        assert names.rows(conn, {"id": enrolled.user.id}) == [("Ada Lovelace",)]


def test_expanding_parameters_are_refused(service: CloudService) -> None:
    many = Prepared(select(User.id).where(User.id.in_(bindparam("ids", expanding=True))))
    with pytest.raises(ValueError, match="expanding"), service.context.write_core() as conn:
        many.rows(conn, {"ids": [uuid.uuid4()]})


@pytest.mark.parametrize(
    "stored",
    [
        "2026-11-26 17:05:09.123456",
        "2026-11-26 17:05:09.000000",
        "2026-11-26 17:05:09",
        "2026-02-28 23:59:59.5",
    ],
)
def test_sqlite_times_parse_as_sqlalchemy_parses_them(stored: str) -> None:
    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
    theirs = sqlite.DATETIME().result_processor(dialect, None)
    assert ours is not None and theirs is not None
    assert ours(stored) == theirs(stored).replace(tzinfo=UTC)
    assert ours(stored).utcoffset() == timedelta(0)
    assert ours(None) is None


def test_an_orm_session_runs_it_on_its_connection(
    service: CloudService, enrolled: Enrolled
) -> None:
    names = Prepared(select(User.display_name).where(User.id == bindparam("id")))
    with service.context.write() as db:
        assert names.rows(db, {"id": enrolled.user.id}) == [("Ada Lovelace",)]
        db.add(
            User(
                id=uuid.uuid4(),
                site="default",
                email="new@example.org",
                display_name="N",
                token_hash="0" * 64,
                created_at=datetime.now(UTC),
            )
        )
        # Not flushed first (the audit writer relies on it): the pending user is not seen yet.
        assert (
            Prepared(select(User.email).where(User.email == "new@example.org")).rows(db, {}) == []
        )
