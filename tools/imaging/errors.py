"""The imaging exception tree; each leaf also inherits the builtin it resembles.

ImagingError
├── BmapError (ValueError)            a block map that is malformed or fails its own checksum
├── ChecksumMismatchError (ValueError) image blocks that differ from the block map
├── VerifyError (OSError)              blocks read back from the card differ from those written
├── TargetRefusedError (PermissionError) a system, mounted or otherwise unsafe target
├── TargetTooSmallError (ValueError)   the card is smaller than the image
├── TargetGoneError (OSError)          the card was pulled or failed mid-write
└── BootPartitionError (ValueError)    no FAT boot partition, or mtools failed
"""

from __future__ import annotations


class ImagingError(Exception):
    """Root of every error raised by `tools.imaging`."""


class BmapError(ImagingError, ValueError):
    """A block map that cannot be parsed, or whose own checksum is wrong."""


class ChecksumMismatchError(ImagingError, ValueError):
    """A range of image blocks whose sha256 differs from the block map's."""

    def __init__(self, message: str, first_block: int, last_block: int) -> None:
        super().__init__(message)
        self.first_block = first_block
        self.last_block = last_block


class VerifyError(ImagingError, OSError):
    """Blocks read back from the target after fsync differ from what was written."""


class TargetRefusedError(ImagingError, PermissionError):
    """The target is a system disk, is mounted, is a partition, or is the image itself."""


class TargetTooSmallError(ImagingError, ValueError):
    """The target holds fewer bytes than the image."""


class TargetGoneError(ImagingError, OSError):
    """The target vanished or failed mid-write (ENODEV, EIO, ENOSPC, ...)."""


class BootPartitionError(ImagingError, ValueError):
    """The image has no FAT boot partition we can edit, or an mtools command failed."""
