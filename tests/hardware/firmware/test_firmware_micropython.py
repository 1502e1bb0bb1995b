"""The firmware's pure modules on real MicroPython: the same session, the same output as CPython.

MicroPython lacks much of CPython (no `re`, no dataclasses, no `typing`, fewer str and bytes
methods, no PEP 448 unpacking in displays); the CPython tests alone would miss such a slip. The
webassembly port of MicroPython (npm `@micropython/micropython-webassembly-pyscript`, pinned in
micropython/package.json, installed by `sh tools/quickstart.sh test` with `npm ci`) runs
micropython/scenario.py with the firmware importable, under Node; so does CPython, and the two
outputs must be equal line for line.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.firmware_fakes import FIRMWARE_DIR

HERE = Path(__file__).parent / "micropython"
PACKAGE = HERE / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"


def _micropython(script: Path) -> str:
    node = shutil.which("node")
    if node is None or not PACKAGE.exists():
        pytest.fail(
            "MicroPython (webassembly) is not installed: apt-get install nodejs npm, then "
            f"npm ci --prefix {HERE}"
        )
    done = subprocess.run(
        [node, "run.mjs", str(FIRMWARE_DIR), str(script)],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def _cpython(script: Path) -> str:
    code = f"import sys\nsys.path.append({str(FIRMWARE_DIR)!r})\n" + script.read_text()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_bridge_session_runs_the_same_on_micropython_and_cpython() -> None:
    script = HERE / "scenario.py"
    on_micropython = _micropython(script)
    assert on_micropython == _cpython(script)
    lines = on_micropython.splitlines()
    assert "PP1 READY 1 pullprint-bridge/1.0 *A0" in lines
    assert "PP1 CARD mifare 80 04a1b2c3d4e5f6071829 *2A" in lines
    # The PN532 driver: detection, a 7-byte UID after one NACKed response, the error frame.
    assert "pn532 (50, 1, 6, 7) None" in lines
    assert any(line.startswith("pn532 uid PP1 CARD mifare 56 04a1b2c3d4e5f6") for line in lines)
    assert "pn532 error error-frame" in lines
    assert lines[-1] == "crc 244 True"


def test_a_cpython_only_construct_fails_on_micropython(tmp_path: Path) -> None:
    # The check can fail: dataclasses do not exist on MicroPython.
    script = tmp_path / "cpython_only.py"
    script.write_text("import dataclasses\nprint('unreachable')\n")
    with pytest.raises(AssertionError, match="ImportError"):
        _micropython(script)
