"""The offline wheelhouse a station installs from on first boot: check one, or build one.

A wheelhouse is a folder of `.whl` files plus an optional `requirements.txt` naming what first
boot installs (default `pullprint[station]==VERSION`), with `pip install --no-index`, so a
station needs no network (and no compiler) to come up.

Building one (`--build-wheelhouse`) needs PyPI: pullprint's own wheel is built from this
checkout, and its `[station]` dependencies are downloaded as binary wheels for the station
(aarch64, CPython 3.11: Raspberry Pi OS bookworm). A dependency published without an aarch64
wheel (evdev is one: PyPI has only its sdist) cannot be cross-built here; build it on a Pi or in
an arm64 chroot and pass its folder with `--extra-wheels`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tools.imaging.build_errors import WheelhouseError

REQUIREMENTS = "requirements.txt"
STATION_PLATFORM = "manylinux2014_aarch64"
STATION_PYTHON = "311"
_PULLPRINT_WHEEL = re.compile(r"pullprint-([0-9][^-]*)-py3-none-any\.whl")
# What a wheel build needs from a checkout: the project file and the packages it lists.
_PROJECT_FILES = ("pyproject.toml", "README.md", "LICENSE")
_PACKAGES = ("station", "cloud", "hardware", "tools")


@dataclass(frozen=True)
class Wheelhouse:
    """A checked wheelhouse: its wheels, pullprint's version, and what first boot installs."""

    wheels: tuple[Path, ...]
    pullprint_version: str
    requirements: str


def inspect_wheelhouse(folder: Path) -> Wheelhouse:
    """Check `folder`: wheels only (plus requirements.txt), exactly one pullprint wheel.

    Raises:
        WheelhouseError: not a folder, a stray file, or no (or two) pullprint wheels.
    """
    if not folder.is_dir():
        raise WheelhouseError(f"{folder}: no such wheelhouse folder")
    wheels, stray = [], []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name.endswith(".whl"):
            wheels.append(path)
        elif path.name != REQUIREMENTS:
            stray.append(path.name)
    if stray:
        # An sdist would make first boot compile (no compiler on Pi OS Lite): refuse it here.
        raise WheelhouseError(f"{folder} holds more than wheels: {', '.join(stray[:3])}")
    versions = [m.group(1) for w in wheels if (m := _PULLPRINT_WHEEL.fullmatch(w.name))]
    if len(versions) != 1:
        raise WheelhouseError(
            f"{folder} must hold exactly one pullprint-VERSION-py3-none-any.whl "
            f"(found {len(versions)}): build it with `pip wheel --no-deps .`"
        )
    requirements_file = folder / REQUIREMENTS
    requirements = (
        requirements_file.read_text(encoding="utf-8")
        if requirements_file.is_file()
        else f"pullprint[station]=={versions[0]}\n"
    )
    return Wheelhouse(tuple(wheels), versions[0], requirements)


def _pip(args: list[str], what: str) -> None:
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).strip().splitlines() if ln.strip()]
        detail = next((ln for ln in reversed(lines) if ln.startswith("ERROR")), None)
        raise WheelhouseError(f"{what} failed: {detail or (lines[-1] if lines else 'no output')}")


def build_pullprint_wheel(checkout: Path, dest: Path) -> Path:
    """Build pullprint's wheel from `checkout` into `dest`; returns the wheel.

    The build runs on a copy of the project files, so the checkout (which others may be editing)
    gets no `build/` or egg-info churn from it.
    """
    if not (checkout / "pyproject.toml").is_file():
        raise WheelhouseError(f"{checkout} is not the pullprint checkout (no pyproject.toml)")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pullprint-wheel-") as temp:
        copy = Path(temp, "src")
        copy.mkdir()
        for name in _PROJECT_FILES:
            if (checkout / name).is_file():
                shutil.copy2(checkout / name, copy / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for package in _PACKAGES:
            shutil.copytree(checkout / package, copy / package, ignore=ignore)
        _pip(["wheel", "--no-deps", "--quiet", "--wheel-dir", str(dest), str(copy)], "pip wheel")
    built = sorted(dest.glob("pullprint-*-py3-none-any.whl"))
    if not built:
        raise WheelhouseError("pip wheel made no pullprint wheel")
    return built[-1]


def build_wheelhouse(checkout: Path, dest: Path, extra_wheels: Path | None = None) -> Wheelhouse:
    """pullprint's wheel plus its `[station]` dependencies as aarch64 wheels, in `dest`.

    Raises:
        WheelhouseError: the build or a download failed (a dependency without an aarch64 wheel
            names itself in pip's message).
    """
    wheel = build_pullprint_wheel(checkout, dest)
    version = _PULLPRINT_WHEEL.fullmatch(wheel.name)
    assert version is not None  # matched by the glob above
    links = ["--find-links", str(dest)]
    if extra_wheels is not None:
        links += ["--find-links", str(extra_wheels)]
    _pip(
        [
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--platform",
            STATION_PLATFORM,
            "--python-version",
            STATION_PYTHON,
            "--implementation",
            "cp",
            *links,
            "--dest",
            str(dest),
            f"pullprint[station]=={version.group(1)}",
        ],
        f"downloading the station's dependencies for {STATION_PLATFORM} (a package without an "
        "aarch64 wheel needs --extra-wheels)",
    )
    return inspect_wheelhouse(dest)
