"""An image as a forward-only byte source (raw or `.xz`), and xz compression in constant memory.

A compressed image can only be read from the start, so the flasher asks for ranges in increasing
order (a block map lists them that way) and the source skips the holes between them by decoding
and dropping. A raw image is read with `pread`, so there the holes cost nothing.
"""

from __future__ import annotations

import lzma
import os
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from tools.imaging.errors import ImagingError

CHUNK_BYTES = 1 << 20
XZ_SUFFIX = ".xz"


class ImageSource:
    """Reads an image (`IMAGE` or `IMAGE.xz`) at increasing offsets, one chunk at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.compressed = path.name.endswith(XZ_SUFFIX)
        # Both stay open across calls; close() (or the with block) releases them.
        self._raw: BinaryIO = open(path, "rb")  # noqa: SIM115
        self._xz = lzma.LZMAFile(self._raw) if self.compressed else None  # noqa: SIM115
        self._position = 0

    def size_bytes(self) -> int | None:
        """The image's size, or None for a compressed image (the block map knows it)."""
        return None if self.compressed else os.fstat(self._raw.fileno()).st_size

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes at `offset`; fewer only at the end of the image.

        Raises:
            ImagingError: a compressed image asked to go backwards, or a corrupt xz stream.
        """
        if self._xz is None:
            return os.pread(self._raw.fileno(), length, offset)
        if offset < self._position:
            raise ImagingError(f"{self.path}: cannot seek back in a compressed image")
        try:
            while self._position < offset:  # decode and drop the hole before this range
                skipped = self._xz.read(min(CHUNK_BYTES, offset - self._position))
                if not skipped:
                    return b""
                self._position += len(skipped)
            data = self._xz.read(length)
        except (lzma.LZMAError, EOFError) as exc:
            raise ImagingError(f"{self.path}: the xz stream is damaged ({exc})") from exc
        self._position += len(data)
        return data

    def close(self) -> None:
        """Close the file."""
        if self._xz is not None:
            self._xz.close()
        self._raw.close()

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def compress_xz(image: Path, out: Path | None = None, *, preset: int = 6) -> Path:
    """Write `image` xz-compressed to `out` (default `IMAGE.xz`), streaming in 1 MiB chunks.

    Memory stays constant whatever the image size: the compressor's fixed state (about 94 MiB at
    preset 6, per xz(1); decompressing needs 9 MiB) plus one chunk. The output appears under its
    final name only when complete, so a half-written `.xz` is never mistaken for an image.
    """
    out = out or image.with_name(image.name + XZ_SUFFIX)
    temp = out.with_name(f".{out.name}.tmp")
    # CRC64 is what xz(1) writes by default; bmaptool and every xz reader accept it.
    compressor = lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=preset)
    try:
        with open(image, "rb") as src, open(temp, "wb") as dst:
            while chunk := src.read(CHUNK_BYTES):
                dst.write(compressor.compress(chunk))
            dst.write(compressor.flush())
            dst.flush()
            os.fsync(dst.fileno())
        temp.replace(out)
    finally:
        temp.unlink(missing_ok=True)
    return out
