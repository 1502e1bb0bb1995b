"""Edit an ext4 partition inside a disk image with debugfs, in place, without mounting it.

debugfs opens the file system at a byte offset (`IMAGE?offset=N`, e2fsprogs' unix I/O manager),
so no partition is ever extracted or loop-mounted. Its commands run as one batch (`-f FILE`),
which is fast even for a wheelhouse of dozens of files.

debugfs exits 0 even when a command fails; it only prints an error on stderr. So every edit is
planned so that no error is expected (existing paths are looked up first: directories are not
made twice, files and links are removed before they are written), any stderr output is a
failure, and after writing everything is read back: type, mode, owner, size, link target, and
the sha256 of each file's bytes. Invariant: `apply` returns only when the partition holds exactly
what was asked.
"""

from __future__ import annotations

import hashlib
import re
import stat
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tools.imaging.build_errors import Ext4EditError, RecipeError
from tools.imaging.tools_run import last_line, run_tool

# debugfs splits its command lines on blanks and has no quoting we could rely on: paths are
# restricted to characters that need none (every path the recipe and pip produce fits).
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._+@:/-]*")
_BANNER = re.compile(r"debugfs \d")
_ECHO = re.compile(r"^debugfs: (\S+) ?(.*)$")
_NOT_FOUND = "File not found by ext2_lookup"
# A symlink target up to 59 bytes lives in the inode ("fast link"), and `stat` prints it.
FAST_LINK_MAX = 59


def _check_path(path: str) -> str:
    if not _SAFE_PATH.fullmatch(path) or ".." in PurePosixPath(path).parts or "//" in path:
        raise RecipeError(f"{path!r}: not an absolute path of plain characters")
    return path


@dataclass(frozen=True)
class Ext4File:
    """A regular file to write: its bytes come from `source` on the build machine."""

    path: str
    source: Path
    mode: int
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Ext4Symlink:
    """A symbolic link `path` -> `target` (owned by root, as systemctl enable makes them)."""

    path: str
    target: str


@dataclass(frozen=True)
class Ext4Dir:
    """A directory with an explicit mode and owner (parents are made 0755 root as needed)."""

    path: str
    mode: int
    uid: int = 0
    gid: int = 0


Ext4Entry = Ext4File | Ext4Symlink | Ext4Dir


@dataclass(frozen=True)
class Ext4Stat:
    """What debugfs `stat` says about one inode."""

    kind: str  # "regular", "directory", "symlink", ...
    mode: int  # permission bits only
    uid: int
    gid: int
    size: int
    link_target: str | None


def _parse_stat(text: str) -> Ext4Stat | None:
    kind = re.search(r"Type: (\S+)", text)
    mode = re.search(r"Mode:\s+(\d+)", text)
    owner = re.search(r"User:\s+(\d+)\s+Group:\s+(\d+)", text)
    size = re.search(r"Size: (\d+)", text)
    if not (kind and mode and owner and size):
        return None
    link = re.search(r'Fast link dest: "(.*)"', text)
    return Ext4Stat(
        kind.group(1),
        int(mode.group(1), 8),
        int(owner.group(1)),
        int(owner.group(2)),
        int(size.group(1)),
        link.group(1) if link else None,
    )


def _parents(path: str) -> list[str]:
    parts = PurePosixPath(path).parents
    return [str(p) for p in reversed(parts) if str(p) != "/"]


class Ext4Partition:
    """The ext4 file system at byte `offset` of `disk`."""

    def __init__(self, disk: Path, offset: int) -> None:
        self.disk = disk
        self.offset = offset
        self._spec = f"{disk}?offset={offset}"

    def _batch(self, commands: Sequence[str], *, write: bool, allow: str = "") -> str:
        """Run `commands` in one debugfs; stderr beyond the banner (and `allow`) is an error."""
        with tempfile.NamedTemporaryFile("w", prefix="pullprint-debugfs-", suffix=".cmd") as f:
            f.write("\n".join(commands) + "\n")
            f.flush()
            done = run_tool("debugfs", [*(["-w"] if write else []), "-f", f.name, self._spec])
        errors = [
            line
            for line in done.stderr.decode(errors="replace").splitlines()
            if line.strip() and not _BANNER.match(line) and not (allow and allow in line)
        ]
        if done.returncode != 0 or errors:
            detail = errors[0] if errors else last_line(done)
            raise Ext4EditError(f"debugfs on {self.disk} (offset {self.offset}): {detail}")
        return done.stdout.decode(errors="replace")

    def stat_many(self, paths: Iterable[str]) -> dict[str, Ext4Stat | None]:
        """path -> its inode (None when it does not exist), from one debugfs run."""
        wanted = [_check_path(p) for p in dict.fromkeys(paths)]
        if not wanted:
            return {}
        out = self._batch([f"stat {p}" for p in wanted], write=False, allow=_NOT_FOUND)
        found: dict[str, Ext4Stat | None] = dict.fromkeys(wanted)
        current: str | None = None
        chunks: dict[str, list[str]] = {}
        for line in out.splitlines():
            echo = _ECHO.match(line)
            if echo and echo.group(1) == "stat":
                current = echo.group(2).strip()
                chunks[current] = []
            elif current is not None:
                chunks[current].append(line)
        for path, lines in chunks.items():
            found[path] = _parse_stat("\n".join(lines))
        return found

    def read(self, path: str) -> bytes:
        """The bytes of the regular file at `path`."""
        with tempfile.TemporaryDirectory(prefix="pullprint-ext4-") as temp:
            local = Path(temp, "file")
            self._batch([f"dump {_check_path(path)} {local}"], write=False)
            if not local.exists():
                raise Ext4EditError(f"{path}: not found in the ext4 partition")
            return local.read_bytes()

    def apply(self, entries: Sequence[Ext4Entry]) -> dict[str, Ext4Stat]:
        """Make every entry exist exactly as given, then check it; returns what was checked.

        Raises:
            RecipeError: a path with characters debugfs cannot take, or a link target too long.
            Ext4EditError: a directory in the way of a file (or the reverse), debugfs failed, or
                the read-back differs.
        """
        explicit_dirs = {e.path: e for e in entries if isinstance(e, Ext4Dir)}
        leaves = [e for e in entries if not isinstance(e, Ext4Dir)]
        dirs = list(dict.fromkeys(d for e in entries for d in [*_parents(e.path)]))
        dirs += [p for p in explicit_dirs if p not in dirs]
        existing = self.stat_many([*dirs, *(e.path for e in leaves)])
        commands: list[str] = []
        for path in dirs:
            found = existing[path]
            if found is None:
                commands.append(f"mkdir {path}")
            elif found.kind != "directory":
                raise Ext4EditError(f"{path} exists in the root partition but is not a directory")
            wanted = explicit_dirs.get(path)
            if found is None or wanted is not None:
                mode, uid, gid = (wanted.mode, wanted.uid, wanted.gid) if wanted else (0o755, 0, 0)
                commands += self._owner_mode(path, stat.S_IFDIR | mode, uid, gid)
        for entry in leaves:
            found = existing[entry.path]
            if found is not None:
                if found.kind == "directory":
                    raise Ext4EditError(f"{entry.path} is a directory in the root partition")
                commands.append(f"rm {entry.path}")
            if isinstance(entry, Ext4File):
                commands.append(f"write {_check_path(str(entry.source))} {entry.path}")
                commands += self._owner_mode(
                    entry.path, stat.S_IFREG | entry.mode, entry.uid, entry.gid
                )
            else:
                if len(entry.target.encode()) > FAST_LINK_MAX:
                    raise RecipeError(f"{entry.path}: link target longer than {FAST_LINK_MAX}")
                commands.append(f"symlink {entry.path} {_check_path(entry.target)}")
                commands += self._owner_mode(entry.path, stat.S_IFLNK | 0o777, 0, 0)
        self._batch(commands, write=True)
        return self.verify(entries)

    @staticmethod
    def _owner_mode(path: str, mode: int, uid: int, gid: int) -> list[str]:
        return [
            f"set_inode_field {path} mode 0{mode:o}",
            f"set_inode_field {path} uid {uid}",
            f"set_inode_field {path} gid {gid}",
        ]

    def verify(self, entries: Sequence[Ext4Entry]) -> dict[str, Ext4Stat]:
        """Check that every entry is on the partition as given (content included)."""
        stats = self.stat_many(e.path for e in entries)
        checked: dict[str, Ext4Stat] = {}
        files = [e for e in entries if isinstance(e, Ext4File)]
        for entry in entries:
            found = stats[entry.path]
            want: tuple[str, int, int, int, int | None]
            if isinstance(entry, Ext4File):
                want = ("regular", entry.mode, entry.uid, entry.gid, entry.source.stat().st_size)
            elif isinstance(entry, Ext4Dir):
                want = ("directory", entry.mode, entry.uid, entry.gid, None)
            else:
                want = ("symlink", 0o777, 0, 0, len(entry.target.encode()))
            got = (found.kind, found.mode, found.uid, found.gid) if found else None
            if got != want[:4] or (found and want[4] is not None and found.size != want[4]):
                raise Ext4EditError(f"{entry.path}: expected {want}, found {found}")
            if isinstance(entry, Ext4Symlink) and found and found.link_target != entry.target:
                raise Ext4EditError(f"{entry.path}: links to {found.link_target!r}")
            assert found is not None  # checked just above
            checked[entry.path] = found
        with tempfile.TemporaryDirectory(prefix="pullprint-ext4-") as temp:
            dumps = [f"dump {e.path} {temp}/{i}" for i, e in enumerate(files)]
            if dumps:
                self._batch(dumps, write=False)
            for i, entry in enumerate(files):
                if sha256_file(Path(temp, str(i))) != sha256_file(entry.source):
                    raise Ext4EditError(f"{entry.path}: the bytes read back differ")
        return checked

    def check(self) -> None:
        """Run e2fsck read-only over the whole file system; any problem is an error."""
        done = run_tool("e2fsck", ["-fn", self._spec])
        if done.returncode != 0:
            raise Ext4EditError(f"e2fsck found problems in {self.disk}: {last_line(done)}")


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
