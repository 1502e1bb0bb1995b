"""Running the disk tools the build uses (debugfs, mke2fs, e2fsck, sfdisk, pip) by absolute path.

Debian keeps e2fsprogs and fdisk in /usr/sbin, which is not on a normal user's PATH, so a tool is
looked up on PATH and then there. A missing tool is one clear error naming its Debian package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tools.imaging.build_errors import ToolMissingError

PACKAGES = {
    "debugfs": "e2fsprogs",
    "mke2fs": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "sfdisk": "fdisk",
    "mcopy": "mtools",
    "mtype": "mtools",
}


def find_tool(name: str) -> str:
    """The absolute path of `name`, from PATH or /usr/sbin and /sbin."""
    found = shutil.which(name)
    if found is None:
        found = next(
            (str(p) for d in ("/usr/sbin", "/sbin") if (p := Path(d, name)).exists()), None
        )
    if found is None:
        package = PACKAGES.get(name, name)
        raise ToolMissingError(f"{name} is missing: install the Debian package {package}")
    return found


def run_tool(
    name: str, args: Sequence[str], *, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run tool `name` with `args`; the caller decides what a non-zero exit means."""
    env = dict(os.environ, LC_ALL="C", MTOOLSRC="/dev/null", MTOOLS_SKIP_CHECK="1")
    return subprocess.run(  # noqa: S603 - fixed argv, no shell
        [find_tool(name), *args], input=stdin, capture_output=True, env=env, check=False
    )


def last_line(done: subprocess.CompletedProcess[bytes]) -> str:
    """The last non-empty line a failed tool printed, for a one-line error."""
    text = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
    return text[-1].strip() if text else f"exit status {done.returncode}"
