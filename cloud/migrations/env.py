"""Alembic environment: runs on the connection `cloud.migrate` hands over (no alembic.ini)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from cloud.db import Base, make_engine

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    # Batch mode lets later migrations ALTER tables on SQLite (copy-and-move).
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate the connection given in `config.attributes`, else the configured URL."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection or sqlalchemy.url given to the migration environment")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
