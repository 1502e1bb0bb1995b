"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
