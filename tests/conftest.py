"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import profile
from tests.support.ippeve import IppEvePrinter


def pytest_addoption(parser: pytest.Parser) -> None:
    # station-hw: the hardware-in-the-loop suite (tests/hil). Without --hil it runs against the
    # simulated lab (tests/hil/labs/simulated.toml), so its plumbing is exercised on every run.
    parser.addoption(
        "--hil",
        metavar="LAB.toml",
        default=None,
        help="run tests/hil against the rig this lab file describes (see docs/hil.md)",
    )


@pytest.fixture
def ippeveprinter(tmp_path: Path) -> Iterator[IppEvePrinter]:
    """A real IPP Everywhere printer (Debian ippeveprinter) on 127.0.0.1, keeping documents.

    Fails (does not skip) when ippeveprinter is missing: the test command installs it.
    """
    with IppEvePrinter(tmp_path) as printer:
        yield printer


@pytest.fixture(scope="session", autouse=True)
def _storage_backends() -> Iterator[None]:
    """Stop the PostgreSQL + S3 servers of the `postgres` profile (if started) by PID."""
    yield
    started = profile.started_backends()
    if started is not None:
        started.stop()


@pytest.fixture(autouse=True)
def _storage_profile(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under the `postgres` profile: e2e clouds (tools/rig.py reads PULLPRINT_DATABASE_URL and
    the blob settings) get their own database; every test's databases are dropped at its end."""
    if not profile.is_postgres():
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        if "/e2e/" in str(request.path):
            tmp_path: Path = request.getfixturevalue("tmp_path")
            for name, value in profile.cloud_env(tmp_path / "rig-cloud").items():
                patch.setenv(name, value)
        yield
    started = profile.started_backends()
    if started is not None:
        started.drop_databases()
