"""`pullprint flash` and `pullprint bmap`: put a station image on an SD card, safely and verified.

`flash` refuses anything but a whole, unmounted, non-system disk (or a regular file), asks before
overwriting unless `--yes`, writes only the blocks the block map lists, checks every range against
the map while writing and again after reading it back, and then writes the station's own settings
(name, cloud URL, Wi-Fi) into the boot partition with mtools. `bmap` makes `IMAGE.bmap` (and with
`--xz`, `IMAGE.xz`) for an image built elsewhere. Errors are one line; see `tools.imaging.errors`.
"""

from __future__ import annotations

import argparse
import fcntl
import getpass
import logging
import os
import sys
from pathlib import Path

from tools.cli import CliError
from tools.imaging.bmap import BlockMap, create_bmap, parse_bmap, write_bmap
from tools.imaging.bootfs import StationSettings, inject_settings, wpa_psk_hex
from tools.imaging.errors import ImagingError
from tools.imaging.progress import ProgressBar
from tools.imaging.source import XZ_SUFFIX, ImageSource, compress_xz
from tools.imaging.targets import FileTarget, TargetInfo, inspect_target
from tools.imaging.writer import write_image

log = logging.getLogger(__name__)

_BLKRRPART = 0x125F  # <linux/fs.h>: ask the kernel to re-read a disk's partition table


def find_bmap(image: Path, explicit: Path | None) -> Path | None:
    """`--bmap`, else `IMAGE.bmap`, else (for `X.img.xz`) `X.img.bmap`, like bmaptool."""
    if explicit is not None:
        return explicit
    candidates = [image.with_name(image.name + ".bmap")]
    if image.name.endswith(XZ_SUFFIX):
        candidates.append(image.with_name(image.name.removesuffix(XZ_SUFFIX) + ".bmap"))
    return next((c for c in candidates if c.is_file()), None)


def load_bmap(image: Path, explicit: Path | None) -> BlockMap:
    """The image's block map: read from a file, or made now for an uncompressed image."""
    path = find_bmap(image, explicit)
    if path is not None:
        log.info("using block map %s", path)
        return parse_bmap(path.read_bytes())
    if image.name.endswith(XZ_SUFFIX):
        raise CliError(f"no block map for {image}: give --bmap FILE (a compressed image needs one)")
    log.info("no block map for %s: mapping it now", image)
    return create_bmap(image)


def _settings(args: argparse.Namespace) -> StationSettings:
    psk = args.wifi_psk
    if args.wifi_ssid is not None and psk is None:
        if not sys.stdin.isatty():
            raise CliError("--wifi-ssid needs --wifi-psk (or run on a terminal to be asked)")
        psk = getpass.getpass(f"Wi-Fi passphrase for {args.wifi_ssid}: ")
    if psk is not None and args.wifi_ssid is None:
        raise CliError("--wifi-psk needs --wifi-ssid")
    return StationSettings(
        station_name=args.station_name,
        cloud_url=args.cloud_url,
        wifi_ssid=args.wifi_ssid,
        wifi_psk_hex=wpa_psk_hex(args.wifi_ssid, psk) if psk is not None else None,
        wifi_country=args.wifi_country.upper(),
    )


def _confirm(info: TargetInfo, image: Path, assume_yes: bool) -> None:
    """Ask before overwriting a disk or a non-empty file; a new or empty file needs no answer."""
    if assume_yes or (not info.is_block_device and info.existing_bytes == 0):
        return
    if not sys.stdin.isatty():
        raise CliError(f"{info.description}: add --yes to overwrite it (no terminal to ask on)")
    print(f"About to write {image} to {info.description}.", file=sys.stderr)
    print("Everything on it will be lost.", file=sys.stderr)
    if input("Type yes to continue: ").strip().lower() != "yes":
        raise CliError("nothing written")


def _reread_partitions(path: Path) -> None:
    """Let the kernel see the new partitions at once (best effort: a busy disk says EBUSY)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)  # mtools wrote through the page cache of the device
        fcntl.ioctl(fd, _BLKRRPART)
    except OSError as exc:
        log.debug("re-reading the partition table of %s: %s", path, exc)
    finally:
        os.close(fd)


def _cmd_flash(args: argparse.Namespace) -> int:
    image, device = Path(args.image), Path(args.device)
    try:
        settings = _settings(args)  # before anything is written: a typo must cost nothing
        if not image.is_file():
            raise CliError(f"{image}: no such image file")
        bmap = load_bmap(image, Path(args.bmap) if args.bmap else None)
        info = inspect_target(device, image)
        _confirm(info, image, args.yes)
        show_progress = args.progress if args.progress is not None else sys.stderr.isatty()
        bar = ProgressBar(sys.stderr, bmap.mapped_bytes) if show_progress else None
        with ImageSource(image) as source:
            target = FileTarget(info, bmap.image_bytes)
            try:
                if bar is None:
                    report = write_image(source, bmap, target)
                else:
                    report = write_image(source, bmap, target, on_progress=bar.update)
            finally:
                target.close()
                if bar:
                    bar.finish()
        written = inject_settings(device, settings)
        if info.is_block_device:
            _reread_partitions(device)
    except ImagingError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:  # opening the target: EBUSY (in use), EACCES (not root), ...
        raise CliError(f"{exc.filename or device}: {exc.strerror or exc}") from exc
    print(
        f"wrote {report.mapped_bytes / 1e6:.1f} MB in {report.ranges} ranges of "
        f"{report.image_bytes / 1e6:.1f} MB image to {device} in {report.seconds:.1f} s, "
        f"every range verified"
    )
    for path in written:
        print(f"boot partition: wrote {path}")
    return 0


def _cmd_bmap(args: argparse.Namespace) -> int:
    image = Path(args.image)
    out = Path(args.out) if args.out else image.with_name(image.name + ".bmap")
    try:
        bmap = create_bmap(image)
        write_bmap(bmap, out)
        xz = compress_xz(image) if args.xz else None
    except ImagingError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"{exc.filename or image}: {exc.strerror or exc}") from exc
    print(
        f"{out}: {bmap.mapped_blocks_count} of {bmap.blocks_count} blocks mapped "
        f"({bmap.mapped_bytes / 1e6:.1f} of {bmap.image_bytes / 1e6:.1f} MB)"
    )
    if xz is not None:
        print(f"{xz}: {xz.stat().st_size / 1e6:.1f} MB")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `flash` and `bmap` to the `pullprint` subcommands."""
    flash = sub.add_parser(
        "flash",
        help="write a station image to an SD card (verified), then its per-station settings",
    )
    flash.add_argument("image", help="IMAGE or IMAGE.xz")
    flash.add_argument("device", help="the whole card, e.g. /dev/sdb (or a file)")
    flash.add_argument("--bmap", help="block map (default: IMAGE.bmap, found like bmaptool)")
    flash.add_argument("--yes", action="store_true", help="do not ask before overwriting")
    flash.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: only on a terminal)",
    )
    flash.add_argument("--station-name", help="the station's name, written to the boot partition")
    flash.add_argument("--cloud-url", help="the cloud's https:// URL")
    flash.add_argument("--wifi-ssid", help="Wi-Fi network name")
    flash.add_argument(
        "--wifi-psk", help="Wi-Fi passphrase (asked for when omitted); stored only as the WPA key"
    )
    flash.add_argument("--wifi-country", default="GB", help="Wi-Fi regulatory country (GB)")
    flash.set_defaults(func=_cmd_flash)

    bmap = sub.add_parser("bmap", help="make IMAGE.bmap (bmaptool format) and optionally IMAGE.xz")
    bmap.add_argument("image")
    bmap.add_argument("--out", help="where to write the block map (default: IMAGE.bmap)")
    bmap.add_argument("--xz", action="store_true", help="also write IMAGE.xz")
    bmap.set_defaults(func=_cmd_bmap)
