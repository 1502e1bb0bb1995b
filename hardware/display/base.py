"""The `Display` port: something that shows a Pillow image of its own size."""

from __future__ import annotations

from typing import Literal, Protocol

from PIL import Image

DisplayMode = Literal["1", "RGB"]


class Display(Protocol):
    """A screen fitted to a station."""

    @property
    def size(self) -> tuple[int, int]:
        """Width and height in pixels."""
        ...

    @property
    def mode(self) -> DisplayMode:
        """Pillow mode: "1" for monochrome OLEDs, "RGB" for colour panels."""
        ...

    def show(self, image: Image.Image) -> None:
        """Show one frame; `image` has this display's size and mode."""
        ...

    def close(self) -> None:
        """Blank the screen and release the device."""
        ...
