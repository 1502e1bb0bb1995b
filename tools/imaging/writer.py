"""Write the mapped blocks of an image to a target, checking each range twice.

Invariants:
- only the block map's ranges are written, in order, each in chunks of at most `chunk_bytes`, so
  memory stays constant and a compressed image is read front to back once;
- a range's bytes are hashed as they are read from the image; a mismatch with the block map stops
  the flash at once (`ChecksumMismatchError`): the image is corrupt;
- written ranges are read back from the medium after `sync` (fsync + dropping the page cache), at
  least every `verify_every_bytes` and at the end, and must hash the same (`VerifyError`): a fake
  or failing card is caught here, not at the station's first boot;
- any OSError from the target (a pulled card gives ENODEV or EIO, a full disk ENOSPC) becomes one
  `TargetGoneError` that says how far the flash got.
"""

from __future__ import annotations

import errno
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from tools.imaging.bmap import BlockMap, BlockRange
from tools.imaging.errors import (
    ChecksumMismatchError,
    ImagingError,
    TargetGoneError,
    TargetTooSmallError,
    VerifyError,
)
from tools.imaging.source import ImageSource
from tools.imaging.targets import FlashTarget

CHUNK_BYTES = 1 << 20
VERIFY_EVERY_BYTES = 64 << 20

# (bytes written, bytes read back and verified)
ProgressCallback = Callable[[int, int], None]

_HINTS = {
    errno.ENODEV: "was the card pulled out?",
    errno.ENXIO: "was the card pulled out?",
    errno.ENOMEDIUM: "was the card pulled out?",
    errno.EIO: "the card was pulled out or is failing",
    errno.ENOSPC: "the target is full",
    errno.EROFS: "the card is write-protected",
}


@dataclass(frozen=True)
class FlashReport:
    """What a successful flash did."""

    image_bytes: int
    mapped_bytes: int
    ranges: int
    seconds: float


def _gone(exc: OSError, what: str, done_bytes: int, total_bytes: int) -> TargetGoneError:
    hint = _HINTS.get(exc.errno or 0, "the target failed")
    return TargetGoneError(
        f"{what} failed after {done_bytes / 1e6:.1f} of {total_bytes / 1e6:.1f} MB "
        f"({exc.strerror or exc}): {hint}; the card is incomplete, flash it again"
    )


class _Flash:
    """One run of `write_image`: the counters that progress and errors report."""

    def __init__(
        self,
        source: ImageSource,
        bmap: BlockMap,
        target: FlashTarget,
        on_progress: ProgressCallback,
        chunk_bytes: int,
    ) -> None:
        self.source, self.bmap, self.target = source, bmap, target
        self.on_progress = on_progress
        self.chunk_bytes = chunk_bytes
        self.total = bmap.mapped_bytes
        self.written = 0
        self.verified = 0

    def write_range(self, block_range: BlockRange) -> str:
        """Copy one range; returns the hex digest of what was written."""
        offset, length = self.bmap.byte_span(block_range)
        digest = hashlib.new(self.bmap.checksum_type)
        done = 0
        while done < length:
            chunk = self.source.read_at(offset + done, min(self.chunk_bytes, length - done))
            if not chunk:
                raise ImagingError(
                    f"{self.source.path} ends at byte {offset + done}, but the block map "
                    f"says it has {self.bmap.image_bytes}: wrong block map or truncated image"
                )
            digest.update(chunk)
            try:
                self.target.write_at(chunk, offset + done)
            except OSError as exc:
                raise _gone(exc, "writing", self.written, self.total) from exc
            done += len(chunk)
            self.written += len(chunk)
            self.on_progress(self.written, self.verified)
        actual = digest.hexdigest()
        if block_range.checksum is not None and actual != block_range.checksum:
            raise ChecksumMismatchError(
                f"{self.source.path} is corrupt: blocks {block_range.first}-{block_range.last} "
                f"do not match the block map's checksum; fetch the image again "
                f"(the card is incomplete)",
                block_range.first,
                block_range.last,
            )
        return actual

    def verify(self, written: list[tuple[BlockRange, str]]) -> None:
        """Sync, then read each range back from the medium and compare digests."""
        if not written:
            return
        try:
            self.target.sync()
            for block_range, expected in written:
                offset, length = self.bmap.byte_span(block_range)
                digest = hashlib.new(self.bmap.checksum_type)
                done = 0
                while done < length:
                    chunk = self.target.read_at(min(self.chunk_bytes, length - done), offset + done)
                    if not chunk:
                        break
                    digest.update(chunk)
                    done += len(chunk)
                    self.verified += len(chunk)
                    self.on_progress(self.written, self.verified)
                if done != length or digest.hexdigest() != expected:
                    raise VerifyError(
                        f"blocks {block_range.first}-{block_range.last} read back differently "
                        f"from what was written: the card is failing or fake; use another card"
                    )
        except OSError as exc:
            if isinstance(exc, ImagingError):
                raise
            raise _gone(exc, "reading back", self.verified, self.total) from exc


def _no_progress(written_bytes: int, verified_bytes: int) -> None:
    """Progress sink that ignores what it is told."""


def write_image(
    source: ImageSource,
    bmap: BlockMap,
    target: FlashTarget,
    *,
    on_progress: ProgressCallback = _no_progress,
    chunk_bytes: int = CHUNK_BYTES,
    verify_every_bytes: int = VERIFY_EVERY_BYTES,
) -> FlashReport:
    """Write `bmap`'s ranges of `source` to `target`, verifying as described above.

    Raises:
        TargetTooSmallError: the target's capacity is below the image size (nothing written).
        ChecksumMismatchError: the image does not match the block map.
        VerifyError: the target returned other bytes than were written.
        TargetGoneError: the target failed or vanished mid-write.
        ImagingError: the image is shorter than the block map says, or its xz stream is damaged.
    """
    capacity = target.size_bytes()
    if capacity is not None and capacity < bmap.image_bytes:
        raise TargetTooSmallError(
            f"the target holds {capacity / 1e9:.2f} GB but the image needs "
            f"{bmap.image_bytes / 1e9:.2f} GB: use a bigger card"
        )
    image_bytes = source.size_bytes()
    if image_bytes is not None and image_bytes != bmap.image_bytes:
        raise ImagingError(
            f"the block map is for an image of {bmap.image_bytes} bytes, but {source.path} "
            f"has {image_bytes}: wrong block map?"
        )
    started = time.monotonic()
    flash = _Flash(source, bmap, target, on_progress, chunk_bytes)
    pending: list[tuple[BlockRange, str]] = []
    pending_bytes = 0
    for block_range in bmap.ranges:
        pending.append((block_range, flash.write_range(block_range)))
        pending_bytes += bmap.byte_span(block_range)[1]
        if pending_bytes >= verify_every_bytes:
            flash.verify(pending)
            pending, pending_bytes = [], 0
    flash.verify(pending)
    return FlashReport(
        bmap.image_bytes, bmap.mapped_bytes, len(bmap.ranges), time.monotonic() - started
    )
