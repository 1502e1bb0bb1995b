"""What `pullprint flash` may write to, and the port it writes through.

`inspect_target` decides, using only `stat`, sysfs and /proc (it never opens the target), whether a
path may be written: a regular file (a copy of the card, used by tests) or a whole, unmounted,
writable disk that does not hold the running system. A partition, a disk with any partition (or
device-mapper/RAID holder of one) mounted or used as swap, the disk of `/`, and the image itself
are refused before anything is opened for writing.

`FlashTarget` is the write port: `FileTarget` over a file or block device, and `SimulatedCard`, an
in-memory card that can be made too small or pulled after N bytes, for tests and demos.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tools.imaging.errors import TargetRefusedError


@dataclass(frozen=True)
class TargetInfo:
    """What `inspect_target` found: enough to ask the operator "write to this?"."""

    path: Path
    is_block_device: bool
    size_bytes: int | None  # None: a regular file, which grows to the image's size
    description: str
    existing_bytes: int = 0  # a regular file's current size: non-zero means data to overwrite


@dataclass(frozen=True)
class SystemView:
    """Where to read the kernel's view of disks and mounts (tests point it at a fake tree)."""

    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    root: Path = Path("/")


def _dev_id(rdev: int) -> str:
    return f"{os.major(rdev)}:{os.minor(rdev)}"


def _read(path: Path, default: str = "") -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return default


def _disk_family(disk_dir: Path) -> dict[str, str]:
    """dev id -> name for the disk, its partitions, and everything stacked on them (dm, md)."""
    family: dict[str, str] = {}
    pending = [disk_dir]
    pending += [p for p in disk_dir.iterdir() if (p / "partition").exists()]
    while pending:
        node = pending.pop()
        dev = _read(node / "dev")
        if not dev or dev in family:
            continue
        family[dev] = node.name
        holders = node / "holders"
        if holders.is_dir():
            pending += [h.resolve() for h in holders.iterdir()]
    return family


def _mounted_devices(view: SystemView) -> dict[str, str]:
    """dev id -> where it is used (mount point or "swap"), from mountinfo, mounts and swaps."""
    used: dict[str, str] = {}
    for line in _read(view.proc / "self/mountinfo").splitlines():
        fields = line.split()
        if len(fields) > 4:
            used.setdefault(fields[2], fields[4])
    # btrfs and others report an anonymous 0:N in mountinfo: the source path names the real disk.
    sources = [
        (line.split()[0], line.split()[1])
        for line in _read(view.proc / "mounts").splitlines()
        if len(line.split()) > 1
    ]
    sources += [
        (line.split()[0], "swap")
        for line in _read(view.proc / "swaps").splitlines()[1:]
        if line.split()
    ]
    for source, where in sources:
        if not source.startswith("/"):
            continue
        try:
            st = os.stat(source)
        except OSError:
            continue
        if stat.S_ISBLK(st.st_mode):
            used.setdefault(_dev_id(st.st_rdev), where)
    return used


def _human_bytes(size_bytes: int) -> str:
    return f"{size_bytes / 1e9:.1f} GB" if size_bytes >= 1e9 else f"{size_bytes / 1e6:.1f} MB"


def inspect_target(path: Path, image: Path, view: SystemView | None = None) -> TargetInfo:
    """Check that `path` may be flashed; never opens it.

    Raises:
        TargetRefusedError: a partition, a mounted/system/swap disk, a read-only disk, a
            character device, or the image itself.
    """
    view = view or SystemView()
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if str(path).startswith("/dev/"):
            # A typo under /dev would otherwise quietly create a regular file there.
            raise TargetRefusedError(f"{path} does not exist (is the card inserted?)") from None
        return TargetInfo(path, False, None, f"new file {path}")
    if stat.S_ISREG(st.st_mode):
        if image.exists() and os.path.samefile(path, image):
            raise TargetRefusedError(f"{path} is the image itself")
        return TargetInfo(path, False, None, f"file {path}", existing_bytes=st.st_size)
    if not stat.S_ISBLK(st.st_mode):
        raise TargetRefusedError(f"{path} is neither a disk (block device) nor a regular file")

    dev = _dev_id(st.st_rdev)
    disk_dir = (view.sys / "dev/block" / dev).resolve()
    if not disk_dir.is_dir():
        raise TargetRefusedError(f"{path}: the kernel does not list block device {dev}")
    if (disk_dir / "partition").exists():
        raise TargetRefusedError(
            f"{path} is a partition of {disk_dir.parent.name}: give the whole disk, "
            f"/dev/{disk_dir.parent.name}"
        )
    family = _disk_family(disk_dir)
    root_dev = _dev_id(os.stat(view.root).st_dev)
    used = _mounted_devices(view)
    for member, name in family.items():
        if member == root_dev or used.get(member) == "/":
            raise TargetRefusedError(f"{path} holds the running system (/ is on {name})")
    for member, name in family.items():
        if member in used:
            where = used[member]
            what = "is in use as swap" if where == "swap" else f"is mounted at {where}"
            raise TargetRefusedError(f"{path}: {name} {what}; unmount it first")
    if _read(disk_dir / "ro") == "1":
        raise TargetRefusedError(f"{path} is read-only (is the card's lock switch on?)")
    size_bytes = int(_read(disk_dir / "size", "0")) * 512  # sysfs counts 512-byte sectors
    model = " ".join(
        part
        for part in (_read(disk_dir / "device/vendor"), _read(disk_dir / "device/model"))
        if part
    )
    removable = "removable" if _read(disk_dir / "removable") == "1" else "NOT removable"
    description = f"{path}: {model or disk_dir.name}, {_human_bytes(size_bytes)}, {removable}"
    return TargetInfo(path, True, size_bytes, description)


class FlashTarget(Protocol):
    """Where an image is written: a card, a disk, a file, or a simulated card."""

    def size_bytes(self) -> int | None:
        """Capacity in bytes, or None when the target grows as written (a regular file)."""

    def write_at(self, data: bytes, offset: int) -> None:
        """Write all of `data` at `offset`; raises OSError when the medium fails."""

    def read_at(self, length: int, offset: int) -> bytes:
        """Read back `length` bytes at `offset` from the medium (not a cache, after `sync`)."""

    def sync(self) -> None:
        """Make what was written durable, and drop it from caches so reads hit the medium."""

    def close(self) -> None:
        """Release the target."""


class FileTarget:
    """A block device or regular file, written with `pwrite` and read back with `pread`."""

    def __init__(self, info: TargetInfo, image_bytes: int) -> None:
        self.info = info
        if info.is_block_device:
            # O_EXCL on a block device makes the kernel refuse it while anything (a mount, a
            # device-mapper table) holds it: a second guard, closing the race after inspection.
            self._fd = os.open(info.path, os.O_RDWR | os.O_EXCL | os.O_CLOEXEC)
        else:
            # Like bmaptool: a regular file becomes exactly the image, holes and all.
            self._fd = os.open(info.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            os.ftruncate(self._fd, image_bytes)

    def size_bytes(self) -> int | None:
        """The device's capacity; None for a regular file."""
        return os.lseek(self._fd, 0, os.SEEK_END) if self.info.is_block_device else None

    def write_at(self, data: bytes, offset: int) -> None:
        """Write all of `data` (pwrite may write less than asked)."""
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            if written == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view, offset = view[written:], offset + written

    def read_at(self, length: int, offset: int) -> bytes:
        """Read back from the medium."""
        return os.pread(self._fd, length, offset)

    def sync(self) -> None:
        """fsync, then drop the now-clean pages so the read-back comes from the card."""
        os.fsync(self._fd)
        os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_DONTNEED)

    def close(self) -> None:
        """Close the descriptor."""
        os.close(self._fd)


@dataclass
class SimulatedCard:
    """An in-memory card: fixed capacity, optionally pulled (OSError) after `fail_after_bytes`.

    Observable: `data` holds what was written, `bytes_written` counts it, `syncs` counts syncs.
    """

    capacity_bytes: int
    fail_after_bytes: int | None = None
    fail_errno: int = errno.ENODEV
    data: bytearray = field(init=False)
    bytes_written: int = 0
    syncs: int = 0

    def __post_init__(self) -> None:
        self.data = bytearray(self.capacity_bytes)

    def size_bytes(self) -> int | None:
        """The fixed capacity."""
        return self.capacity_bytes

    def write_at(self, data: bytes, offset: int) -> None:
        """Store `data`, or fail the way a pulled card does once the budget is spent."""
        if self.fail_after_bytes is not None and self.bytes_written + len(data) > (
            self.fail_after_bytes
        ):
            raise OSError(self.fail_errno, os.strerror(self.fail_errno))
        if offset + len(data) > self.capacity_bytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.data[offset : offset + len(data)] = data
        self.bytes_written += len(data)

    def read_at(self, length: int, offset: int) -> bytes:
        """What the card holds."""
        return bytes(self.data[offset : offset + length])

    def sync(self) -> None:
        """Count the sync."""
        self.syncs += 1

    def close(self) -> None:
        """Nothing to release."""
