"""The base image's layout: copy it sparsely, check it is Raspberry Pi OS-shaped, add a partition.

Raspberry Pi OS images are an MBR with partition 1 FAT (the firmware's boot partition, mounted
at /boot/firmware) and partition 2 ext4 (the root). Anything else is refused before any edit,
with what was found, because editing the wrong partition of an unknown image fails late and
obscurely.

Invariants: the output image is sparse (runs of zero blocks in the base become holes, so the
block map lists only data); partitions are only ever appended, never moved.
"""

from __future__ import annotations

import lzma
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tools.imaging.bootfs import SECTOR_BYTES, TABLE_BYTES, Partition, read_partitions
from tools.imaging.build_errors import BaseImageError, Ext4EditError
from tools.imaging.errors import BootPartitionError
from tools.imaging.source import CHUNK_BYTES, XZ_SUFFIX
from tools.imaging.tools_run import last_line, run_tool

MIB = 1 << 20
_ZERO_BLOCK = bytes(4096)
_EXT_MAGIC = 0xEF53
_SUPERBLOCK = 1024
# Data partition: aligned like Raspberry Pi OS's own (4 MiB), and labelled for /etc/fstab.
ALIGN_BYTES = 4 * MIB
DATA_LABEL = "ppdata"


@dataclass(frozen=True)
class PiLayout:
    """Where the boot and root partitions are, and whether the table is an MBR."""

    boot: Partition
    root: Partition
    partitions: tuple[Partition, ...]
    is_mbr: bool


def _write_sparse(src: BinaryIO, dst: BinaryIO) -> int:
    """Copy `src` to `dst`, seeking over all-zero 4 KiB blocks; returns the bytes copied."""
    total = 0
    while chunk := src.read(CHUNK_BYTES):
        for at in range(0, len(chunk), 4096):
            block = chunk[at : at + 4096]
            if block == _ZERO_BLOCK[: len(block)]:
                dst.seek(len(block), os.SEEK_CUR)
            else:
                dst.write(block)
        total += len(chunk)
    dst.truncate(total)  # a trailing hole still counts towards the size
    return total


def copy_base(base: Path, out: Path) -> int:
    """Copy `base` (raw or `.xz`) to `out` as a sparse file; returns its size in bytes.

    Raises:
        BaseImageError: the base is missing, empty, or a damaged xz stream.
    """
    if not base.is_file():
        raise BaseImageError(f"{base}: no such base image")
    try:
        with open(base, "rb") as raw, open(out, "wb") as dst:
            if base.name.endswith(XZ_SUFFIX):
                with lzma.LZMAFile(raw) as src:
                    size = _write_sparse(src, dst)  # type: ignore[arg-type]
            else:
                size = _write_sparse(raw, dst)
    except lzma.LZMAError as exc:
        raise BaseImageError(f"{base}: the xz stream is damaged ({exc})") from exc
    if size == 0:
        raise BaseImageError(f"{base} is empty")
    return size


def _describe(partitions: tuple[Partition, ...]) -> str:
    if not partitions:
        return "no partitions"
    return ", ".join(
        f"{p.number}: {'FAT' if p.is_fat else 'other'} {p.size_bytes // MIB} MiB"
        for p in partitions
    )


def inspect_base(image: Path) -> PiLayout:
    """Check that `image` is partition 1 FAT + partition 2 ext4; returns where they are.

    Raises:
        BaseImageError: no partition table, or not that layout (the message says what is there).
    """
    with open(image, "rb") as f:
        head = f.read(TABLE_BYTES)
        size = os.fstat(f.fileno()).st_size
        try:
            partitions = tuple(read_partitions(head))
        except BootPartitionError as exc:
            raise BaseImageError(f"not a Raspberry Pi OS image: {exc}") from exc
        by_number = {p.number: p for p in partitions}
        boot, root = by_number.get(1), by_number.get(2)
        wanted = "partition 1 FAT (boot) and partition 2 ext4 (root)"
        if boot is None or root is None or not boot.is_fat:
            raise BaseImageError(
                f"not a Raspberry Pi OS image: it needs {wanted}; it has {_describe(partitions)}"
            )
        for part in (boot, root):
            if part.start_bytes + part.size_bytes > size:
                raise BaseImageError(f"partition {part.number} runs past the end of the image")
        f.seek(root.start_bytes + _SUPERBLOCK + 56)
        (magic,) = struct.unpack("<H", f.read(2) or b"\0\0")
    if magic != _EXT_MAGIC:
        raise BaseImageError(
            f"not a Raspberry Pi OS image: it needs {wanted}; partition 2 holds no ext2/3/4"
        )
    return PiLayout(boot, root, partitions, is_mbr=head[450] != 0xEE)


def ext4_free_bytes(image: Path, partition: Partition) -> int:
    """Free space of the ext4 file system in `partition`, from its superblock."""
    with open(image, "rb") as f:
        f.seek(partition.start_bytes + _SUPERBLOCK)
        sb = f.read(1024)
    # s_free_blocks_count_lo at 12, s_log_block_size at 24, s_free_blocks_count_hi at 0x158.
    free_lo: int = struct.unpack_from("<I", sb, 12)[0]
    log_block: int = struct.unpack_from("<I", sb, 24)[0]
    free_hi: int = struct.unpack_from("<I", sb, 0x158)[0]
    return (free_lo | free_hi << 32) * (1024 << log_block)


def append_data_partition(image: Path, layout: PiLayout, size_mib: int) -> Partition:
    """Grow `image` by a new partition 3 of `size_mib`, holding an empty ext4 labelled ppdata.

    The file grows as a hole, and mke2fs writes only its metadata, so an unused data partition
    costs almost nothing in the block map or the .xz. mke2fs zeroes the journal with
    fallocate(ZERO_RANGE): those blocks read as zeros but the kernel lists them as data only
    once they are in its page cache, so a block map may or may not include them. Either way a
    card keeps its old bytes there, which ext4 ignores: an empty journal is never replayed.

    Raises:
        BaseImageError: the table is not an MBR, or partition 3 or 4 is taken.
        Ext4EditError: sfdisk or mke2fs failed.
    """
    if not layout.is_mbr:
        raise BaseImageError("a data partition can only be added to an MBR image (Pi OS uses one)")
    if any(p.number > 2 for p in layout.partitions):
        raise BaseImageError("the base already has a partition 3 or 4; not adding a data partition")
    if not 16 <= size_mib <= 1 << 20:
        raise BaseImageError("--data-size is in MiB, from 16 to 1048576")
    end = max(p.start_bytes + p.size_bytes for p in layout.partitions)
    start = -(-max(end, image.stat().st_size) // ALIGN_BYTES) * ALIGN_BYTES
    size = size_mib * MIB
    with open(image, "r+b") as f:
        f.truncate(start + size)
    script = f"start={start // SECTOR_BYTES}, size={size // SECTOR_BYTES}, type=83\n"
    done = run_tool(
        "sfdisk",
        ["--append", "--no-reread", "--no-tell-kernel", "-q", str(image)],
        stdin=script.encode(),
    )
    if done.returncode != 0:
        raise Ext4EditError(f"sfdisk could not add the data partition: {last_line(done)}")
    done = run_tool(
        "mke2fs",
        [
            *("-q", "-F", "-t", "ext4", "-L", DATA_LABEL),
            *("-E", f"offset={start},nodiscard", str(image), f"{size // 1024}k"),
        ],
    )
    if done.returncode != 0:
        raise Ext4EditError(f"mke2fs could not make the data partition: {last_line(done)}")
    return Partition(3, start, size, is_fat=False)
