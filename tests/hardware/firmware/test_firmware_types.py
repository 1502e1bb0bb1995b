"""The firmware type-checks against MicroPython's rp2 (Raspberry Pi Pico) stubs, not CPython's.

The stubs come from the test extra (`micropython-rp2-rpi-pico-stubs`, which pulls in
`micropython-stdlib-stubs`); they are copied out of site-packages into a folder used both as
mypy's typeshed (`--custom-typeshed-dir`: MicroPython's `time`, `sys`, `select` ...) and as its
MYPYPATH (`machine`, `micropython`): mypy refuses site-packages on MYPYPATH. A CPython-only call
(`time.monotonic()`) or a method the Pico's `machine.SPI` lacks fails this test.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.firmware_fakes import FIRMWARE_DIR

STUB_DISTS = ("micropython-rp2-rpi-pico-stubs", "micropython-stdlib-stubs")


def _stubs(into: Path) -> Path:
    for dist in STUB_DISTS:
        files = importlib.metadata.files(dist)
        assert files, f"{dist} is not installed: pip install -e '.[test]'"
        for file in files:
            if ".dist-info" in str(file) or not str(file).endswith((".pyi", "VERSIONS")):
                continue
            target = into / str(file)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(str(file.locate())), target)
    assert (into / "stdlib" / "VERSIONS").exists() and (into / "machine.pyi").exists()
    return into


def _mypy(stubs: Path, firmware: Path) -> subprocess.CompletedProcess[str]:
    sources = sorted(p.name for p in firmware.glob("*.py"))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(FIRMWARE_DIR / "mypy.ini"),
            "--custom-typeshed-dir",
            str(stubs),
            "--no-site-packages",
            "--cache-dir",
            str(stubs.parent / "cache"),
            *sources,
        ],
        cwd=firmware,
        env={"MYPYPATH": f"{stubs}:.", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_firmware_passes_mypy_strict_against_the_rp2_stubs(tmp_path: Path) -> None:
    stubs = _stubs(tmp_path / "typings")
    done = _mypy(stubs, FIRMWARE_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues found in 6 source files" in done.stdout


def test_cpython_only_code_fails_the_firmware_type_check(tmp_path: Path) -> None:
    stubs = _stubs(tmp_path / "typings")
    copy = tmp_path / "firmware"
    shutil.copytree(FIRMWARE_DIR, copy)
    main = copy / "main.py"
    main.write_text(
        main.read_text().replace(
            "    last = time.ticks_ms()\n",
            "    last = time.ticks_ms()\n    started: float = time.monotonic()\n",
        )
    )
    done = _mypy(stubs, copy)
    assert done.returncode == 1 and 'has no attribute "monotonic"' in done.stdout, done.stdout
