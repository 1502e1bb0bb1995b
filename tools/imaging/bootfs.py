"""Per-station settings on the FAT boot partition, written with mtools at an offset: no mounts.

Loop-mounting needs privileges and partition devices that CI machines (and many laptops' sandboxes)
lack, so the partition is found by reading the partition table ourselves (MBR, or GPT behind a
protective MBR) and mtools addresses it as `IMAGE@@OFFSET`; the same works for a whole-disk device
such as `/dev/sdb`.

What is written, under `pullprint/` on the boot partition (read by the first-boot unit, see
images/README.md):
- `station.toml`: `[station] name` and `[cloud] url`, merged into /etc/pullprint/station.toml;
- `wifi.toml`: `ssid`, `country` and `psk_hex`, the WPA2 pre-shared key derived from the passphrase
  (PBKDF2-HMAC-SHA1, 4096 rounds, SSID as salt: IEEE 802.11i H.4), so the passphrase itself, often
  reused elsewhere, is never on the card. The FAT partition is readable by anyone holding the card:
  first boot moves this file into NetworkManager's root-only store and deletes it.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tools.imaging.errors import BootPartitionError

SECTOR_BYTES = 512
# What `read_partitions` needs: the MBR, the GPT header and 128 entries of 128 bytes.
TABLE_BYTES = 34 * SECTOR_BYTES
SETTINGS_DIR = "pullprint"

_FAT_MBR_TYPES = {0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E, 0xEF}
_GPT_PROTECTIVE = 0xEE
_FAT_GPT_TYPES = {
    uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b"),  # EFI system partition
    uuid.UUID("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"),  # Microsoft basic data
}
_STATION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}")

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class Partition:
    """One partition: its number (1-based), where it lies, and whether it can hold FAT."""

    number: int
    start_bytes: int
    size_bytes: int
    is_fat: bool


def read_partitions(head: bytes) -> list[Partition]:
    """Parse the partition table from the first `TABLE_BYTES` of a disk (sans I/O).

    Raises:
        BootPartitionError: no MBR signature, or a GPT header that does not add up.
    """
    if len(head) < SECTOR_BYTES or head[510:512] != b"\x55\xaa":
        raise BootPartitionError("the image has no partition table (no MBR signature)")
    entries = [head[446 + 16 * i : 462 + 16 * i] for i in range(4)]
    if any(e[4] == _GPT_PROTECTIVE for e in entries):
        return _read_gpt(head)
    partitions = []
    for number, entry in enumerate(entries, start=1):
        type_id = entry[4]
        start_lba, sectors = struct.unpack_from("<II", entry, 8)
        if type_id and sectors:
            partitions.append(
                Partition(
                    number,
                    start_lba * SECTOR_BYTES,
                    sectors * SECTOR_BYTES,
                    type_id in _FAT_MBR_TYPES,
                )
            )
    return partitions


def _read_gpt(head: bytes) -> list[Partition]:
    header = head[SECTOR_BYTES : 2 * SECTOR_BYTES]
    if header[:8] != b"EFI PART":
        raise BootPartitionError("the protective MBR points to a GPT that is not there")
    entries_lba, count, entry_bytes = struct.unpack_from("<QII", header, 72)
    if entry_bytes < 128 or entries_lba < 2:
        raise BootPartitionError("the GPT header is malformed")
    partitions = []
    for index in range(min(count, 128)):
        at = entries_lba * SECTOR_BYTES + index * entry_bytes
        entry = head[at : at + 128]
        if len(entry) < 128:
            break  # entries beyond TABLE_BYTES: Pi images use only the first few
        type_guid = uuid.UUID(bytes_le=entry[:16])
        first_lba, last_lba = struct.unpack_from("<QQ", entry, 32)
        if type_guid.int and last_lba >= first_lba:
            partitions.append(
                Partition(
                    index + 1,
                    first_lba * SECTOR_BYTES,
                    (last_lba - first_lba + 1) * SECTOR_BYTES,
                    type_guid in _FAT_GPT_TYPES,
                )
            )
    return partitions


def boot_partition(partitions: Sequence[Partition]) -> Partition:
    """The first FAT partition: where a Raspberry Pi's firmware looks for its boot files."""
    for partition in partitions:
        if partition.is_fat:
            return partition
    raise BootPartitionError("the image has no FAT boot partition")


def wpa_psk_hex(ssid: str, passphrase: str) -> str:
    """The 256-bit WPA2 pre-shared key for `passphrase` on `ssid`, as 64 hex digits."""
    if re.fullmatch(r"[0-9a-fA-F]{64}", passphrase):
        return passphrase.lower()  # already a raw key
    if not 8 <= len(passphrase) <= 63:
        raise BootPartitionError("a Wi-Fi passphrase has 8 to 63 characters")
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32).hex()


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + '"'


@dataclass(frozen=True)
class StationSettings:
    """What one station needs on its card before it first boots; every field optional."""

    station_name: str | None = None
    cloud_url: str | None = None
    wifi_ssid: str | None = None
    wifi_psk_hex: str | None = field(default=None, repr=False)
    wifi_country: str = "GB"

    def __post_init__(self) -> None:
        if self.station_name is not None and not _STATION_NAME.fullmatch(self.station_name):
            raise BootPartitionError(
                "a station name has 1-63 letters, digits, spaces, dots, dashes or underscores"
            )
        if self.cloud_url is not None:
            parts = urlsplit(self.cloud_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise BootPartitionError("the cloud URL must be an https:// (or http://) URL")
        if (self.wifi_ssid is None) != (self.wifi_psk_hex is None):
            raise BootPartitionError("give both the Wi-Fi SSID and its passphrase, or neither")
        if self.wifi_ssid is not None and not 1 <= len(self.wifi_ssid.encode()) <= 32:
            raise BootPartitionError("a Wi-Fi SSID has 1 to 32 bytes")
        if not re.fullmatch(r"[A-Z]{2}", self.wifi_country):
            raise BootPartitionError("the Wi-Fi country is a two-letter code such as GB or US")

    def files(self) -> dict[str, bytes]:
        """File name (inside `pullprint/`) -> content; empty when there is nothing to write."""
        out: dict[str, bytes] = {}
        station = []
        if self.station_name is not None:
            station += ["[station]", f"name = {_toml_string(self.station_name)}", ""]
        if self.cloud_url is not None:
            station += ["[cloud]", f"url = {_toml_string(self.cloud_url)}", ""]
        if station:
            out["station.toml"] = "\n".join(station).encode()
        if self.wifi_ssid is not None and self.wifi_psk_hex is not None:
            out["wifi.toml"] = (
                f"ssid = {_toml_string(self.wifi_ssid)}\n"
                f'country = "{self.wifi_country}"\n'
                f'psk_hex = "{self.wifi_psk_hex}"\n'
            ).encode()
        return out


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    # MTOOLSRC=/dev/null: a user's ~/.mtoolsrc must not redefine drives under us;
    # MTOOLS_SKIP_CHECK: SD-card FAT geometry often fails mtools' pedantic checks.
    env = dict(os.environ, MTOOLSRC="/dev/null", MTOOLS_SKIP_CHECK="1")
    try:
        return subprocess.run(argv, capture_output=True, text=True, env=env, check=False)  # noqa: S603 - fixed argv, no shell
    except FileNotFoundError:
        raise BootPartitionError(
            f"{argv[0]} is missing: install the Debian package mtools"
        ) from None


class BootFiles:
    """Reads and writes files on the FAT partition at `partition` inside `disk` (file or device)."""

    def __init__(self, disk: Path, partition: Partition, run: Runner = _run) -> None:
        self._drive = f"{disk}@@{partition.start_bytes}"
        self._run = run

    def _mtools(self, *argv: str) -> subprocess.CompletedProcess[str]:
        done = self._run([argv[0], "-i", self._drive, *argv[1:]])
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise BootPartitionError(
                f"{argv[0]} failed on the boot partition: {detail[-1] if detail else 'no output'}"
            )
        return done

    def exists(self, name: str) -> bool:
        """Whether `::/name` exists on the partition."""
        return self._run(["mdir", "-i", self._drive, "-b", f"::/{name}"]).returncode == 0

    def write(self, directory: str, files: Mapping[str, bytes]) -> list[str]:
        """Create `directory` if needed and write `files` into it; returns the paths written."""
        if not self.exists(directory):
            self._mtools("mmd", f"::/{directory}")
        written = []
        with tempfile.TemporaryDirectory(prefix="pullprint-boot-") as temp:
            for name, content in files.items():
                local = Path(temp) / name
                local.write_bytes(content)
                self._mtools("mcopy", "-o", str(local), f"::/{directory}/{name}")
                written.append(f"{directory}/{name}")
        return written

    def read(self, name: str) -> bytes:
        """The content of `::/name` (for checks and tests)."""
        return self._mtools("mtype", f"::/{name}").stdout.encode()

    def put(self, path: str, content: bytes) -> None:
        """Write `content` to `::/path`, replacing it, and making its folders (at any depth)."""
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if not self.exists(folder):
                self._mtools("mmd", f"::/{folder}")
        with tempfile.TemporaryDirectory(prefix="pullprint-boot-") as temp:
            local = Path(temp) / "file"
            local.write_bytes(content)
            self._mtools("mcopy", "-o", str(local), f"::/{'/'.join(parts)}")

    def read_bytes(self, path: str) -> bytes:
        """The exact bytes of `::/path` (`read` goes through text, so it folds CRLF)."""
        env = dict(os.environ, MTOOLSRC="/dev/null", MTOOLS_SKIP_CHECK="1")
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            ["mtype", "-i", self._drive, f"::/{path.strip('/')}"],  # noqa: S607 - mtools on PATH
            capture_output=True,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip().splitlines()
            raise BootPartitionError(
                f"mtype failed on the boot partition: {detail[-1] if detail else 'no output'}"
            )
        return done.stdout


def inject_settings(disk: Path, settings: StationSettings, run: Runner = _run) -> list[str]:
    """Write `settings` into the boot partition of the image or card at `disk`.

    Returns the paths written on the partition, e.g. `["pullprint/station.toml"]`.

    Raises:
        BootPartitionError: no partition table or FAT partition, or mtools failed.
    """
    files = settings.files()
    if not files:
        return []
    with open(disk, "rb") as f:
        head = f.read(TABLE_BYTES)
    partition = boot_partition(read_partitions(head))
    return BootFiles(disk, partition, run).write(SETTINGS_DIR, files)
