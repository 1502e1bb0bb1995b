"""What a station image gets on top of Raspberry Pi OS: the recipe in images/, as a plan (sans I/O).

The recipe folder mirrors the target file systems: `images/rootfs/` is copied into the root
partition at the same paths, `images/bootfs/` onto the FAT boot partition. Modes are decided
here, not taken from the checkout (git keeps only the executable bit, and a tarball or a Windows
checkout may not even keep that). Everything else is generated: the wheelhouse, the units'
enabling links, the build record, and, with a read-only root, the fstab line and the marker the
first-boot script looks for.

Invariant: every path the image gets is one `Injection`, so the build report lists all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tools.imaging.build_errors import RecipeError
from tools.imaging.layout import DATA_LABEL

UNIT_DIR = "/usr/lib/systemd/system"
WANTS_DIR = "/etc/systemd/system/multi-user.target.wants"
UNITS = ("pullprint-firstboot.service", "pullprint-station.service")
TIMERS_WANTS_DIR = "/etc/systemd/system/timers.target.wants"
TIMERS = ("pullprint-update.timer",)
UPDATE_KEYS = "/etc/pullprint-update-keys"
WHEELHOUSE_DIR = "/opt/pullprint/wheelhouse"
ETC_DIR = "/etc/pullprint"
STATE_DIR = "/var/lib/pullprint"
OVERLAY_INIT = "/usr/local/sbin/pullprint-overlay-init"
# Executables in the recipe; every other recipe file is 0644.
_EXECUTABLES = {
    "/usr/local/sbin/pullprint-firstboot",
    "/usr/local/sbin/pullprint-update",
    OVERLAY_INIT,
}
# Recipe files that exist only for the read-only root.
_READ_ONLY_ONLY = {OVERLAY_INIT}
REQUIRED = (
    *(f"{UNIT_DIR}/{u}" for u in UNITS),
    f"{UNIT_DIR}/pullprint-update.service",
    *(f"{UNIT_DIR}/{t}" for t in TIMERS),
    "/usr/local/sbin/pullprint-firstboot",
    "/usr/local/sbin/pullprint-update",
    "/usr/local/lib/pullprint/provision.py",
    "/usr/lib/udev/rules.d/60-pullprint.rules",
    "/usr/lib/sysusers.d/pullprint.conf",
)
CONFIG_MARK = "# PullPrint station"
CONFIG_BLOCK = f"""
{CONFIG_MARK}: SPI and I2C for the panel's display (images/README.md)
[all]
dtparam=spi=on
dtparam=i2c_arm=on
"""


@dataclass(frozen=True)
class Injection:
    """One thing the image gets: a file, directory or link on the boot or root partition."""

    partition: str  # "boot" or "root"
    path: str
    kind: str  # "file", "dir" or "symlink"
    mode: int | None = None  # None on FAT, which has no modes
    content: bytes | None = None  # a generated file
    source: Path | None = None  # a file copied from the build machine
    target: str | None = None  # a link's target
    secret: bool = False  # never shown: the report says <secret> instead of its digest


@dataclass(frozen=True)
class RecipeInputs:
    """What the plan is made from; the caller has read the base's own files already."""

    recipe_dir: Path
    wheels: Sequence[Path]
    requirements: str
    build_info: str
    read_only_root: bool
    config_txt: str | None  # the base's config.txt, or None if it has none
    fstab: str | None  # the base's /etc/fstab (needed with a read-only root)
    station_config: Path | None = None
    update_keys: str | None = None  # the pinned update keys file's text


def boot_config(existing: str | None) -> str:
    """config.txt with SPI and I2C switched on (once: building twice adds nothing)."""
    text = existing or ""
    if CONFIG_MARK in text:
        return text
    return text.rstrip("\n") + "\n" + CONFIG_BLOCK if text else CONFIG_BLOCK.lstrip("\n")


def fstab_with_data(existing: str) -> str:
    """/etc/fstab plus the data partition on /var/lib/pullprint (once).

    By label, not PARTUUID: Raspberry Pi OS's first boot gives the disk a new identifier. `nofail`
    so a station whose data partition is damaged still boots, shows the fault and can be reached.
    """
    line = f"LABEL={DATA_LABEL}  {STATE_DIR}  ext4  defaults,noatime,nofail  0  2"
    if any(
        row.split()[:2] == [f"LABEL={DATA_LABEL}", STATE_DIR]
        for row in existing.splitlines()
        if row.strip()
    ):
        return existing
    return existing.rstrip("\n") + "\n" + line + "\n"


def _recipe_files(tree: Path, partition: str, read_only_root: bool) -> list[Injection]:
    found = []
    for local in sorted(p for p in tree.rglob("*") if p.is_file()):
        rel = local.relative_to(tree).as_posix()
        if "__pycache__" in rel or rel.endswith((".pyc", "~")):
            continue
        path = f"/{rel}"
        if path in _READ_ONLY_ONLY and not read_only_root:
            continue
        mode = None if partition == "boot" else (0o755 if path in _EXECUTABLES else 0o644)
        found.append(Injection(partition, path, "file", mode, source=local))
    return found


def plan(inputs: RecipeInputs) -> list[Injection]:
    """Everything the station image gets, boot partition first.

    Raises:
        RecipeError: the recipe folder lacks one of the files every station needs.
    """
    rootfs, bootfs = inputs.recipe_dir / "rootfs", inputs.recipe_dir / "bootfs"
    missing = [p for p in REQUIRED if not (rootfs / p.lstrip("/")).is_file()]
    if missing:
        raise RecipeError(f"{inputs.recipe_dir} is not a station recipe: missing {missing[0]}")
    out: list[Injection] = [
        Injection("boot", "/config.txt", "file", content=boot_config(inputs.config_txt).encode())
    ]
    if bootfs.is_dir():
        out += _recipe_files(bootfs, "boot", inputs.read_only_root)
    out += _recipe_files(rootfs, "root", inputs.read_only_root)
    out += [
        Injection("root", f"{WANTS_DIR}/{unit}", "symlink", 0o777, target=f"{UNIT_DIR}/{unit}")
        for unit in UNITS
    ]
    out += [
        Injection("root", f"{TIMERS_WANTS_DIR}/{t}", "symlink", 0o777, target=f"{UNIT_DIR}/{t}")
        for t in TIMERS
    ]
    out.append(Injection("root", ETC_DIR, "dir", 0o700))
    if inputs.update_keys is not None:
        # Root's, outside /etc/pullprint (which the station's user owns): the trust anchor of
        # every update must not be writable by the process the updates replace.
        out.append(
            Injection("root", UPDATE_KEYS, "file", 0o644, content=inputs.update_keys.encode())
        )
    if inputs.station_config is not None:
        out.append(
            Injection(
                "root",
                f"{ETC_DIR}/station.toml",
                "file",
                0o600,
                source=inputs.station_config,
                secret=True,
            )
        )
    out.append(Injection("root", WHEELHOUSE_DIR, "dir", 0o755))
    out += [
        Injection("root", f"{WHEELHOUSE_DIR}/{w.name}", "file", 0o644, source=w)
        for w in sorted(inputs.wheels, key=lambda w: w.name)
    ]
    out.append(
        Injection(
            "root",
            f"{WHEELHOUSE_DIR}/requirements.txt",
            "file",
            0o644,
            content=inputs.requirements.encode(),
        )
    )
    out.append(
        Injection(
            "root", "/etc/pullprint-image.toml", "file", 0o644, content=inputs.build_info.encode()
        )
    )
    if inputs.read_only_root:
        if inputs.fstab is None:
            raise RecipeError("the base has no /etc/fstab to add the data partition to")
        out += [
            Injection("root", f"{ETC_DIR}/read-only-root", "file", 0o644, content=b"overlay\n"),
            Injection("root", STATE_DIR, "dir", 0o700),
            Injection(
                "root", "/etc/fstab", "file", 0o644, content=fstab_with_data(inputs.fstab).encode()
            ),
            Injection(
                "root",
                "/etc/systemd/system/pullprint-station.service.d/data-partition.conf",
                "file",
                0o644,
                content=(
                    "# With a read-only root the station's state is on the data partition.\n"
                    f"[Unit]\nRequiresMountsFor={STATE_DIR}\n"
                ).encode(),
            ),
        ]
    paths = [(i.partition, i.path) for i in out]
    if len(paths) != len(set(paths)):
        raise RecipeError("the recipe names one path twice")
    for item in out:
        if item.partition == "root" and not PurePosixPath(item.path).is_absolute():
            raise RecipeError(f"{item.path}: not an absolute path")
    return out
