"""Block maps: equal to `bmaptool create`, accepted by `bmaptool copy`, parsed strictly; xz."""

from __future__ import annotations

import contextlib
import hashlib
import lzma
import subprocess
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tools.disk_images import IMAGE_BYTES, make_image, require, run
from tools.imaging.bmap import (
    BlockMap,
    BlockRange,
    create_bmap,
    mapped_blocks,
    parse_bmap,
    render_bmap,
    write_bmap,
)
from tools.imaging.errors import BmapError, ImagingError
from tools.imaging.source import ImageSource, compress_xz


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return make_image(tmp_path / "station.img")


def test_our_map_equals_bmaptool_create(image: Path, tmp_path: Path) -> None:
    require("bmaptool")
    run("bmaptool", "create", "-o", tmp_path / "theirs.bmap", image)
    theirs = parse_bmap((tmp_path / "theirs.bmap").read_bytes())
    ours = create_bmap(image)
    assert ours == theirs
    assert ours.image_bytes == IMAGE_BYTES
    assert ours.blocks_count > ours.mapped_blocks_count > 0  # holes were found
    assert ours.ranges[-1].last == ours.blocks_count - 1  # the partial last block is mapped


@pytest.mark.parametrize("compressed", [False, True])
def test_bmaptool_copy_accepts_our_map_and_xz(
    image: Path, tmp_path: Path, compressed: bool
) -> None:
    require("bmaptool")
    bmap_path = tmp_path / "station.img.bmap"
    write_bmap(create_bmap(image), bmap_path)
    source = compress_xz(image) if compressed else image
    out = tmp_path / "copy.img"
    run("bmaptool", "copy", "--bmap", bmap_path, source, out)
    assert out.read_bytes() == image.read_bytes()


def test_bmaptool_copy_rejects_a_damaged_range_of_ours(image: Path, tmp_path: Path) -> None:
    require("bmaptool")
    bmap = create_bmap(image)
    write_bmap(bmap, tmp_path / "station.img.bmap")
    offset = bmap.byte_span(bmap.ranges[2])[0]
    with open(image, "r+b") as f:  # flip one byte inside a mapped range
        f.seek(offset + 10)
        byte = f.read(1)
        f.seek(offset + 10)
        f.write(bytes([byte[0] ^ 0xFF]))
    done = subprocess.run(
        ["bmaptool", "copy", "--bmap", str(tmp_path / "station.img.bmap"), str(image),
         str(tmp_path / "out.img")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "checksum mismatch" in done.stderr


def test_file_checksum_is_checked(image: Path) -> None:
    text = render_bmap(create_bmap(image))
    parse_bmap(text.encode())
    tampered = text.replace("<MappedBlocksCount> ", "<MappedBlocksCount> 1", 1)
    with pytest.raises(BmapError, match="damaged"):
        parse_bmap(tampered.encode())


def test_range_checksum_covers_only_the_image_bytes(tmp_path: Path) -> None:
    path = tmp_path / "odd.img"
    path.write_bytes(b"x" * 5000)  # one full block and 904 bytes of a second
    bmap = create_bmap(path)
    assert bmap.blocks_count == 2
    assert bmap.ranges == (BlockRange(0, 1, hashlib.sha256(b"x" * 5000).hexdigest()),)
    assert bmap.mapped_bytes == 5000


def test_extents_inside_one_block_widen_to_the_block(tmp_path: Path) -> None:
    path = tmp_path / "sparse.img"
    with open(path, "wb") as f:
        f.truncate(1 << 20)
        f.seek(8192 + 100)
        f.write(b"data")
    with open(path, "rb") as f:
        assert mapped_blocks(f.fileno(), 1 << 20, 4096) == [(2, 2)]


def _bmap(image_bytes: int, ranges: list[tuple[int, int]]) -> str:
    return render_bmap(
        BlockMap(image_bytes, 4096, tuple(BlockRange(a, b, "ab" * 32) for a, b in ranges))
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_bmap(40960, [(0, 3), (3, 5)]), "overlap"),
        (_bmap(40960, [(4, 5), (0, 1)]), "overlap or are out of order"),
        (_bmap(40960, [(0, 10)]), "beyond the image"),
        (_bmap(40960, [(0, 1)]).replace('version="2.0"', 'version="3.0"'), "version"),
        ('<?xml version="1.0"?><!DOCTYPE bmap [<!ENTITY a "b">]><bmap/>', "DTD"),
        ("not xml", "not valid XML"),
    ],
)
def test_parse_rejects(text: str, message: str) -> None:
    with pytest.raises(BmapError, match=message):
        parse_bmap(text.encode())


@st.composite
def block_maps(draw: st.DrawFn) -> BlockMap:
    blocks = draw(st.integers(1, 10_000))
    image_bytes = draw(st.integers((blocks - 1) * 4096 + 1, blocks * 4096))
    cuts = sorted(set(draw(st.lists(st.integers(0, blocks - 1), max_size=12))))
    ranges = [
        BlockRange(a, b, draw(st.binary(min_size=32, max_size=32)).hex())
        for a, b in zip(cuts[::2], cuts[1::2], strict=False)
    ]
    return BlockMap(image_bytes, 4096, tuple(ranges))


@given(block_maps())
def test_render_parse_round_trip(bmap: BlockMap) -> None:
    assert parse_bmap(render_bmap(bmap).encode()) == bmap


@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_parse_raises_only_bmap_error_on_junk(raw: bytes) -> None:
    with contextlib.suppress(BmapError):
        parse_bmap(raw)


def _peak_bytes_compressing(image: Path, size_bytes: int) -> int:
    with open(image, "wb") as f:
        f.truncate(size_bytes)
        f.seek(size_bytes // 2)
        f.write(b"pullprint" * 1000)
    tracemalloc.start()  # lzma allocates through PyMem_Raw*, which tracemalloc sees too
    try:
        out = compress_xz(image, preset=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lzma.decompress(out.read_bytes()) == image.read_bytes()
    return peak


def test_xz_is_streamed_in_constant_memory(tmp_path: Path) -> None:
    small = _peak_bytes_compressing(tmp_path / "small.img", 8 << 20)
    big = _peak_bytes_compressing(tmp_path / "big.img", 64 << 20)
    # The compressor's own state plus a chunk, whatever the image size.
    assert big < small + (2 << 20), (small, big)
    assert (tmp_path / "big.img.xz").is_file()
    assert not list(tmp_path.glob(".*tmp"))


def test_image_source_reads_xz_forward_only(image: Path) -> None:
    raw = image.read_bytes()
    with ImageSource(compress_xz(image)) as source:
        assert source.size_bytes() is None
        assert source.read_at(4096, 100) == raw[4096:4196]
        assert source.read_at(10 << 20, 50) == raw[10 << 20 : (10 << 20) + 50]
        with pytest.raises(ImagingError, match="cannot seek back"):
            source.read_at(0, 1)
