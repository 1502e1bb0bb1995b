"""Run the schema migrations programmatically (no alembic.ini needed at runtime).

The script location is found next to this module, so an installed wheel migrates the same way as
a checkout. On SQLite the whole upgrade runs in one transaction (its DDL is transactional), so a
failed migration leaves the previous schema intact.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from cloud.db import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations."""
    cfg = Config()
    # Config values go through configparser interpolation: '%' must be doubled.
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return cfg


def upgrade(target: Engine | str, revision: str = "head") -> None:
    """Bring the database at `target` (an engine or URL) up to `revision`."""
    _run(target, command.upgrade, revision)


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # the package always ships its migrations
    return head


def current_revision(target: Engine | str) -> str | None:
    """The revision the database at `target` is at; None for an empty database."""
    engine = make_engine(target) if isinstance(target, str) else target
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        if isinstance(target, str):
            engine.dispose()


def downgrade(target: Engine | str, revision: str) -> None:
    """Take the database at `target` back down to `revision` (for operators rolling back)."""
    _run(target, command.downgrade, revision)


def _run(target: Engine | str, step: Callable[[Config, str], None], revision: str) -> None:
    engine = make_engine(target) if isinstance(target, str) else target
    try:
        cfg = alembic_config()
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            step(cfg, revision)
    finally:
        if isinstance(target, str):
            engine.dispose()
