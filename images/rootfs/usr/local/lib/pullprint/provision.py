"""Move a station's first-boot settings off the FAT boot partition (run by pullprint-firstboot).

`pullprint flash` leaves, under `pullprint/` on the boot partition (tools/imaging/bootfs.py):
- `station.toml`: `[station] name`, `[cloud] url`: merged into /etc/pullprint/station.toml, which
  is written 0600 and owned by the station's user (it may hold a token once the station pairs);
- `wifi.toml`: `ssid`, `country`, `psk_hex`: becomes a root-only (0600) NetworkManager keyfile,
  and the country goes on the kernel command line (`cfg80211.ieee80211_regdom=`), which is where
  Raspberry Pi OS keeps it.

Invariants: a source file is deleted from the boot partition only after its destination is
written and synced; nothing secret is ever printed; a file that cannot be used is left where it
is and the run fails (exit 1), so the unit shows as failed and runs again next boot.

Only the standard library: this runs with the system Python before the venv exists.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import sys
import tomllib
import uuid
from pathlib import Path

SETTINGS_DIR = "pullprint"
NM_CONNECTION = "pullprint-wifi.nmconnection"
Scalar = str | int | float | bool
Table = dict[str, Scalar]


class ProvisionError(Exception):
    """A settings file that cannot be used; the message never holds a secret."""


def _toml_string(value: str) -> str:
    out = []
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char.isprintable() and char != "\x7f":
            out.append(char)
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def _toml_value(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return _toml_string(value)


def _tables(doc: dict[str, object], source: str) -> dict[str, Table]:
    """The document as section -> key -> scalar: all the station's config ever holds."""
    tables: dict[str, Table] = {}
    for section, body in doc.items():
        if not isinstance(body, dict):
            raise ProvisionError(f"{source}: top-level key {section!r} is not a [section]")
        table: Table = {}
        for key, value in body.items():
            if not isinstance(value, str | int | float | bool):
                raise ProvisionError(f"{source}: [{section}] {key} is not a string or number")
            table[key] = value
        tables[section] = table
    return tables


def render_toml(tables: dict[str, Table]) -> str:
    """TOML text for section -> key -> scalar (tomllib reads; the stdlib has no writer)."""
    lines = ["# Written by pullprint-firstboot from the boot partition's pullprint/station.toml."]
    for section, table in tables.items():
        lines += ["", f"[{section}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def _load(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        # The parser's message can quote the offending line, which may be a secret: drop it.
        raise ProvisionError(f"{path} is not valid TOML ({type(exc).__name__})") from None


def _write_private(path: Path, text: str, uid: int, gid: int) -> None:
    """Write `text` to `path` atomically, 0600 and owned by uid:gid from the first byte on."""
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    temp.replace(path)


def _scrub(path: Path) -> None:
    """Overwrite `path` with zeros, then delete it.

    FAT rewrites a file in place, so this clears the clusters the file system used; the card's
    own wear levelling may still hold old copies, which is why no passphrase is ever written
    there (only the derived Wi-Fi key, which still opens the network).
    """
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.write(b"\0" * size)
        f.flush()
        os.fsync(f.fileno())
    path.unlink()


def install_station_toml(source: Path, etc_dir: Path, uid: int, gid: int) -> Path:
    """Merge `source` over /etc/pullprint/station.toml (if any); returns the file written."""
    incoming = _tables(_load(source), str(source))
    target = etc_dir / "station.toml"
    merged = _tables(_load(target), str(target)) if target.exists() else {}
    for section, table in incoming.items():
        merged.setdefault(section, {}).update(table)
    etc_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chown(etc_dir, uid, gid)
    etc_dir.chmod(0o700)
    _write_private(target, render_toml(merged), uid, gid)
    return target


def _nm_ssid(ssid: str) -> str:
    # NetworkManager's keyfile reads a plain value, or bytes as "d;d;d;" when the name has
    # characters its key-file syntax would change (';', '\\', leading or trailing space).
    if ssid.isprintable() and ssid == ssid.strip() and not re.search(r"[;\\#]", ssid):
        return ssid
    return "".join(f"{byte};" for byte in ssid.encode("utf-8"))


def install_wifi(source: Path, nm_dir: Path, cmdline: Path | None) -> Path:
    """Turn `wifi.toml` into a root-only NetworkManager connection; returns the keyfile."""
    doc = _load(source)
    ssid, psk, country = doc.get("ssid"), doc.get("psk_hex"), doc.get("country", "GB")
    if not isinstance(ssid, str) or not 1 <= len(ssid.encode("utf-8")) <= 32:
        raise ProvisionError(f"{source}: ssid must be 1 to 32 bytes")
    if not isinstance(psk, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", psk):
        raise ProvisionError(f"{source}: psk_hex must be 64 hex digits")
    if not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country):
        raise ProvisionError(f"{source}: country must be a two-letter code such as GB")
    keyfile = (
        "[connection]\n"
        "id=pullprint-wifi\n"
        f"uuid={uuid.uuid4()}\n"
        "type=wifi\n"
        "autoconnect=true\n\n"
        "[wifi]\n"
        "mode=infrastructure\n"
        f"ssid={_nm_ssid(ssid)}\n\n"
        "[wifi-security]\n"
        "key-mgmt=wpa-psk\n"
        # 64 hex digits are the raw key: NetworkManager passes them to wpa_supplicant as is.
        f"psk={psk.lower()}\n\n"
        "[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto\n"
    )
    nm_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = nm_dir / NM_CONNECTION
    # NetworkManager ignores a keyfile that is not root's and 0600 (this runs as root; the
    # tests, as whoever runs them).
    _write_private(target, keyfile, os.geteuid(), os.getegid())
    if cmdline is not None and cmdline.exists():
        words = [
            w
            for w in cmdline.read_text(encoding="ascii").split()
            if not w.startswith("cfg80211.ieee80211_regdom=")
        ]
        cmdline.write_text(" ".join([*words, f"cfg80211.ieee80211_regdom={country}"]) + "\n")
    return target


def main(argv: list[str] | None = None) -> int:
    """Provision from the boot partition; 0 when every file present was used."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boot-dir", type=Path, default=Path("/boot/firmware"))
    parser.add_argument("--etc-dir", type=Path, default=Path("/etc/pullprint"))
    parser.add_argument(
        "--nm-dir", type=Path, default=Path("/etc/NetworkManager/system-connections")
    )
    parser.add_argument("--owner", default="pullprint", help="user owning /etc/pullprint")
    args = parser.parse_args(argv)
    settings = args.boot_dir / SETTINGS_DIR
    failed = False
    station, wifi = settings / "station.toml", settings / "wifi.toml"
    if station.exists():
        try:
            user = pwd.getpwnam(args.owner)
            written = install_station_toml(station, args.etc_dir, user.pw_uid, user.pw_gid)
        except (KeyError, ProvisionError, OSError) as exc:
            print(f"provision: station settings not moved: {exc}", file=sys.stderr)
            failed = True
        else:
            _scrub(station)
            print(f"provision: station settings moved to {written} (0600), deleted from {station}")
    if wifi.exists():
        try:
            written = install_wifi(wifi, args.nm_dir, args.boot_dir / "cmdline.txt")
        except (ProvisionError, OSError) as exc:
            print(f"provision: Wi-Fi settings not moved: {exc}", file=sys.stderr)
            failed = True
        else:
            _scrub(wifi)
            print(f"provision: Wi-Fi connection written to {written} (0600), deleted from {wifi}")
    if not failed and args.etc_dir.is_dir():
        # A station.toml seeded by the image build (`--station-config`) is root's until now.
        try:
            _hand_over(args.etc_dir, pwd.getpwnam(args.owner))
        except (KeyError, OSError) as exc:
            print(f"provision: {args.etc_dir} not handed to {args.owner}: {exc}", file=sys.stderr)
            failed = True
    os.sync()
    return 1 if failed else 0


def _hand_over(etc_dir: Path, user: pwd.struct_passwd) -> None:
    """/etc/pullprint 0700 and station.toml 0600, both the station user's (it reads them)."""
    os.chown(etc_dir, user.pw_uid, user.pw_gid)
    etc_dir.chmod(0o700)
    station = etc_dir / "station.toml"
    if station.exists():
        os.chown(station, user.pw_uid, user.pw_gid)
        station.chmod(0o600)


if __name__ == "__main__":
    sys.exit(main())
