"""Small synthetic SD-card images for the imaging tests, made without mounts.

An MBR (or GPT) table by sfdisk, a FAT boot partition by mkfs.vfat at an offset with a file put in
by mcopy, a "root" partition with a few scattered data blocks, holes everywhere else, and a partial
last block. Missing tools fail the test with the Debian package to install; they never skip.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

MIB = 1 << 20
BOOT_START_BYTES = 1 * MIB
BOOT_BYTES = 8 * MIB
IMAGE_BYTES = 24 * MIB + 700  # not a multiple of 4096: the last block is partial
# Where the "root" partition has data: (offset, length), some not 4 KiB aligned.
ROOT_DATA = [(10 * MIB, 3 * 4096), (12 * MIB + 100, 5000), (20 * MIB, 300 * 1024)]

TOOLS = {
    "bmaptool": "bmap-tools",
    "sfdisk": "fdisk",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "mtype": "mtools",
    "gs": "ghostscript",
    "zbarimg": "zbar-tools",
}


def require(*tools: str) -> None:
    """Fail (not skip) when a tool is missing, naming the Debian package."""
    for tool in tools:
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            pytest.fail(f"{tool} is missing: apt-get install {TOOLS[tool]}")


def run(*argv: str | Path, stdin: str | None = None) -> str:
    """Run a tool, failing the test with its stderr if it fails."""
    exe = shutil.which(str(argv[0])) or str(Path("/usr/sbin", str(argv[0])))
    env = dict(os.environ, MTOOLSRC="/dev/null", MTOOLS_SKIP_CHECK="1")
    done = subprocess.run(
        [exe, *map(str, argv[1:])],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"{argv[0]} failed: {done.stderr.strip()}")
    return done.stdout


def make_image(path: Path, *, gpt: bool = False, seed: int = 7) -> Path:
    """Write a sparse two-partition image to `path` and return it."""
    require("sfdisk", "mkfs.vfat", "mcopy")
    with open(path, "wb") as f:
        f.truncate(IMAGE_BYTES)
    boot_sectors = BOOT_BYTES // 512
    start = BOOT_START_BYTES // 512
    if gpt:
        table = (
            "label: gpt\n"
            f"start={start}, size={boot_sectors}, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n"
            f"start={start + boot_sectors}, size=20480, type=linux\n"
        )
    else:
        table = (
            f"label: dos\nstart={start}, size={boot_sectors}, type=c\n"
            f"start={start + boot_sectors}, size=20480, type=83\n"
        )
    run("sfdisk", "-q", path, stdin=table)
    # --offset is in sectors; the block count in KiB: the file system stays inside its partition.
    run("mkfs.vfat", "-n", "BOOT", f"--offset={start}", path, str(BOOT_BYTES // 1024))
    cmdline = path.with_name("cmdline.txt")
    cmdline.write_text("console=serial0,115200 root=PARTUUID=0-02 rootwait\n")
    run("mcopy", "-i", f"{path}@@{BOOT_START_BYTES}", cmdline, "::/cmdline.txt")
    rng = random.Random(seed)
    with open(path, "r+b") as f:
        for offset, length in ROOT_DATA:
            f.seek(offset)
            f.write(rng.randbytes(length))
        if not gpt:  # a GPT keeps its backup copy in the last sectors
            f.seek(IMAGE_BYTES - 300)
            f.write(rng.randbytes(300))
    return path
