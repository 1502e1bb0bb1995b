"""`pullprint image build`: turn a Raspberry Pi OS Lite (arm64) image into a station image.

Writes IMAGE, IMAGE.bmap and IMAGE.xz, and prints every path it put into the image with its
partition, size, mode and sha256 (a secret shows as `<secret>`). Errors are one line; see
`tools.imaging.build_errors`. The recipe is images/ in this checkout (or `--recipe DIR`).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from tools.cli import CliError
from tools.imaging.build import BuildOptions, build_image
from tools.imaging.errors import ImagingError
from tools.imaging.wheelhouse import build_wheelhouse, inspect_wheelhouse

log = logging.getLogger(__name__)

_CHECKOUT = Path(__file__).resolve().parent.parent


def _cmd_build(args: argparse.Namespace) -> int:
    recipe = Path(args.recipe) if args.recipe else _CHECKOUT / "images"
    station_config = Path(args.station_config) if args.station_config else None
    if station_config is not None and not station_config.is_file():
        raise CliError(f"{station_config}: no such file")
    update_keys = _update_keys(args.update_key)
    try:
        with tempfile.TemporaryDirectory(prefix="pullprint-wheelhouse-") as temp:
            if args.build_wheelhouse:
                print("building the wheelhouse (needs PyPI) ...")
                extra = Path(args.extra_wheels) if args.extra_wheels else None
                wheelhouse = build_wheelhouse(_CHECKOUT, Path(temp), extra)
            else:
                wheelhouse = inspect_wheelhouse(Path(args.wheelhouse))
            report = build_image(
                BuildOptions(
                    base=Path(args.base),
                    out=Path(args.out),
                    wheelhouse=wheelhouse,
                    recipe_dir=recipe,
                    read_only_root=args.read_only_root,
                    data_size_mib=args.data_size,
                    station_config=station_config,
                    compress=not args.no_xz,
                    update_keys=update_keys,
                )
            )
    except ImagingError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"{exc.filename or args.out}: {exc.strerror or exc}") from exc
    print(report.render())
    return 0


def _update_keys(paths: list[str] | None) -> str | None:
    """The pinned update keys file: each `--update-key` file's keys, checked."""
    from station.errors import UpdateError  # noqa: PLC0415 - loaded only when used
    from station.update_bundle import key_id, public_key_text, read_public_keys  # noqa: PLC0415

    if not paths:
        return None
    lines = ["# PullPrint update keys pinned at image build (pullprint update keygen)."]
    for path in paths:
        try:
            keys = read_public_keys(Path(path).read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError, UpdateError) as exc:
            raise CliError(f"--update-key {path}: {exc}") from exc
        lines += [f"{public_key_text(k)}  # {key_id(k)}" for k in keys]
    return "\n".join(lines) + "\n"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `image build` to the `pullprint` subcommands."""
    image = sub.add_parser("image", help="station OS images").add_subparsers(
        dest="image_cmd", required=True
    )
    build = image.add_parser(
        "build",
        help="make a station image from a Raspberry Pi OS Lite image (no mounts, no root needed)",
    )
    build.add_argument("--base", required=True, help="Raspberry Pi OS Lite arm64 .img or .img.xz")
    build.add_argument("--out", required=True, help="the station image to write (then .bmap, .xz)")
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--wheelhouse", help="folder of wheels: pullprint and its dependencies")
    source.add_argument(
        "--build-wheelhouse",
        action="store_true",
        help="build pullprint's wheel and download its [station] dependencies for aarch64 (PyPI)",
    )
    build.add_argument(
        "--extra-wheels", help="with --build-wheelhouse: a folder of wheels PyPI lacks (evdev)"
    )
    build.add_argument(
        "--read-only-root",
        action="store_true",
        help="overlay root (RAM upper layer) plus a persistent data partition for the station",
    )
    build.add_argument(
        "--data-size", type=int, default=256, help="data partition size in MiB (default 256)"
    )
    build.add_argument(
        "--station-config",
        help="a station.toml to seed /etc/pullprint/station.toml (0600; shown as <secret>)",
    )
    build.add_argument(
        "--update-key",
        action="append",
        help="a public update key file (`pullprint update keygen`) to pin; repeat to pin more",
    )
    build.add_argument("--recipe", help="recipe folder (default: images/ of this checkout)")
    build.add_argument("--no-xz", action="store_true", help="skip the .xz (the .bmap is kept)")
    build.set_defaults(func=_cmd_build)
