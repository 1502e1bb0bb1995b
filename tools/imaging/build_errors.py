"""Errors of `pullprint image build`, under the imaging root; each leaf also a builtin.

ImagingError (tools.imaging.errors)
└── ImageBuildError                  the build stopped; nothing usable was left at --out
    ├── BaseImageError (ValueError)   the base is not a Raspberry Pi OS layout, or is unusable
    ├── Ext4EditError (OSError)       debugfs/mke2fs/e2fsck failed or left something unexpected
    ├── WheelhouseError (ValueError)  no pullprint wheel, a stray file, or a download that failed
    ├── RecipeError (ValueError)      images/ is incomplete, or a path the tools cannot take
    └── ToolMissingError (FileNotFoundError)  a needed program is not installed (names the package)
"""

from __future__ import annotations

from tools.imaging.errors import ImagingError


class ImageBuildError(ImagingError):
    """Root of every error raised while building a station image."""


class BaseImageError(ImageBuildError, ValueError):
    """The base image is not partition 1 FAT + partition 2 ext4, or cannot take the edits."""


class Ext4EditError(ImageBuildError, OSError):
    """An edit of an ext4 partition failed, or reading it back showed something else."""


class WheelhouseError(ImageBuildError, ValueError):
    """The wheelhouse lacks the pullprint wheel, holds a non-wheel, or could not be built."""


class RecipeError(ImageBuildError, ValueError):
    """The recipe folder (images/) is incomplete, or names a path the tools cannot handle."""


class ToolMissingError(ImageBuildError, FileNotFoundError):
    """A program the build runs is missing; the message names the Debian package."""
