"""The storage profile the cloud tests run on: `PULLPRINT_TEST_PROFILE=embedded|postgres`.

* `embedded` (the default): SQLite in the test's data dir, blobs on the filesystem.
* `postgres`: a private PostgreSQL (tools/pg.py) and a private S3 server (tools/s3.py), started
  once per test session on 127.0.0.1 and stopped by PID at its end. Each cloud data dir gets its
  own database, copied from a migrated template (fast, and as isolated as a SQLite file), and its
  own key prefix in one bucket. Databases are dropped when their test ends.

`tools/quickstart.sh test` runs the cloud suite once per profile.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from tools.pg import PrivatePostgres
from tools.s3 import DUMMY_CREDENTIALS, PrivateS3

PROFILE = os.environ.get("PULLPRINT_TEST_PROFILE", "embedded")
if PROFILE not in ("embedded", "postgres"):
    raise RuntimeError(f"PULLPRINT_TEST_PROFILE must be embedded or postgres, not {PROFILE!r}")
BUCKET = "pullprint-test"
_TEMPLATE = "pullprint_template"


def is_postgres() -> bool:
    return PROFILE == "postgres"


class Backends:
    """PostgreSQL + S3 for one test session."""

    def __init__(self) -> None:
        # Not under pytest's tmp dir: that is private to root, and PostgreSQL runs as `postgres`.
        self.root = Path(tempfile.mkdtemp(prefix="pullprint-pg-"))
        self.pg = PrivatePostgres(self.root)
        self.s3 = PrivateS3(self.root / "s3.log")
        self._databases: dict[str, str] = {}
        self._kept: set[str] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        for key, value in DUMMY_CREDENTIALS.items():
            os.environ[key] = value  # boto3 in this process and in cloud replicas reads them
        self.pg.start()
        self.s3.start()
        self.s3.create_bucket(BUCKET)
        from cloud.migrate import upgrade

        upgrade(self.pg.create_database(_TEMPLATE))

    def stop(self) -> None:
        self.s3.stop()
        self.pg.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def database_for(self, data_dir: Path, *, keep: bool = False, template: str = _TEMPLATE) -> str:
        """The database of a cloud data dir: the same one each time the dir is opened; `keep`
        spares it from the drop at the end of the test (a module fixture's database)."""
        name = "t_" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:20]
        with self._lock:
            if keep:
                self._kept.add(name)
            if name not in self._databases:
                self._databases[name] = self.pg.create_database(name, template=template)
            return self._databases[name]

    def settings_for(self, data_dir: Path, *, keep: bool = False) -> dict[str, str]:
        """CloudConfig values (database, blob store) of a cloud data dir."""
        prefix = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:20] + "/"
        return {
            "database_url": self.database_for(data_dir, keep=keep),
            "blob_store": "s3",
            "s3_bucket": BUCKET,
            "s3_prefix": prefix,
            "s3_endpoint_url": self.s3.endpoint_url,
            "s3_region": DUMMY_CREDENTIALS["AWS_DEFAULT_REGION"],
        }

    def drop_databases(self) -> None:
        """Drop every test database created so far (FORCE: a leaked connection must not block)."""
        with self._lock:
            names = [name for name in self._databases if name not in self._kept]
            for name in names:
                del self._databases[name]
        for name in names:
            self.pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_backends: Backends | None = None
_start_lock = threading.Lock()


def backends() -> Backends:
    """The session's PostgreSQL + S3, started on first use."""
    global _backends  # noqa: PLW0603 - one pair of servers per test session
    with _start_lock:
        if _backends is None:
            started = Backends()
            try:
                started.start()
            except BaseException:
                started.stop()
                raise
            atexit.register(started.stop)
            _backends = started
        return _backends


def started_backends() -> Backends | None:
    """The backends if something started them (for teardown)."""
    return _backends


def cloud_settings(data_dir: Path, *, keep: bool = False) -> dict[str, Any]:
    """The profile's CloudConfig values for a cloud with its data in `data_dir`."""
    if not is_postgres():
        return {"database_url": f"sqlite:///{data_dir / 'pullprint.db'}"}
    return dict(backends().settings_for(data_dir, keep=keep))


def empty_database(data_dir: Path) -> str:
    """A new, unmigrated PostgreSQL database (for the migration tests), dropped with the test."""
    return backends().database_for(data_dir, template="template0")


def cloud_env(data_dir: Path, *, keep: bool = False) -> dict[str, str]:
    """The same as `PULLPRINT_*` environment variables (for clouds started by a rig or process)."""
    return {
        "PULLPRINT_" + key.upper(): str(value)
        for key, value in cloud_settings(data_dir, keep=keep).items()
    }
