"""The framebuffer display against a regular file and a fake sysfs folder (no /dev/fb0 on CI)."""

import os
import random
from pathlib import Path

import pytest
from PIL import Image

from hardware.display import framebuffer as fb
from hardware.display.framebuffer import FramebufferDisplay, read_geometry, to_pixels
from hardware.errors import DisplayError
from station.render import render
from station.samples import sample_screens


def fake_fb(
    tmp_path: Path, width: int, height: int, bpp: int, stride: int | None = None
) -> tuple[Path, Path]:
    """A sysfs folder like /sys/class/graphics/fb1 and a zeroed file standing in for /dev/fb1."""
    sysfs = tmp_path / "sys" / "fb1"
    sysfs.mkdir(parents=True)
    stride = stride if stride is not None else width * bpp // 8
    (sysfs / "virtual_size").write_text(f"{width},{height}\n")
    (sysfs / "bits_per_pixel").write_text(f"{bpp}\n")
    (sysfs / "stride").write_text(f"{stride}\n")
    device = tmp_path / "fb1"
    device.write_bytes(bytes(stride * height))
    return device, sysfs


def rgb565_reference(image: Image.Image) -> bytes:
    out = bytearray()
    for y in range(image.height):
        for x in range(image.width):
            r, g, b = image.getpixel((x, y))
            value = (r >> 3) << 11 | (g >> 2) << 5 | b >> 3
            out += value.to_bytes(2, "little")
    return bytes(out)


def test_rgb565_matches_the_bit_layout() -> None:
    pixels = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0), (8, 4, 8)]
    image = Image.new("RGB", (len(pixels), 1))
    image.putdata(pixels)
    assert to_pixels(image, 16) == bytes.fromhex("00f8e0071f00ffff00002108")
    rng = random.Random(6)
    noisy = Image.new("RGB", (37, 11))
    noisy.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(37 * 11)])
    assert to_pixels(noisy, 16) == rgb565_reference(noisy)


def test_32_and_24_bit_orders() -> None:
    image = Image.new("RGB", (1, 1), (0x11, 0x22, 0x33))
    assert to_pixels(image, 32) == bytes([0x33, 0x22, 0x11, 0x00])  # XRGB8888, little-endian
    assert to_pixels(image, 32, bgr=True) == bytes([0x11, 0x22, 0x33, 0xFF])
    assert to_pixels(image, 24) == bytes([0x33, 0x22, 0x11])
    assert to_pixels(image, 24, bgr=True) == bytes([0x11, 0x22, 0x33])


def test_a_frame_is_written_whole_at_offset_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    device, sysfs = fake_fb(tmp_path, 320, 240, 16)
    display = FramebufferDisplay(device, sysfs_dir=sysfs)
    assert display.size == (320, 240) and display.mode == "RGB"
    writes: list[tuple[int, int]] = []
    real_pwrite = os.pwrite

    def spy(fd: int, data: bytes, offset: int) -> int:
        writes.append((len(data), offset))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(fb.os, "pwrite", spy)
    image = render(sample_screens()["jobs"], display.size, display.mode)
    display.show(image)
    assert writes == [(320 * 240 * 2, 0)]
    assert device.read_bytes() == rgb565_reference(image)
    display.close()
    assert device.read_bytes() == bytes(320 * 240 * 2)  # blanked on close
    with pytest.raises(DisplayError, match="closed"):
        display.show(image)


def test_rows_are_padded_to_the_stride(tmp_path: Path) -> None:
    device, sysfs = fake_fb(tmp_path, 3, 2, 32, stride=16)
    display = FramebufferDisplay(device, sysfs_dir=sysfs)
    display.show(Image.new("RGB", (3, 2), (1, 2, 3)))
    row = bytes([3, 2, 1, 0]) * 3 + bytes(4)
    assert device.read_bytes() == row * 2
    display.close()


def test_overrides_win_over_sysfs(tmp_path: Path) -> None:
    device, sysfs = fake_fb(tmp_path, 800, 960, 32)  # double-buffered: twice the height
    display = FramebufferDisplay(device, sysfs_dir=sysfs, height=480)
    assert display.size == (800, 480) and display.geometry.stride_bytes == 3200
    display.close()
    # Everything given: no sysfs needed at all, whatever the device is called.
    bare = tmp_path / "panel.raw"
    bare.write_bytes(b"")
    display = FramebufferDisplay(bare, width=4, height=2, bits_per_pixel=16)
    display.show(Image.new("RGB", (4, 2), "white"))
    assert bare.read_bytes() == b"\xff" * 16
    display.close()


def test_a_kernel_without_stride_gets_a_packed_row(tmp_path: Path) -> None:
    _device, sysfs = fake_fb(tmp_path, 10, 10, 16)
    (sysfs / "stride").unlink()
    assert read_geometry(sysfs).stride_bytes == 20


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"virtual_size": "320\n"}, "not W,H"),
        ({"bits_per_pixel": "8\n"}, "depth 8 bpp"),
        ({"bits_per_pixel": "sixteen\n"}, "not a number"),
        ({"stride": "100\n"}, "stride 100 is shorter than a row"),
    ],
)
def test_bad_geometry_is_a_display_error(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    device, sysfs = fake_fb(tmp_path, 320, 240, 16)
    for name, text in files.items():
        (sysfs / name).write_text(text)
    with pytest.raises(DisplayError, match=message):
        FramebufferDisplay(device, sysfs_dir=sysfs)


def test_a_missing_device_or_sysfs_is_a_display_error(tmp_path: Path) -> None:
    _, sysfs = fake_fb(tmp_path, 8, 8, 16)
    with pytest.raises(DisplayError, match="cannot open framebuffer"):
        FramebufferDisplay(tmp_path / "fb9", sysfs_dir=sysfs)
    with pytest.raises(DisplayError, match="cannot read framebuffer virtual_size"):
        FramebufferDisplay(tmp_path / "fb9", sysfs_dir=tmp_path / "nowhere")
    with pytest.raises(DisplayError, match="pass sysfs_dir"):
        FramebufferDisplay(tmp_path / "screen.raw")


def test_a_frame_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    device, sysfs = fake_fb(tmp_path, 8, 8, 16)
    display = FramebufferDisplay(device, sysfs_dir=sysfs)
    with pytest.raises(DisplayError, match="display is"):
        display.show(Image.new("RGB", (8, 9)))
    display.show(Image.new("1", (8, 8), 1))  # other modes are converted
    assert device.read_bytes() == b"\xff" * 128
    display.close()
