"""Fixtures of the hardware-in-the-loop suite: the lab (from --hil, or the simulated one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hil.lab import SIMULATED_LAB, Lab, LabSpec, load_lab

# How long a test waits for the station to react: a person at a real rig is slower than a pty.
SIMULATED_TIMEOUT_S = 15.0
REAL_TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def lab_spec(request: pytest.FixtureRequest) -> LabSpec:
    path = request.config.getoption("--hil")
    return load_lab(Path(path) if path else SIMULATED_LAB)


@pytest.fixture
def lab(lab_spec: LabSpec) -> Iterator[Lab]:
    opened = Lab(lab_spec).open()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def hil_timeout_s(lab_spec: LabSpec) -> float:
    return SIMULATED_TIMEOUT_S if lab_spec.simulated else REAL_TIMEOUT_S
