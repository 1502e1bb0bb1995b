"""Synthetic Raspberry Pi OS-shaped base images and small wheelhouses for the image build tests.

The base is what `pullprint image build` expects, made without mounts: an MBR by sfdisk, a FAT
boot partition by mkfs.vfat at an offset (with cmdline.txt and config.txt put in by mcopy), and
an ext4 root by `mkfs.ext4 -d TREE -E offset=...` from a small tree (/etc with fstab, an empty
/boot/firmware, /usr/lib/systemd/system). Missing tools fail the test naming the Debian package.

The wheelhouses are offline: pullprint's wheel is built from this checkout (on a copy), and
for the first-boot install its dependencies are repacked from this test environment's own
installed distributions (a wheel is a zip of the installed files plus metadata), so no index
is needed.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.tools.disk_images import run

MIB = 1 << 20
BOOT_START = 4 * MIB  # Raspberry Pi OS starts its boot partition at 4 MiB
BOOT_BYTES = 16 * MIB
ROOT_START = BOOT_START + BOOT_BYTES
CHECKOUT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "sfdisk": "fdisk",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "mtype": "mtools",
    "mdir": "mtools",
    "mkfs.ext4": "e2fsprogs",
    "debugfs": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "bmaptool": "bmap-tools",
    "systemd-analyze": "systemd",
    "mmdebstrap": "mmdebstrap",
    "qemu-aarch64-static": "qemu-user-static",
}


def require(*tools: str) -> None:
    """Fail (not skip) when a tool is missing, naming the Debian package."""
    for tool in tools:
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            pytest.fail(f"{tool} is missing: apt-get install {PACKAGES.get(tool, tool)}")


CMDLINE = "console=serial0,115200 console=tty1 root=PARTUUID=abcdef01-02 rootfstype=ext4 rootwait\n"
CONFIG_TXT = "# Raspberry Pi config.txt (synthetic)\ndtparam=audio=on\narm_64bit=1\n"
FSTAB = (
    "proc            /proc           proc    defaults          0       0\n"
    "PARTUUID=abcdef01-01  /boot/firmware  vfat    defaults          0       2\n"
    "PARTUUID=abcdef01-02  /               ext4    defaults,noatime  0       1\n"
)


def root_tree(path: Path) -> Path:
    """A minimal Pi OS-like root tree for `mkfs.ext4 -d`."""
    for folder in (
        "etc/systemd/system",
        "boot/firmware",
        "usr/lib/systemd/system",
        "opt",
        "var/lib",
    ):
        (path / folder).mkdir(parents=True, exist_ok=True)
    (path / "etc/fstab").write_text(FSTAB)
    (path / "etc/hostname").write_text("raspberrypi\n")
    (path / "usr/lib/systemd/system/getty@.service").write_text("[Unit]\nDescription=getty\n")
    return path


def make_pi_base(path: Path, *, root_mib: int = 48, tree: Path | None = None) -> Path:
    """Write a sparse Pi OS-shaped image to `path`: 1 FAT boot, 2 ext4 root."""
    require("sfdisk", "mkfs.vfat", "mcopy", "mkfs.ext4")
    root_bytes = root_mib * MIB
    with open(path, "wb") as f:
        f.truncate(ROOT_START + root_bytes)
    table = (
        "label: dos\nlabel-id: 0xabcdef01\n"
        f"start={BOOT_START // 512}, size={BOOT_BYTES // 512}, type=e\n"
        f"start={ROOT_START // 512}, size={root_bytes // 512}, type=83\n"
    )
    run("sfdisk", "-q", path, stdin=table)
    # -F 16: left to itself mkfs.vfat sizes the FAT from the whole file, not the partition.
    run(
        "mkfs.vfat", "-F", "16", "-n", "BOOTFS", f"--offset={BOOT_START // 512}",
        path, str(BOOT_BYTES // 1024),
    )  # fmt: skip
    for name, text in (("cmdline.txt", CMDLINE), ("config.txt", CONFIG_TXT)):
        local = path.with_name(name)
        local.write_text(text)
        run("mcopy", "-i", f"{path}@@{BOOT_START}", local, f"::/{name}")
    if tree is None:
        tree = root_tree(path.with_name(path.name + ".root"))
    # mkfs.ext4 -d copies owners from the tree; root_owner fixes at least the top directory.
    run(
        "mkfs.ext4", "-q", "-F", "-L", "rootfs", "-d", tree,
        "-E", f"offset={ROOT_START},root_owner=0:0", path, f"{root_bytes // 1024}k",
    )  # fmt: skip
    return path


def make_not_pi_base(path: Path) -> Path:
    """An image whose partition 1 is Linux and partition 2 FAT: the wrong way round."""
    require("sfdisk")
    with open(path, "wb") as f:
        f.truncate(32 * MIB)
    run(
        "sfdisk",
        "-q",
        path,
        stdin="label: dos\nstart=2048, size=20480, type=83\nstart=22528, type=c\n",
    )
    return path


def pullprint_wheel(dest: Path) -> Path:
    """Build pullprint's wheel from this checkout into `dest` (pip wheel --no-deps, on a copy)."""
    from tools.imaging.wheelhouse import build_pullprint_wheel

    return build_pullprint_wheel(CHECKOUT, dest)


def repack_installed(name: str, dest: Path) -> Path:
    """Make a wheel of the installed distribution `name` (this interpreter's platform)."""
    dist = importlib.metadata.distribution(name)
    wheel_meta = dist.read_text("WHEEL") or ""
    tag = next(
        line.split(":", 1)[1].strip() for line in wheel_meta.splitlines() if line.startswith("Tag:")
    )
    normal = dist.metadata["Name"].replace("-", "_").lower()
    out = dest / f"{normal}-{dist.version}-{tag}.whl"
    skip = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}
    record: list[str] = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        record_name = ""
        for file in dist.files or []:
            rel = file.as_posix()
            if rel.startswith("..") or "__pycache__" in rel:
                continue
            if ".dist-info/" in rel and rel.rsplit("/", 1)[1] in skip:
                record_name = rel if rel.endswith("RECORD") else record_name
                continue
            data = Path(str(dist.locate_file(file))).read_bytes()
            zf.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{rel},sha256={digest},{len(data)}")
        record.append(f"{record_name},,")
        zf.writestr(record_name, "\n".join(record) + "\n")
    return out


def full_wheelhouse(dest: Path, wheel: Path) -> Path:
    """pullprint's wheel and its runtime dependencies, installable with --no-index here."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(wheel, dest / wheel.name)
    for name in ("cryptography", "cffi", "pycparser", "packaging"):
        try:
            repack_installed(name, dest)
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{name} is not installed in the test environment")
    # The station extra's packages are not all in the test environment: install the core.
    (dest / "requirements.txt").write_text("pullprint\n")
    return dest
