"""Block maps in Debian bmaptool's XML format 2.0: create one from a sparse file, parse one.

A block map lists the ranges of 4 KiB blocks of an image that hold data; a flasher writes only
those and skips the holes, which for an SD-card image is most of it. Every range carries the sha256
of its bytes, and the file carries `BmapFileChecksum`: the sha256 of the whole file computed while
that field holds only ASCII zeros (bmaptools `BmapCreate._bmap_file_end` and
`BmapCopy._verify_bmap_checksum`, bmap-tools 3.6).

Invariants of a `BlockMap` (checked by `parse_bmap`, guaranteed by `create_bmap`):
- `blocks_count == ceil(image_bytes / block_bytes)`;
- ranges are sorted, do not overlap, and lie inside the image;
- the last block may be partial: a range's bytes (and its checksum) stop at `image_bytes`.

Which blocks are mapped comes from the file system (SEEK_DATA/SEEK_HOLE), as in bmaptool: an
allocated block of zeros is still data, a hole is not.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tools.imaging.errors import BmapError

BLOCK_BYTES = 4096
FORMAT_VERSION = "2.0"
_HASH_CHUNK_BYTES = 1 << 20
_FILE_CHECKSUM = re.compile(rb"(<BmapFileChecksum>\s*)([0-9A-Fa-f]+)(\s*</BmapFileChecksum>)")


@dataclass(frozen=True)
class BlockRange:
    """Blocks `first`..`last` (inclusive) of the image, and the hex digest of their bytes."""

    first: int
    last: int
    checksum: str | None

    @property
    def blocks(self) -> int:
        """How many blocks the range covers."""
        return self.last - self.first + 1


@dataclass(frozen=True)
class BlockMap:
    """What a flasher needs: the image size, the block size, and the mapped ranges."""

    image_bytes: int
    block_bytes: int
    ranges: tuple[BlockRange, ...]
    checksum_type: str = "sha256"

    @property
    def blocks_count(self) -> int:
        """Blocks in the image, the last one possibly partial."""
        return -(-self.image_bytes // self.block_bytes)

    @property
    def mapped_blocks_count(self) -> int:
        """Blocks that hold data."""
        return sum(r.blocks for r in self.ranges)

    def byte_span(self, block_range: BlockRange) -> tuple[int, int]:
        """The range's bytes as (offset, length), clipped at the end of the image."""
        start = block_range.first * self.block_bytes
        end = min((block_range.last + 1) * self.block_bytes, self.image_bytes)
        return start, end - start

    @property
    def mapped_bytes(self) -> int:
        """Bytes a flasher writes."""
        return sum(self.byte_span(r)[1] for r in self.ranges)


def data_extents(fd: int, size_bytes: int) -> Iterator[tuple[int, int]]:
    """Yield (start, end) byte offsets of the data (non-hole) parts of an open file.

    File systems without hole support report the whole file as data, which is correct, only slower
    to flash.
    """
    offset = 0
    while offset < size_bytes:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data after `offset`: the rest is one hole
                return
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, min(end, size_bytes)
        offset = end


def mapped_blocks(fd: int, size_bytes: int, block_bytes: int) -> list[tuple[int, int]]:
    """Inclusive (first, last) block ranges covering the file's data, merged where they touch."""
    merged: list[tuple[int, int]] = []
    for start, end in data_extents(fd, size_bytes):
        if end <= start:
            continue
        # A file system block smaller than ours can leave an extent mid-block: widen it.
        first, last = start // block_bytes, (end - 1) // block_bytes
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return merged


def _range_checksum(fd: int, start: int, length: int, checksum_type: str) -> str:
    digest = hashlib.new(checksum_type)
    done = 0
    while done < length:
        chunk = os.pread(fd, min(_HASH_CHUNK_BYTES, length - done), start + done)
        if not chunk:
            raise BmapError(f"image ended early at byte {start + done}")
        digest.update(chunk)
        done += len(chunk)
    return digest.hexdigest()


def create_bmap(image: Path, block_bytes: int = BLOCK_BYTES) -> BlockMap:
    """Map the data blocks of `image` (a sparse file) and checksum each range.

    Raises:
        BmapError: the image is empty.
    """
    with open(image, "rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        if size == 0:
            raise BmapError(f"{image} is empty: there is nothing to map")
        ranges: list[BlockRange] = []
        for first, last in mapped_blocks(fd, size, block_bytes):
            start = first * block_bytes
            end = min((last + 1) * block_bytes, size)
            checksum = _range_checksum(fd, start, end - start, "sha256")
            ranges.append(BlockRange(first, last, checksum))
    return BlockMap(size, block_bytes, tuple(ranges))


def _human(size_bytes: int) -> str:
    if size_bytes < 1024:
        return f"{size_bytes} bytes"
    exponent = min(3, (size_bytes.bit_length() - 1) // 10)
    return f"{size_bytes / 1024**exponent:.1f} {('KiB', 'MiB', 'GiB')[exponent - 1]}"


def render_bmap(bmap: BlockMap) -> str:
    """The XML text of `bmap`, with its `BmapFileChecksum` filled in."""
    digest_len = hashlib.new(bmap.checksum_type).digest_size * 2
    percent = 100.0 * bmap.mapped_blocks_count / max(bmap.blocks_count, 1)
    lines = [
        '<?xml version="1.0" ?>',
        "<!-- Block map of an image: only the listed blocks hold data and need writing.",
        "     Made by PullPrint (tools/imaging/bmap.py) in Debian bmaptool's format. -->",
        f'<bmap version="{FORMAT_VERSION}">',
        f"    <!-- Image size in bytes: {_human(bmap.image_bytes)} -->",
        f"    <ImageSize> {bmap.image_bytes} </ImageSize>",
        "    <!-- Size of a block in bytes -->",
        f"    <BlockSize> {bmap.block_bytes} </BlockSize>",
        "    <!-- Count of blocks in the image file -->",
        f"    <BlocksCount> {bmap.blocks_count} </BlocksCount>",
        f"    <!-- Count of mapped blocks: {_human(bmap.mapped_blocks_count * bmap.block_bytes)}"
        f" or {percent:.1f}% -->",
        f"    <MappedBlocksCount> {bmap.mapped_blocks_count} </MappedBlocksCount>",
        "    <!-- Type of checksum used in this file -->",
        f"    <ChecksumType> {bmap.checksum_type} </ChecksumType>",
        "    <!-- The checksum of this bmap file. When it is calculated, the value of",
        '         the checksum has be zero (all ASCII "0" symbols).  -->',
        f"    <BmapFileChecksum> {'0' * digest_len} </BmapFileChecksum>",
        "    <!-- The block map: ranges of blocks, each with the checksum of its bytes -->",
        "    <BlockMap>",
    ]
    for r in bmap.ranges:
        attr = f' chksum="{r.checksum}"' if r.checksum else ""
        span = f"{r.first}-{r.last}" if r.last != r.first else f"{r.first}"
        lines.append(f"        <Range{attr}> {span} </Range>")
    lines += ["    </BlockMap>", "</bmap>", ""]
    raw = "\n".join(lines).encode("ascii")
    file_checksum = hashlib.new(bmap.checksum_type, raw).hexdigest().encode("ascii")
    match = _FILE_CHECKSUM.search(raw)
    assert match is not None  # written just above
    return (raw[: match.start(2)] + file_checksum + raw[match.end(2) :]).decode("ascii")


def write_bmap(bmap: BlockMap, path: Path) -> None:
    """Write `bmap` to `path` (replaced atomically, so a reader never sees half a map)."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(render_bmap(bmap), encoding="ascii")
    temp.replace(path)


def _verify_file_checksum(raw: bytes, checksum_type: str) -> None:
    match = _FILE_CHECKSUM.search(raw)
    if match is None:
        raise BmapError("the block map has no BmapFileChecksum")
    stated = match.group(2).decode().lower()
    zeroed = raw[: match.start(2)] + b"0" * len(stated) + raw[match.end(2) :]
    actual = hashlib.new(checksum_type, zeroed).hexdigest()
    if actual != stated:
        raise BmapError(
            f"the block map is damaged: its checksum is {actual}, the file says {stated}"
        )


def _int_field(root: ET.Element, tag: str) -> int:
    element = root.find(tag)
    if element is None or element.text is None:
        raise BmapError(f"the block map has no {tag}")
    try:
        value = int(element.text.strip())
    except ValueError:
        raise BmapError(f"{tag} is not a number: {element.text.strip()[:40]!r}") from None
    if value < 0:
        raise BmapError(f"{tag} is negative")
    return value


def _parse_range(element: ET.Element, checksum_type: str, digest_len: int) -> BlockRange:
    text = (element.text or "").strip()
    first_s, _, last_s = text.partition("-")
    try:
        first = int(first_s)
        last = int(last_s) if last_s else first
    except ValueError:
        raise BmapError(f"bad block range {text[:40]!r}") from None
    if first < 0 or last < first:
        raise BmapError(f"bad block range {text[:40]!r}")
    checksum = element.get("chksum")
    if checksum is not None and not re.fullmatch(f"[0-9a-fA-F]{{{digest_len}}}", checksum):
        raise BmapError(f"range {text[:40]} has a malformed {checksum_type} checksum")
    return BlockRange(first, last, checksum.lower() if checksum else None)


def parse_bmap(raw: bytes) -> BlockMap:
    """Parse and check a version 2.x (or the identical 1.4) block map.

    Raises:
        BmapError: not a block map, an unsupported version, a wrong file checksum, or ranges
            that break the invariants above.
    """
    # A bmap never has a DTD; refusing one rules out entity expansion attacks before expat runs.
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise BmapError("the block map has a DTD; bmap files never do")
    try:
        root = ET.fromstring(raw)  # noqa: S314 - no DTD (checked above), so no entities to expand
    except ET.ParseError as exc:
        raise BmapError(f"the block map is not valid XML: {exc}") from None
    version = root.get("version", "")
    if root.tag != "bmap" or (version.split(".")[0] != "2" and version != "1.4"):
        raise BmapError(f"not a bmap of version 2.x (root <{root.tag}> version {version!r})")
    type_element = root.find("ChecksumType")
    checksum_type = (type_element.text or "").strip().lower() if type_element is not None else ""
    if checksum_type not in hashlib.algorithms_guaranteed or checksum_type.startswith("shake"):
        raise BmapError(f"unsupported checksum type {checksum_type[:20]!r}")
    _verify_file_checksum(raw, checksum_type)
    image_bytes = _int_field(root, "ImageSize")
    block_bytes = _int_field(root, "BlockSize")
    if block_bytes == 0 or block_bytes % 512:
        raise BmapError(f"block size {block_bytes} is not a positive multiple of 512")
    bmap_ranges = root.find("BlockMap")
    if bmap_ranges is None:
        raise BmapError("the block map has no BlockMap")
    digest_len = hashlib.new(checksum_type).digest_size * 2
    ranges = tuple(_parse_range(e, checksum_type, digest_len) for e in bmap_ranges.iter("Range"))
    bmap = BlockMap(image_bytes, block_bytes, ranges, checksum_type)
    if _int_field(root, "BlocksCount") != bmap.blocks_count:
        raise BmapError("BlocksCount does not match ImageSize / BlockSize")
    if _int_field(root, "MappedBlocksCount") != bmap.mapped_blocks_count:
        raise BmapError("MappedBlocksCount does not match the ranges")
    previous_last = -1
    for r in ranges:
        if r.first <= previous_last:
            raise BmapError(f"block ranges overlap or are out of order at block {r.first}")
        if r.last >= bmap.blocks_count:
            raise BmapError(f"block range {r.first}-{r.last} lies beyond the image")
        previous_last = r.last
    return bmap
