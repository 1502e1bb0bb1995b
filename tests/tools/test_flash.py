"""`pullprint flash`: file targets, bmaptool cross-checks, every error path, target refusal."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest

from tests.tools.disk_images import BOOT_START_BYTES, IMAGE_BYTES, make_image, require, run
from tools.cli import main
from tools.imaging import targets
from tools.imaging.bmap import create_bmap, parse_bmap, write_bmap
from tools.imaging.bootfs import (
    StationSettings,
    boot_partition,
    inject_settings,
    read_partitions,
    wpa_psk_hex,
)
from tools.imaging.errors import (
    ChecksumMismatchError,
    TargetGoneError,
    TargetRefusedError,
    TargetTooSmallError,
    VerifyError,
)
from tools.imaging.progress import ProgressBar
from tools.imaging.source import ImageSource, compress_xz
from tools.imaging.targets import SimulatedCard, SystemView, inspect_target
from tools.imaging.writer import write_image


@pytest.fixture
def image(tmp_path: Path) -> Path:
    img = make_image(tmp_path / "station.img")
    write_bmap(create_bmap(img), tmp_path / "station.img.bmap")
    return img


def _flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x5A]))


# --- flashing to files, and the bmaptool cross-checks ------------------------------------------


def test_flash_to_a_file_gives_the_image(image: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "card.img"
    assert main(["flash", str(image), str(out), "--no-progress"]) == 0
    assert out.read_bytes() == image.read_bytes()
    assert "every range verified" in capsys.readouterr().out


def test_a_raw_image_without_a_bmap_is_mapped_on_the_fly(image: Path, tmp_path: Path) -> None:
    (tmp_path / "station.img.bmap").unlink()
    out = tmp_path / "card.img"
    assert main(["flash", str(image), str(out), "--no-progress"]) == 0
    assert out.read_bytes() == image.read_bytes()
    xz = compress_xz(image)
    assert main(["flash", str(xz), str(out), "--yes"]) == 1  # xz cannot be mapped: needs --bmap


def test_their_bmap_with_our_flasher_from_xz(image: Path, tmp_path: Path) -> None:
    require("bmaptool")
    theirs = tmp_path / "theirs.bmap"
    run("bmaptool", "create", "-o", theirs, image)
    xz = compress_xz(image)
    out = tmp_path / "card.img"
    assert main(["flash", str(xz), str(out), "--bmap", str(theirs), "--no-progress"]) == 0
    assert out.read_bytes() == image.read_bytes()


def test_our_flash_equals_bmaptool_copy_with_our_bmap(image: Path, tmp_path: Path) -> None:
    require("bmaptool")
    xz = compress_xz(image)  # finds station.img.bmap next to station.img.xz, as bmaptool does
    ours, theirs = tmp_path / "ours.img", tmp_path / "theirs.img"
    assert main(["flash", str(xz), str(ours), "--no-progress"]) == 0
    run("bmaptool", "copy", "--bmap", tmp_path / "station.img.bmap", xz, theirs)
    assert ours.read_bytes() == theirs.read_bytes() == image.read_bytes()


def test_only_mapped_blocks_are_written(image: Path, tmp_path: Path) -> None:
    bmap = parse_bmap((tmp_path / "station.img.bmap").read_bytes())
    card = SimulatedCard(IMAGE_BYTES + 4096)
    card.data[:] = b"\xaa" * len(card.data)  # what the card held before
    with ImageSource(image) as source:
        report = write_image(source, bmap, card, chunk_bytes=64 * 1024, verify_every_bytes=4096)
    raw = image.read_bytes()
    assert card.bytes_written == bmap.mapped_bytes == report.mapped_bytes < IMAGE_BYTES // 10
    mapped = bytearray(len(card.data))
    for r in bmap.ranges:
        start, length = bmap.byte_span(r)
        mapped[start : start + length] = b"\x01" * length
        assert card.data[start : start + length] == raw[start : start + length]
    assert all(b == 0xAA for b, m in zip(card.data, mapped, strict=True) if not m)
    assert card.syncs >= 2  # verified in batches, not only at the end


# --- errors: corrupt image, small card, pulled card, failing card --------------------------------


def test_tampered_image_is_a_checksum_error(image: Path, tmp_path: Path, capsys) -> None:
    bmap = parse_bmap((tmp_path / "station.img.bmap").read_bytes())
    _flip_byte(image, bmap.byte_span(bmap.ranges[3])[0] + 7)
    code = main(["flash", str(image), str(tmp_path / "card.img"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert f"blocks {bmap.ranges[3].first}-{bmap.ranges[3].last}" in err
    assert "corrupt" in err


def test_tampered_compressed_image_is_a_checksum_error(image: Path, tmp_path: Path) -> None:
    bmap = parse_bmap((tmp_path / "station.img.bmap").read_bytes())
    _flip_byte(image, bmap.byte_span(bmap.ranges[-1])[0])
    with ImageSource(compress_xz(image)) as source, pytest.raises(ChecksumMismatchError) as exc:
        write_image(source, bmap, SimulatedCard(IMAGE_BYTES))
    assert exc.value.first_block == bmap.ranges[-1].first


def test_damaged_bmap_is_refused(image: Path, tmp_path: Path, capsys) -> None:
    bmap_path = tmp_path / "station.img.bmap"
    bmap_path.write_text(bmap_path.read_text().replace("<BlockSize> 4096", "<BlockSize> 8192"))
    assert main(["flash", str(image), str(tmp_path / "card.img"), "--no-progress"]) == 1
    assert "the block map is damaged" in capsys.readouterr().err


def test_too_small_card_writes_nothing(image: Path) -> None:
    card = SimulatedCard(IMAGE_BYTES - 4096)
    with ImageSource(image) as source, pytest.raises(TargetTooSmallError, match="bigger card"):
        write_image(source, create_bmap(image), card)
    assert card.bytes_written == 0


@pytest.mark.parametrize(
    ("code", "hint"),
    [(errno.ENODEV, "pulled out"), (errno.EIO, "pulled out or is failing"), (errno.ENOSPC, "full")],
)
def test_card_pulled_mid_write_is_one_clear_error(image: Path, code: int, hint: str) -> None:
    card = SimulatedCard(IMAGE_BYTES, fail_after_bytes=100_000, fail_errno=code)
    with ImageSource(image) as source, pytest.raises(TargetGoneError) as exc:
        write_image(source, create_bmap(image), card, chunk_bytes=16 * 1024)
    message = str(exc.value)
    assert "\n" not in message
    assert hint in message and "flash it again" in message
    assert "writing failed after 0.1 of 0.4 MB" in message
    assert exc.value.__cause__.errno == code  # type: ignore[union-attr]


class _ForgetfulCard(SimulatedCard):
    """A fake-capacity card: accepts writes but returns other bytes for one block."""

    def read_at(self, length: int, offset: int) -> bytes:
        data = bytearray(super().read_at(length, offset))
        if offset <= 10 << 20 < offset + length:
            data[(10 << 20) - offset] ^= 1
        return bytes(data)


def test_read_back_mismatch_is_a_verify_error(image: Path) -> None:
    with ImageSource(image) as source, pytest.raises(VerifyError, match="failing or fake"):
        write_image(source, create_bmap(image), _ForgetfulCard(IMAGE_BYTES))


# --- refusing targets ---------------------------------------------------------------------------


def _root_device() -> tuple[int, int]:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            major, minor = fields[2].split(":")
            return int(major), int(minor)
    pytest.fail("/ is not in /proc/self/mountinfo")


def test_the_system_disk_is_refused_before_any_open_for_writing(
    image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    major, minor = _root_device()
    device = next(
        (
            p
            for p in Path("/dev").iterdir()
            if p.is_block_device() and p.stat().st_rdev == os.makedev(major, minor)
        ),
        None,
    )
    if device is None:  # a container without the node: make one (never opened, only stat'ed)
        device = tmp_path / "rootdisk"
        os.mknod(device, 0o600 | 0o060000, os.makedev(major, minor))
    opened_for_writing: list[str] = []
    real_open = os.open

    def guarded_open(path, flags, *args, **kwargs):
        if os.path.realpath(path) == os.path.realpath(device) and flags & (os.O_WRONLY | os.O_RDWR):
            opened_for_writing.append(str(path))
            raise AssertionError("opened the system disk for writing")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(targets.FileTarget, "__init__", lambda *a: pytest.fail("FileTarget made"))
    code = main(["flash", str(image), str(device), "--yes", "--no-progress"])
    assert code == 1
    assert "holds the running system" in capsys.readouterr().err
    assert opened_for_writing == []


def _fake_disk(tmp_path: Path, *, ro: str = "0") -> tuple[Path, SystemView]:
    """A sysfs with disk 8:0 (sdz) and its partition 8:1, and a device node for each."""
    sys_root, proc = tmp_path / "sys", tmp_path / "proc"
    disk = sys_root / "devices/virtual/block/sdz"
    (disk / "sdz1").mkdir(parents=True)
    (disk / "dev").write_text("8:0\n")
    (disk / "size").write_text("62333952\n")
    (disk / "removable").write_text("1\n")
    (disk / "ro").write_text(ro + "\n")
    (disk / "sdz1/dev").write_text("8:1\n")
    (disk / "sdz1/partition").write_text("1\n")
    (sys_root / "dev/block").mkdir(parents=True)
    (sys_root / "dev/block/8:0").symlink_to(disk)
    (sys_root / "dev/block/8:1").symlink_to(disk / "sdz1")
    (proc / "self").mkdir(parents=True)
    (proc / "self/mountinfo").write_text("27 1 254:0 / / rw - ext4 /dev/vda rw\n")
    (proc / "mounts").write_text("")
    (proc / "swaps").write_text("Filename Type Size Used Priority\n")
    for name, minor in (("sdz", 0), ("sdz1", 1)):
        try:
            os.mknod(tmp_path / name, 0o600 | 0o060000, os.makedev(8, minor))
        except PermissionError:
            pytest.fail("making a block device node needs root (the test command runs as root)")
    return tmp_path / "sdz", SystemView(proc=proc, sys=sys_root, root=tmp_path)


def test_an_unmounted_removable_card_is_accepted(tmp_path: Path) -> None:
    node, view = _fake_disk(tmp_path)
    info = inspect_target(node, tmp_path / "x.img", view)
    assert info.is_block_device and info.size_bytes == 62333952 * 512
    assert "31.9 GB, removable" in info.description


def test_refusals(tmp_path: Path) -> None:
    node, view = _fake_disk(tmp_path)
    image = tmp_path / "x.img"
    with pytest.raises(TargetRefusedError, match="partition of sdz: give the whole disk"):
        inspect_target(tmp_path / "sdz1", image, view)
    (view.proc / "self/mountinfo").write_text("40 1 8:1 / /media/card rw - vfat /dev/sdz1 rw\n")
    with pytest.raises(TargetRefusedError, match="sdz1 is mounted at /media/card"):
        inspect_target(node, image, view)
    (view.proc / "self/mountinfo").write_text("")
    (view.proc / "swaps").write_text(f"Filename Type\n{tmp_path / 'sdz1'} partition 0 0 -2\n")
    with pytest.raises(TargetRefusedError, match="in use as swap"):
        inspect_target(node, image, view)
    image.write_bytes(b"x")
    with pytest.raises(TargetRefusedError, match="the image itself"):
        inspect_target(image, image)
    with pytest.raises(TargetRefusedError, match="neither a disk"):
        inspect_target(Path("/dev/null"), image)
    with pytest.raises(TargetRefusedError, match="does not exist"):
        inspect_target(Path("/dev/sdz-no-such-card"), image)


def test_a_write_protected_card_is_refused(tmp_path: Path) -> None:
    node, view = _fake_disk(tmp_path, ro="1")
    with pytest.raises(TargetRefusedError, match="lock switch"):
        inspect_target(node, tmp_path / "x.img", view)


def test_overwriting_a_file_without_a_terminal_needs_yes(image: Path, tmp_path: Path, capsys):
    out = tmp_path / "card.img"
    out.write_bytes(b"precious")
    assert main(["flash", str(image), str(out), "--no-progress"]) == 1
    assert "add --yes" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"


# --- per-station settings, progress ---------------------------------------------------------


def test_settings_are_injected_into_the_boot_partition(image: Path, tmp_path: Path) -> None:
    require("mtype")
    out = tmp_path / "card.img"
    argv = ["flash", str(image), str(out), "--no-progress", "--station-name", "Lobby 1",
            "--cloud-url", "https://print.example.org", "--wifi-ssid", "IEEE",
            "--wifi-psk", "password", "--wifi-country", "us"]  # fmt: skip
    assert main(argv) == 0
    drive = f"{out}@@{BOOT_START_BYTES}"
    station = run("mtype", "-i", drive, "::/pullprint/station.toml")
    assert station == '[station]\nname = "Lobby 1"\n\n[cloud]\nurl = "https://print.example.org"\n'
    wifi = run("mtype", "-i", drive, "::/pullprint/wifi.toml")
    # IEEE 802.11i-2004 H.4.3 test vector: passphrase "password", SSID "IEEE".
    psk = "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
    assert wifi == f'ssid = "IEEE"\ncountry = "US"\npsk_hex = "{psk}"\n'
    assert "password" not in wifi
    assert "cmdline.txt" in run("mdir", "-i", drive, "-b", "::/")  # the rest is untouched


def test_gpt_images_and_overwriting_settings(tmp_path: Path) -> None:
    img = make_image(tmp_path / "gpt.img", gpt=True)
    part = boot_partition(read_partitions(img.read_bytes()[: 34 * 512]))
    assert part.start_bytes == BOOT_START_BYTES
    inject_settings(img, StationSettings(station_name="A"))
    inject_settings(img, StationSettings(station_name="B"))
    assert 'name = "B"' in run(
        "mtype", "-i", f"{img}@@{part.start_bytes}", "::/pullprint/station.toml"
    )


def test_bad_settings_fail_before_writing(image: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "card.img"
    assert main(["flash", str(image), str(out), "--wifi-ssid", "x", "--wifi-psk", "short"]) == 1
    assert "8 to 63 characters" in capsys.readouterr().err
    assert not out.exists()
    assert wpa_psk_hex("x", "AB" * 32) == "ab" * 32  # a raw key is kept as it is


def test_progress_bar_shows_rate_and_time_left() -> None:
    now = [0.0]
    stream = io.StringIO()
    bar = ProgressBar(stream, 100 << 20, clock=lambda: now[0])
    now[0] = 2.0
    bar.update(40 << 20, 10 << 20)
    line = bar.line()
    assert "25%" in line and "20.0 MiB/s" in line and "0:06 left" in line
    bar.finish()
    assert stream.getvalue().endswith("\n")


def test_progress_flag_draws_on_stderr(image: Path, tmp_path: Path, capsys) -> None:
    assert main(["flash", str(image), str(tmp_path / "c.img"), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "100%" in err and "MiB/s" in err and "left" in err
