"""`pullprint image build`: a Raspberry Pi OS Lite image in, a station image out, no mounts.

Steps, each finished and checked before the next:
1. check the wheelhouse (cheap, before copying gigabytes);
2. copy the base (raw or .xz) to the output as a sparse file;
3. check the layout: partition 1 FAT boot, partition 2 ext4 root (`layout.inspect_base`);
4. with a read-only root, append partition 3: an empty ext4 for /var/lib/pullprint;
5. edit the boot partition with mtools (`IMAGE@@OFFSET`) and read every file back;
6. edit the root partition with debugfs (`IMAGE?offset=N`), read everything back, e2fsck it;
7. write the block map and the .xz next to the image.

Invariant: on any error the half-built output is deleted, so a file at `--out` is a whole image.
The report lists every path injected with its partition, size, mode and sha256, except for a
secret (`--station-config` may hold a token), whose digest is shown as `<secret>`: a hash of a
low-entropy secret gives it away.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tools.imaging.bmap import create_bmap, write_bmap
from tools.imaging.bootfs import BootFiles
from tools.imaging.build_errors import BaseImageError, ImageBuildError
from tools.imaging.errors import BootPartitionError
from tools.imaging.ext4fs import (
    Ext4Dir,
    Ext4Entry,
    Ext4File,
    Ext4Partition,
    Ext4Symlink,
    sha256_file,
)
from tools.imaging.layout import (
    DATA_LABEL,
    MIB,
    append_data_partition,
    copy_base,
    ext4_free_bytes,
    inspect_base,
)
from tools.imaging.recipe import Injection, RecipeInputs, plan
from tools.imaging.source import compress_xz
from tools.imaging.wheelhouse import Wheelhouse

log = logging.getLogger(__name__)

SECRET = "<secret>"  # noqa: S105 - the placeholder shown instead of a secret
DEFAULT_DATA_MIB = 256
# Room the first boot needs on the root beyond what we write: the venv (about 60 MiB for the
# station's dependencies) and some slack. Raspberry Pi OS grows the root to fill the card on
# first boot, but not when a data partition follows it (the read-only root case).
_VENV_MARGIN_BYTES = 192 * MIB


@dataclass(frozen=True)
class BuildOptions:
    """What `pullprint image build` was asked for."""

    base: Path
    out: Path
    wheelhouse: Wheelhouse
    recipe_dir: Path
    read_only_root: bool = False
    data_size_mib: int = DEFAULT_DATA_MIB
    station_config: Path | None = None
    compress: bool = True
    update_keys: str | None = None  # pinned update keys (`ed25519:...` lines), checked already


@dataclass(frozen=True)
class ReportLine:
    """One injected path, as the report prints it."""

    partition: str
    path: str
    kind: str
    size_bytes: int
    mode: str  # "0644", or "-" on FAT
    sha256: str  # hex, "<secret>", or "-" for directories; a link shows "-> target"


@dataclass(frozen=True)
class BuildReport:
    """What the build made and put where."""

    image: Path
    image_bytes: int
    xz: Path | None
    bmap: Path
    mapped_bytes: int
    lines: tuple[ReportLine, ...]
    data_partition: str | None

    def render(self) -> str:
        """The report as text: one line per injected path, then the outputs."""
        rows = [("partition", "path", "size", "mode", "sha256")]
        for line in self.lines:
            size = "-" if line.kind == "dir" else str(line.size_bytes)
            rows.append((line.partition, line.path, size, line.mode, line.sha256))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        text = [
            "  ".join([*(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)), r[4]]).rstrip()
            for r in rows
        ]
        if self.data_partition:
            text.append(self.data_partition)
        text.append(f"{self.image}: {self.image_bytes / 1e6:.1f} MB")
        text.append(f"{self.bmap}: {self.mapped_bytes / 1e6:.1f} MB mapped")
        if self.xz is not None:
            text.append(f"{self.xz}: {self.xz.stat().st_size / 1e6:.1f} MB")
        return "\n".join(text)


def _build_info(options: BuildOptions, base_sha256: str) -> str:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
    return (
        "# What this station image was built from (pullprint image build).\n"
        f'pullprint = "{options.wheelhouse.pullprint_version}"\n'
        f'built = "{now}"\n'
        f'base = "{options.base.name}"\n'
        f'base_sha256 = "{base_sha256}"\n'
        f"read_only_root = {'true' if options.read_only_root else 'false'}\n"
    )


def _materialise(items: list[Injection], temp: Path) -> dict[str, Path]:
    """Write generated contents to files (debugfs and mcopy take files); path -> local file."""
    local: dict[str, Path] = {}
    for index, item in enumerate(items):
        if item.kind != "file":
            continue
        if item.content is not None:
            path = temp / f"gen{index}"
            path.write_bytes(item.content)
            local[item.path] = path
        elif item.source is not None:
            local[item.path] = item.source
    return local


def _edit_boot(out: Path, boot: BootFiles, items: list[Injection], local: dict[str, Path]) -> None:
    for item in items:
        boot.put(item.path, local[item.path].read_bytes())
    for item in items:
        if hashlib.sha256(boot.read_bytes(item.path)).hexdigest() != sha256_file(local[item.path]):
            raise ImageBuildError(f"{out}: boot partition {item.path} reads back different")


def _root_entries(items: list[Injection], local: dict[str, Path]) -> list[Ext4Entry]:
    entries: list[Ext4Entry] = []
    for item in items:
        if item.kind == "dir":
            entries.append(Ext4Dir(item.path, item.mode or 0o755))
        elif item.kind == "symlink":
            assert item.target is not None  # recipe.plan sets one for every link
            entries.append(Ext4Symlink(item.path, item.target))
        else:
            entries.append(Ext4File(item.path, local[item.path], item.mode or 0o644))
    return entries


def _report_line(item: Injection, local: dict[str, Path]) -> ReportLine:
    mode = "-" if item.mode is None else f"{item.mode:04o}"
    if item.kind == "dir":
        return ReportLine(item.partition, item.path, "dir", 0, mode, "-")
    if item.kind == "symlink":
        target = item.target or ""
        return ReportLine(item.partition, item.path, "symlink", len(target), mode, f"-> {target}")
    path = local[item.path]
    digest = SECRET if item.secret else sha256_file(path)
    return ReportLine(item.partition, item.path, "file", path.stat().st_size, mode, digest)


def build_image(options: BuildOptions) -> BuildReport:
    """Build the station image described by `options`; see the module docstring.

    Raises:
        ImageBuildError: (and its leaves) the base, the recipe, the wheelhouse or a tool failed.
        BootPartitionError: mtools failed on the boot partition.
    """
    out = options.out
    if out.resolve() == options.base.resolve():
        raise BaseImageError("--out must not be the base image")
    try:
        return _build(options)
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def _build(options: BuildOptions) -> BuildReport:
    out = options.out
    log.info("copying %s to %s", options.base, out)
    copy_base(options.base, out)
    layout = inspect_base(out)
    data_note = None
    if options.read_only_root:
        data = append_data_partition(out, layout, options.data_size_mib)
        data_note = (
            f"data: partition {data.number}, ext4 labelled {DATA_LABEL}, "
            f"{data.size_bytes // MIB} MiB, mounted on /var/lib/pullprint"
        )
    boot = BootFiles(out, layout.boot)
    root = Ext4Partition(out, layout.root.start_bytes)
    config_txt = boot.read_bytes("config.txt").decode() if boot.exists("config.txt") else None
    fstab = root.read("/etc/fstab").decode() if options.read_only_root else None
    items = plan(
        RecipeInputs(
            recipe_dir=options.recipe_dir,
            wheels=options.wheelhouse.wheels,
            requirements=options.wheelhouse.requirements,
            build_info=_build_info(options, sha256_file(options.base)),
            read_only_root=options.read_only_root,
            config_txt=config_txt,
            fstab=fstab,
            station_config=options.station_config,
            update_keys=options.update_keys,
        )
    )
    boot_items = [i for i in items if i.partition == "boot"]
    root_items = [i for i in items if i.partition == "root"]
    with tempfile.TemporaryDirectory(prefix="pullprint-image-") as temp:
        local = _materialise(items, Path(temp))
        needed = sum(p.stat().st_size for p in local.values()) + (
            _VENV_MARGIN_BYTES if options.read_only_root else 0
        )
        free = ext4_free_bytes(out, layout.root)
        if needed > free:
            raise BaseImageError(
                f"the root partition has {free // MIB} MiB free; the station needs "
                f"{-(-needed // MIB)} MiB (wheelhouse, and with a read-only root the venv too)"
            )
        log.info("boot partition: %d files", len(boot_items))
        try:
            _edit_boot(out, boot, boot_items, local)
        except BootPartitionError as exc:
            raise ImageBuildError(str(exc)) from exc
        log.info("root partition: %d entries", len(root_items))
        root.apply(_root_entries(root_items, local))
        root.check()
        lines = tuple(_report_line(i, local) for i in items)
    log.info("mapping and compressing %s", out)
    bmap = create_bmap(out)
    bmap_path = out.with_name(out.name + ".bmap")
    write_bmap(bmap, bmap_path)
    xz = compress_xz(out) if options.compress else None
    return BuildReport(out, bmap.image_bytes, xz, bmap_path, bmap.mapped_bytes, lines, data_note)
