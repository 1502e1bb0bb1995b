"""Application-level A/B slots for the station software.

Layout under the install root (`/opt/pullprint` on a station, any folder in tests)::

    slots/a/            a venv (made at first boot, by pullprint-firstboot)
    slots/b/            a venv (made by the first update)
    slots/<x>/.complete the slot was installed and self-checked to the end
    current -> slots/a  what pullprint-station.service runs (ExecStart=.../current/bin/pullprint)

Invariants:

* the slot `current` points at is never written: an update installs into the other one, and
  `current` changes by one rename of a new symlink over the old (atomic on POSIX), so a power
  cut leaves either the old or the new slot in use, never half of each;
* a slot is only switched to once it has `.complete`: made from scratch (the old contents are
  removed first), pip installed with `--no-index` from the verified wheelhouse only, and its
  `pullprint --version` answered; a slot half made by a crash lacks the marker and is made anew.

Each venv is made at its own path (`slots/b`, never through `current`): a venv's scripts name
their interpreter by absolute path.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

from station.errors import InstallError

log = logging.getLogger(__name__)

SLOTS = ("a", "b")
COMPLETE = ".complete"
VERSION_FILE = ".version"


def other(slot: str) -> str:
    """The other slot's name."""
    return SLOTS[1 - SLOTS.index(slot)]


@dataclass(frozen=True)
class SlotLayout:
    """The slots under one install root."""

    root: Path

    @property
    def current_link(self) -> Path:
        """The `current` symlink."""
        return self.root / "current"

    def slot_dir(self, slot: str) -> Path:
        """A slot's folder (raises ValueError for a name that is not a or b)."""
        if slot not in SLOTS:
            raise ValueError(f"no slot {slot!r}")
        return self.root / "slots" / slot

    def active(self) -> str | None:
        """The slot `current` points at, or None before first boot made one."""
        try:
            target = os.readlink(self.current_link)
        except (FileNotFoundError, OSError):
            return None
        name = Path(target).name
        return name if name in SLOTS else None

    def inactive(self) -> str:
        """The slot an update may write: the one `current` does not point at."""
        active = self.active()
        return "b" if active is None else other(active)

    def is_complete(self, slot: str) -> bool:
        """Whether the slot was installed to the end."""
        return (self.slot_dir(slot) / COMPLETE).is_file()

    def version(self, slot: str) -> str | None:
        """The version installed in a complete slot."""
        try:
            return (self.slot_dir(slot) / VERSION_FILE).read_text().strip() or None
        except FileNotFoundError:
            return None

    def program(self, slot: str | None = None) -> Path:
        """The slot's `pullprint` command (default: through `current`)."""
        base = self.current_link if slot is None else self.slot_dir(slot)
        return base / "bin" / "pullprint"

    def switch(self, slot: str) -> None:
        """Point `current` at a complete slot, atomically (a new link renamed over the old).

        Raises:
            InstallError: the slot is not complete.
        """
        if not self.is_complete(slot):
            raise InstallError(f"slot {slot} is not complete; not switching to it")
        temp = self.root / f".current.{os.getpid()}.tmp"
        temp.unlink(missing_ok=True)
        os.symlink(f"slots/{slot}", temp)  # relative: the root may move (tests, chroots)
        os.replace(temp, self.current_link)
        _fsync_dir(self.root)
        log.info("switched current to slot %s", slot)

    def install(
        self,
        slot: str,
        wheelhouse: Path,
        version: str,
        *,
        python: str | None = None,
        timeout_s: float = 1800.0,
    ) -> Path:
        """Make `slot` from scratch: a venv, the wheelhouse installed offline, a self-check.

        Args:
            slot: the inactive slot (never the active one).
            wheelhouse: a folder of verified wheels with requirements.txt.
            version: the version the bundle claims; `pullprint --version` must agree.
            python: the interpreter the venv is made from (default: this one's base).
            timeout_s: how long pip may take (minutes on a Pi Zero 2 W).

        Raises:
            InstallError: the slot is active, or a step failed (its output in the message).
        """
        if slot == self.active():
            raise InstallError(f"slot {slot} is the active one; an update never writes it")
        target = self.slot_dir(slot)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if python is None:
            venv.EnvBuilder(with_pip=True, symlinks=True).create(target)
        else:
            _run([python, "-m", "venv", str(target)], "making the venv", 300.0)
        py = target / "bin" / "python"
        env = {
            # Only the verified wheelhouse counts: no pip.conf, no PIP_* from outside.
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PIP_CONFIG_FILE": os.devnull,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        _run(
            [
                *(str(py), "-m", "pip", "install", "--no-index", "--find-links", str(wheelhouse)),
                *("--no-cache-dir", "--disable-pip-version-check", "--quiet"),
                *("--requirement", str(wheelhouse / "requirements.txt")),
            ],
            "pip install --no-index",
            timeout_s,
            env,
        )
        answered = _run(
            [str(target / "bin" / "pullprint"), "--version"], "the self-check", 120.0, env
        )
        if version not in answered.split():
            raise InstallError(
                f"the self-check says {answered.strip()!r}, the bundle says version {version}"
            )
        (target / VERSION_FILE).write_text(version + "\n")
        marker = target / COMPLETE
        marker.write_text("")
        _fsync_dir(target)
        return target


def _run(argv: list[str], what: str, timeout_s: float, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - venv, pip and the slot's own program
            argv,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise InstallError(f"{what} failed (exit {done.returncode}): {' | '.join(tail)}")
    return done.stdout


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def running_python() -> str:
    """The interpreter a new slot's venv is made from: the base of the running venv."""
    return getattr(sys, "_base_executable", sys.executable)
