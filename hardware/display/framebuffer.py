"""The Linux framebuffer (`/dev/fbN`) as a `Display`: HDMI or DSI screens and fbtft touch panels.

Geometry comes from sysfs (`/sys/class/graphics/fbN/virtual_size`, `bits_per_pixel`, `stride`),
each overridable, so a test can point at a fake sysfs folder and a regular file (CI machines have
no /dev/fb0). Every frame is converted to the framebuffer's pixel format in Pillow (no per-pixel
Python loop: a 800x480 frame takes milliseconds) and written whole, with one `pwrite` at offset 0,
so a reader of the framebuffer never sees half of one frame over the other for long.

Pixel formats (little-endian, as on every Pi):

* 16 bpp RGB565: bits rrrrrggg gggbbbbb, low byte first;
* 32 bpp XRGB8888: bytes B, G, R, 0 (`bgr=True`: R, G, B, 0);
* 24 bpp: bytes B, G, R (`bgr=True`: R, G, B).

When the line stride is longer than a row of pixels, each row is padded with zeros.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from PIL import Image, ImageChops

from hardware.display.base import DisplayMode
from hardware.errors import DisplayError

__all__ = ["FramebufferDisplay", "FramebufferGeometry", "read_geometry", "to_pixels"]

_FB_NAME = re.compile(r"^fb(\d+)$")


class FramebufferGeometry:
    """Width, height, bits per pixel and line stride (bytes) of a framebuffer."""

    __slots__ = ("bits_per_pixel", "height", "stride_bytes", "width")

    def __init__(self, width: int, height: int, bits_per_pixel: int, stride_bytes: int) -> None:
        if width <= 0 or height <= 0:
            raise DisplayError(f"framebuffer size {width}x{height} is not usable")
        if bits_per_pixel not in (16, 24, 32):
            raise DisplayError(f"framebuffer depth {bits_per_pixel} bpp is not supported")
        if stride_bytes < width * bits_per_pixel // 8:
            raise DisplayError(f"framebuffer stride {stride_bytes} is shorter than a row")
        self.width = width
        self.height = height
        self.bits_per_pixel = bits_per_pixel
        self.stride_bytes = stride_bytes

    def __repr__(self) -> str:
        return (
            f"FramebufferGeometry({self.width}x{self.height}, {self.bits_per_pixel} bpp, "
            f"stride {self.stride_bytes})"
        )

    @property
    def frame_bytes(self) -> int:
        """Bytes in one whole frame."""
        return self.stride_bytes * self.height


def _sysfs_ints(folder: Path, name: str) -> list[int]:
    try:
        text = (folder / name).read_text(encoding="ascii")
    except OSError as exc:
        raise DisplayError(f"cannot read framebuffer {name} from {folder}: {exc}") from exc
    try:
        return [int(part) for part in text.strip().split(",") if part.strip()]
    except ValueError as exc:
        raise DisplayError(f"framebuffer {name} in {folder} is not a number: {text!r}") from exc


def read_geometry(
    sysfs_dir: Path,
    *,
    width: int | None = None,
    height: int | None = None,
    bits_per_pixel: int | None = None,
    stride_bytes: int | None = None,
) -> FramebufferGeometry:
    """Read a framebuffer's geometry from its sysfs folder; a value given here wins over sysfs.

    `virtual_size` can be taller than the screen when a driver double-buffers: pass `height`
    (the visible lines) then.
    """
    if width is None or height is None:
        size = _sysfs_ints(sysfs_dir, "virtual_size")
        if len(size) != 2:
            raise DisplayError(f"framebuffer virtual_size in {sysfs_dir} is not W,H")
        width = size[0] if width is None else width
        height = size[1] if height is None else height
    if bits_per_pixel is None:
        bits_per_pixel = _sysfs_ints(sysfs_dir, "bits_per_pixel")[0]
    if stride_bytes is None:
        try:
            stride_bytes = _sysfs_ints(sysfs_dir, "stride")[0]
        except DisplayError:
            stride_bytes = width * bits_per_pixel // 8  # older kernels have no `stride`
    return FramebufferGeometry(width, height, bits_per_pixel, stride_bytes)


def to_pixels(image: Image.Image, bits_per_pixel: int, *, bgr: bool = False) -> bytes:
    """Convert an RGB image to packed framebuffer pixels, rows unpadded."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if bits_per_pixel == 32:
        return rgb.tobytes("raw", "RGBX" if bgr else "BGRX")
    if bits_per_pixel == 24:
        return rgb.tobytes("raw", "RGB" if bgr else "BGR")
    if bits_per_pixel != 16:
        raise DisplayError(f"framebuffer depth {bits_per_pixel} bpp is not supported")
    red, green, blue = rgb.split()
    # RGB565, little-endian: high byte rrrrrggg, low byte gggbbbbb. The two parts of each byte
    # use disjoint bits, so adding them (clipped at 255, never reached) is a bitwise or.
    high = ImageChops.add(red.point(lambda v: v & 0xF8), green.point(lambda v: v >> 5))
    low = ImageChops.add(green.point(lambda v: (v << 3) & 0xE0), blue.point(lambda v: v >> 3))
    return Image.merge("LA", (low, high)).tobytes()


class FramebufferDisplay:
    """A `Display` writing whole frames to a Linux framebuffer device.

    Args:
        path: the device (`/dev/fb0`), or any writable file (tests).
        sysfs_dir: where its geometry is; by default `/sys/class/graphics/<fbN>` for `path`.
        width, height, bits_per_pixel, stride_bytes: overrides for what sysfs says.
        bgr: the panel's 24/32-bit pixels are R, G, B in memory order (rare; RGB565 is fixed).

    Raises:
        DisplayError: the geometry cannot be read or is unsupported, or the device cannot be opened.
    """

    def __init__(
        self,
        path: str | Path = "/dev/fb0",
        *,
        sysfs_dir: str | Path | None = None,
        width: int | None = None,
        height: int | None = None,
        bits_per_pixel: int | None = None,
        stride_bytes: int | None = None,
        bgr: bool = False,
    ) -> None:
        self.path = Path(path)
        if sysfs_dir is None:
            match = _FB_NAME.match(self.path.name)
            if match is None and None in (width, height, bits_per_pixel):
                raise DisplayError(f"cannot tell which framebuffer {self.path} is: pass sysfs_dir")
            sysfs_dir = Path("/sys/class/graphics") / self.path.name
        self.geometry = read_geometry(
            Path(sysfs_dir),
            width=width,
            height=height,
            bits_per_pixel=bits_per_pixel,
            stride_bytes=stride_bytes,
        )
        self.bgr = bgr
        try:
            # No O_CREAT: a missing /dev/fb0 is an error, not a regular file to make.
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise DisplayError(f"cannot open framebuffer {self.path}: {exc}") from exc

    @property
    def size(self) -> tuple[int, int]:
        """Width and height in pixels."""
        return (self.geometry.width, self.geometry.height)

    @property
    def mode(self) -> DisplayMode:
        """Framebuffers are colour."""
        return "RGB"

    def frame_bytes(self, image: Image.Image) -> bytes:
        """The bytes `show` writes for `image`: packed pixels, each row padded to the stride."""
        geometry = self.geometry
        pixels = to_pixels(image, geometry.bits_per_pixel, bgr=self.bgr)
        row = geometry.width * geometry.bits_per_pixel // 8
        if row == geometry.stride_bytes:
            return pixels
        pad = bytes(geometry.stride_bytes - row)
        return b"".join(pixels[y * row : (y + 1) * row] + pad for y in range(geometry.height))

    def show(self, image: Image.Image) -> None:
        """Write one frame at offset 0.

        Raises:
            DisplayError: the frame has the wrong size, or the write failed.
        """
        if self._fd is None:
            raise DisplayError("the framebuffer is closed")
        if image.size != self.size:
            raise DisplayError(f"frame is {image.size}, display is {self.size}")
        self._write(self.frame_bytes(image))

    def close(self) -> None:
        """Blank the screen and close the device."""
        if self._fd is None:
            return
        try:
            self._write(bytes(self.geometry.frame_bytes))
        except DisplayError:
            pass  # closing anyway: a blank screen is a courtesy, not a requirement
        finally:
            os.close(self._fd)
            self._fd = None

    def _write(self, frame: bytes) -> None:
        assert self._fd is not None
        view = memoryview(frame)
        offset = 0
        try:
            # One write for the whole frame; a device may take less, so finish what is left.
            while offset < len(view):
                written = os.pwrite(self._fd, view[offset:], offset)
                if written <= 0:
                    raise DisplayError(f"framebuffer {self.path} took no bytes")
                offset += written
        except OSError as exc:
            raise DisplayError(f"cannot write to framebuffer {self.path}: {exc}") from exc
