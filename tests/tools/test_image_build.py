"""`pullprint image build` on a synthetic Raspberry Pi OS-shaped base, inspected without mounts.

The image side is checked with the tools themselves, not with the code under test: `mtype` and
`mdir` for the FAT boot partition, `debugfs -R 'stat|cat'` and `e2fsck -fn` for ext4, Debian's
`bmaptool copy` for the block map. The first-boot script runs in a scratch root with its paths
moved by environment variables, installing into a real venv from a local wheelhouse with
--no-index. Missing tools fail the test with the Debian package to install.
"""

from __future__ import annotations

import getpass
import hashlib
import lzma
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.update_bundle import public_key_text, read_public_keys
from tests.tools.disk_images import run
from tests.tools.station_images import (
    BOOT_START,
    CHECKOUT,
    CONFIG_TXT,
    ROOT_START,
    full_wheelhouse,
    make_not_pi_base,
    make_pi_base,
    pullprint_wheel,
    require,
)
from tools.cli import main
from tools.imaging.bootfs import StationSettings, read_partitions, wpa_psk_hex
from tools.imaging.build_errors import BaseImageError, WheelhouseError
from tools.imaging.wheelhouse import inspect_wheelhouse

RECIPE = CHECKOUT / "images"
ROOTFS = RECIPE / "rootfs"
UNITS = ("pullprint-firstboot.service", "pullprint-station.service")
WANTS = "/etc/systemd/system/multi-user.target.wants"
SECRET_TOKEN = "ppt_0123456789abcdef-secret-token"


@dataclass(frozen=True)
class Built:
    """One image built by the module fixture, with what went into it."""

    image: Path
    wheel: Path
    stdout: str
    update_key: str


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pullprint_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Built:
    """A read-only-root build from a raw base, through the CLI, as facilities staff run it."""
    require("debugfs", "e2fsck", "mtype", "mdir", "bmaptool")
    tmp = tmp_path_factory.mktemp("built")
    base = make_pi_base(tmp / "base.img", root_mib=256)
    wheelhouse = tmp / "wheelhouse"
    wheelhouse.mkdir()
    shutil.copy2(wheel, wheelhouse / wheel.name)
    image = tmp / "station.img"
    key = Ed25519PrivateKey.generate().public_key()
    (tmp / "update.key.pub").write_text(f"# admin's key\n{public_key_text(key)}\n")
    argv = ["image", "build", "--base", str(base), "--out", str(image)]
    argv += ["--wheelhouse", str(wheelhouse), "--read-only-root", "--data-size", "32"]
    argv += ["--update-key", str(tmp / "update.key.pub")]
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", *argv],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return Built(image, wheel, done.stdout, public_key_text(key))


def _spec(image: Path, offset: int = ROOT_START) -> str:
    return f"{image}?offset={offset}"


def _ext4_stat(image: Path, path: str, offset: int = ROOT_START) -> tuple[str, int, int, int]:
    """(type, permission bits, uid, gid) of `path`, from `debugfs -R stat`."""
    out = run("debugfs", "-R", f"stat {path}", _spec(image, offset))
    kind = re.search(r"Type: (\S+)", out)
    mode = re.search(r"Mode:\s+(\d+)", out)
    owner = re.search(r"User:\s+(\d+)\s+Group:\s+(\d+)", out)
    assert kind and mode and owner, f"{path} is not in the root partition"
    return kind.group(1), int(mode.group(1), 8), int(owner.group(1)), int(owner.group(2))


def _ext4_cat(image: Path, path: str, offset: int = ROOT_START) -> bytes:
    done = subprocess.run(
        [shutil.which("debugfs") or "/usr/sbin/debugfs", "-R", f"cat {path}", _spec(image, offset)],
        capture_output=True,
        check=True,
    )
    return done.stdout


def _fat_cat(image: Path, path: str) -> bytes:
    env = dict(os.environ, MTOOLSRC="/dev/null", MTOOLS_SKIP_CHECK="1")
    return subprocess.run(
        ["mtype", "-i", f"{image}@@{BOOT_START}", f"::/{path}"],
        capture_output=True,
        env=env,
        check=True,
    ).stdout


def _recipe_files() -> dict[str, Path]:
    return {"/" + p.relative_to(ROOTFS).as_posix(): p for p in ROOTFS.rglob("*") if p.is_file()}


# The image ------------------------------------------------------------------------------------


def test_every_recipe_file_is_in_the_root_with_its_bytes_mode_and_owner(built: Built) -> None:
    files = _recipe_files()
    assert len(files) >= 8
    for path, local in files.items():
        kind, mode, uid, gid = _ext4_stat(built.image, path)
        expected_mode = 0o755 if path.startswith("/usr/local/sbin/") else 0o644
        assert (kind, mode, uid, gid) == ("regular", expected_mode, 0, 0), path
        assert _ext4_cat(built.image, path) == local.read_bytes(), path


def test_units_are_enabled_by_links_in_multi_user_wants(built: Built) -> None:
    listing = run("debugfs", "-R", f"ls -l {WANTS}", _spec(built.image))
    for unit in UNITS:
        assert unit in listing
        out = run("debugfs", "-R", f"stat {WANTS}/{unit}", _spec(built.image))
        assert "Type: symlink" in out
        assert f'Fast link dest: "/usr/lib/systemd/system/{unit}"' in out


def test_the_update_timer_is_enabled_and_the_update_key_pinned_for_root(built: Built) -> None:
    link = "/etc/systemd/system/timers.target.wants/pullprint-update.timer"
    out = run("debugfs", "-R", f"stat {link}", _spec(built.image))
    assert 'Fast link dest: "/usr/lib/systemd/system/pullprint-update.timer"' in out
    assert _ext4_stat(built.image, "/etc/pullprint-update-keys") == ("regular", 0o644, 0, 0)
    keys = read_public_keys(_ext4_cat(built.image, "/etc/pullprint-update-keys").decode())
    assert [public_key_text(k) for k in keys] == [built.update_key]


def test_wheelhouse_holds_the_pullprint_wheel_and_what_to_install(built: Built) -> None:
    path = f"/opt/pullprint/wheelhouse/{built.wheel.name}"
    assert _ext4_stat(built.image, path) == ("regular", 0o644, 0, 0)
    assert _ext4_cat(built.image, path) == built.wheel.read_bytes()
    requirements = _ext4_cat(built.image, "/opt/pullprint/wheelhouse/requirements.txt")
    assert requirements == b"pullprint[station]==0.1.0\n"
    info = tomllib.loads(_ext4_cat(built.image, "/etc/pullprint-image.toml").decode())
    assert info["pullprint"] == "0.1.0"
    assert info["read_only_root"] is True
    assert _ext4_stat(built.image, "/etc/pullprint") == ("directory", 0o700, 0, 0)


def test_read_only_root_has_its_marker_fstab_line_drop_in_and_data_partition(built: Built) -> None:
    assert _ext4_cat(built.image, "/etc/pullprint/read-only-root") == b"overlay\n"
    fstab = _ext4_cat(built.image, "/etc/fstab").decode()
    assert fstab.startswith("proc ")  # the base's lines are kept
    assert "LABEL=ppdata  /var/lib/pullprint  ext4  defaults,noatime,nofail  0  2" in fstab
    assert _ext4_stat(built.image, "/var/lib/pullprint") == ("directory", 0o700, 0, 0)
    drop_in = "/etc/systemd/system/pullprint-station.service.d/data-partition.conf"
    assert b"RequiresMountsFor=/var/lib/pullprint" in _ext4_cat(built.image, drop_in)
    assert _ext4_stat(built.image, "/usr/local/sbin/pullprint-overlay-init")[1] == 0o755
    with open(built.image, "rb") as f:
        partitions = read_partitions(f.read(34 * 512))
    data = partitions[2]
    assert (data.number, data.size_bytes) == (3, 32 << 20)
    stats = run("debugfs", "-R", "stats", _spec(built.image, data.start_bytes))
    assert re.search(r"Filesystem volume name:\s+ppdata", stats)
    for offset in (ROOT_START, data.start_bytes):
        run("e2fsck", "-fn", _spec(built.image, offset))  # fails the test on any problem


def test_boot_partition_gets_spi_i2c_and_the_settings_readme(built: Built) -> None:
    config = _fat_cat(built.image, "config.txt").decode()
    assert config.startswith(CONFIG_TXT)  # the base's settings are kept, ours come after
    assert "dtparam=spi=on" in config
    assert "dtparam=i2c_arm=on" in config
    env = dict(os.environ, MTOOLSRC="/dev/null", MTOOLS_SKIP_CHECK="1")
    listing = subprocess.run(
        ["mdir", "-i", f"{built.image}@@{BOOT_START}", "-b", "::/pullprint"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "README.txt" in listing
    readme = (RECIPE / "bootfs/pullprint/README.txt").read_bytes()
    assert _fat_cat(built.image, "pullprint/README.txt") == readme


def test_report_lists_every_path_with_partition_size_mode_and_sha256(built: Built) -> None:
    lines = {line.split()[1]: line.split() for line in built.stdout.splitlines()[1:] if line}
    for path, local in _recipe_files().items():
        partition, _, size, mode, digest = lines[path]
        assert partition == "root"
        assert int(size) == local.stat().st_size
        assert mode in ("0644", "0755")
        assert digest == hashlib.sha256(local.read_bytes()).hexdigest()
    assert lines["/config.txt"][0] == "boot"
    assert (
        lines[f"/opt/pullprint/wheelhouse/{built.wheel.name}"][4]
        == hashlib.sha256(built.wheel.read_bytes()).hexdigest()
    )
    assert "data: partition 3, ext4 labelled ppdata, 32 MiB" in built.stdout


def test_bmaptool_copy_of_the_xz_equals_the_image_and_the_xz_decompresses(
    built: Built, tmp_path: Path
) -> None:
    xz = built.image.with_name("station.img.xz")
    bmap = built.image.with_name("station.img.bmap")
    copy = tmp_path / "card.img"
    run("bmaptool", "copy", "--bmap", bmap, xz, copy)
    assert _sha256(copy) == _sha256(built.image)
    digest = hashlib.sha256()
    with lzma.open(xz) as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == _sha256(built.image)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def test_xz_base_and_station_config_the_secret_never_shown(
    tmp_path: Path, wheel: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = make_pi_base(tmp_path / "base.img")
    run("xz", "-T1", "-0", base)
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    shutil.copy2(wheel, wheelhouse)
    config = tmp_path / "station.toml"
    config.write_text(f'[cloud]\ntoken = "{SECRET_TOKEN}"\n')
    out = tmp_path / "station.img"
    argv = ["image", "build", "--base", f"{base}.xz", "--out", str(out)]
    assert main([*argv, "--wheelhouse", str(wheelhouse), "--station-config", str(config)]) == 0
    printed = capsys.readouterr().out
    line = next(ln for ln in printed.splitlines() if "/etc/pullprint/station.toml" in ln)
    assert line.split()[3:] == ["0600", "<secret>"]
    assert SECRET_TOKEN not in printed
    assert hashlib.sha256(config.read_bytes()).hexdigest() not in printed
    assert _ext4_stat(out, "/etc/pullprint/station.toml") == ("regular", 0o600, 0, 0)
    assert _ext4_cat(out, "/etc/pullprint/station.toml") == config.read_bytes()
    # Without --read-only-root: no overlay init, no data partition, fstab untouched.
    assert "pullprint-overlay-init" not in printed
    with open(out, "rb") as f:
        assert len(read_partitions(f.read(34 * 512))) == 2


def test_a_base_that_is_not_a_pi_layout_fails_with_a_clear_error(
    tmp_path: Path, wheel: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = make_not_pi_base(tmp_path / "other.img")
    wheelhouse = tmp_path / "wh"
    wheelhouse.mkdir()
    shutil.copy2(wheel, wheelhouse)
    out = tmp_path / "station.img"
    argv = [
        "image",
        "build",
        "--base",
        str(base),
        "--out",
        str(out),
        "--wheelhouse",
        str(wheelhouse),
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "not a Raspberry Pi OS image" in err
    assert "partition 1 FAT (boot) and partition 2 ext4 (root)" in err
    assert not out.exists()  # nothing half-built is left behind
    blank = tmp_path / "blank.img"
    blank.write_bytes(bytes(1 << 20))
    assert main([*argv[:3], str(blank), *argv[4:]]) == 1
    assert "no partition table" in capsys.readouterr().err


def test_a_wheelhouse_without_pullprint_or_with_an_sdist_is_refused(tmp_path: Path) -> None:
    (tmp_path / "requests-2.32.0-py3-none-any.whl").write_bytes(b"PK")
    with pytest.raises(WheelhouseError, match="exactly one pullprint"):
        inspect_wheelhouse(tmp_path)
    (tmp_path / "evdev-1.9.0.tar.gz").write_bytes(b"")
    with pytest.raises(WheelhouseError, match="more than wheels: evdev"):
        inspect_wheelhouse(tmp_path)
    assert issubclass(BaseImageError, ValueError)


# The recipe's units and scripts ---------------------------------------------------------------


def test_units_pass_systemd_analyze_verify_and_security(tmp_path: Path) -> None:
    require("systemd-analyze")
    root = tmp_path / "root"
    units = root / "usr/lib/systemd/system"
    # verify --root resolves targets and ExecStart inside the root: give it the host's units.
    shutil.copytree("/usr/lib/systemd/system", units, symlinks=True)
    every = (*UNITS, "pullprint-update.service", "pullprint-update.timer")
    for unit in every:
        shutil.copy2(ROOTFS / "usr/lib/systemd/system" / unit, units / unit)
    for exe in (
        "opt/pullprint/current/bin/pullprint",
        "usr/local/sbin/pullprint-firstboot",
        "usr/local/sbin/pullprint-update",
    ):
        (root / exe).parent.mkdir(parents=True, exist_ok=True)
        (root / exe).write_text("#!/bin/sh\n")
        (root / exe).chmod(0o755)
    done = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *every],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    # --threshold is on a 0-100 scale: 20 means "exposure 2.0 or better" (it rates 1.6 here).
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", units / UNITS[1]],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-500:] + done.stderr
    # The updater is root (it writes /opt and restarts the station); it rates 2.4 here.
    done = subprocess.run(
        [
            *("systemd-analyze", "security", "--offline=yes", "--threshold=30"),
            units / "pullprint-update.service",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-500:] + done.stderr


def test_shell_scripts_parse_and_pass_shellcheck() -> None:
    scripts = sorted((ROOTFS / "usr/local/sbin").iterdir())
    assert len(scripts) == 3
    for script in scripts:
        assert script.read_text().startswith("#!/bin/sh\n")
        subprocess.run(["sh", "-n", script], check=True)
    assert shutil.which("shellcheck"), "shellcheck is installed by tools/quickstart.sh test"
    subprocess.run(["shellcheck", "--shell=sh", *scripts], check=True)


# First boot, in a scratch root ----------------------------------------------------------------


def _fake_root(tmp_path: Path, built: Built) -> tuple[Path, dict[str, str]]:
    """A scratch root holding the image's own first-boot files, and the env that points there."""
    root = tmp_path / "root"
    for path in ("/usr/local/sbin/pullprint-firstboot", "/usr/local/lib/pullprint/provision.py"):
        local = root / path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(_ext4_cat(built.image, path))  # the bytes in the image, not the recipe
        local.chmod(0o755)
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/systemctl.log\n')
    systemctl.chmod(0o755)
    env = dict(
        os.environ,
        PULLPRINT_ROOT=str(root),
        PULLPRINT_PYTHON=sys.executable,
        PULLPRINT_SYSTEMCTL=str(systemctl),
        PULLPRINT_OWNER=getpass.getuser(),
    )
    return root, env


def test_first_boot_moves_secrets_installs_offline_and_disables_itself(
    tmp_path: Path, built: Built
) -> None:
    root, env = _fake_root(tmp_path, built)
    full_wheelhouse(root / "opt/pullprint/wheelhouse", built.wheel)
    boot = root / "boot/firmware"
    (boot / "pullprint").mkdir(parents=True)
    psk = wpa_psk_hex("Office; 2nd floor", "correct horse battery")
    settings = StationSettings("Lobby 1", "https://print.example.org", "Office; 2nd floor", psk)
    for name, content in settings.files().items():  # exactly what `pullprint flash` writes
        (boot / "pullprint" / name).write_bytes(content)
    (boot / "pullprint/README.txt").write_text("stays\n")
    (boot / "cmdline.txt").write_text("console=tty1 root=PARTUUID=abcdef01-02 rootwait\n")
    etc = root / "etc/pullprint"
    etc.mkdir(parents=True)
    (etc / "station.toml").write_text('[station]\nname = "old"\n[printer]\nuri = "ipp://p/ipp"\n')
    (etc / "read-only-root").write_text("overlay\n")

    script = root / "usr/local/sbin/pullprint-firstboot"
    done = subprocess.run(
        [script], env=env, check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert psk not in done.stdout + done.stderr  # the key is never logged

    # Secrets moved (0600) and gone from the boot partition; the README stays.
    assert sorted(p.name for p in (boot / "pullprint").iterdir()) == ["README.txt"]
    station = etc / "station.toml"
    assert stat.S_IMODE(station.stat().st_mode) == 0o600
    assert stat.S_IMODE(etc.stat().st_mode) == 0o700
    merged = tomllib.loads(station.read_text())
    assert merged["station"] == {"name": "Lobby 1"}
    assert merged["cloud"] == {"url": "https://print.example.org"}
    assert merged["printer"] == {"uri": "ipp://p/ipp"}  # the base's settings survive
    keyfile = root / "etc/NetworkManager/system-connections/pullprint-wifi.nmconnection"
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    text = keyfile.read_text()
    assert f"psk={psk}\n" in text
    # ';' is special in NetworkManager key files: the SSID is written as bytes.
    ssid_bytes = "".join(f"{b};" for b in b"Office; 2nd floor")
    assert f"ssid={ssid_bytes}\n" in text

    # The venv was made in slot a from the wheelhouse with --no-index, works, and is current.
    venv = root / "opt/pullprint/slots/a"
    assert (venv / ".complete").exists()
    assert (venv / ".version").read_text() == "0.1.0\n"
    assert os.readlink(root / "opt/pullprint/current") == "slots/a"
    shown = subprocess.run(
        [venv / "bin/python", "-m", "pip", "show", "pullprint"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert "Version: 0.1.0" in shown.stdout
    subprocess.run([venv / "bin/pullprint", "--help"], check=True, capture_output=True)

    # Read-only root from the next boot, Wi-Fi country on the command line, unit disabled.
    cmdline = (boot / "cmdline.txt").read_text()
    assert cmdline.split()[-2:] == [
        "cfg80211.ieee80211_regdom=GB",
        "init=/usr/local/sbin/pullprint-overlay-init",
    ]
    assert (etc / ".firstboot-done").exists()
    log = (tmp_path / "systemctl.log").read_text().splitlines()
    assert log == ["disable pullprint-firstboot.service", "--no-block reboot"]

    # Run again (a second boot before the marker took effect): nothing to do, no reboot.
    again = subprocess.run(
        [script], env=env, check=False, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "systemctl.log").read_text().splitlines()[2:] == [
        "disable pullprint-firstboot.service"
    ]
    assert (boot / "cmdline.txt").read_text() == cmdline


def test_first_boot_keeps_a_bad_wifi_file_fails_and_says_nothing_secret(
    tmp_path: Path, built: Built
) -> None:
    root, env = _fake_root(tmp_path, built)
    settings = root / "boot/firmware/pullprint"
    settings.mkdir(parents=True)
    bad = 'ssid = "Office"\ncountry = "GB"\npsk_hex = "not-a-key-but-a-secret"\n'
    (settings / "wifi.toml").write_text(bad)
    done = subprocess.run(
        [root / "usr/local/sbin/pullprint-firstboot"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "psk_hex must be 64 hex digits" in done.stderr
    assert "not-a-key-but-a-secret" not in done.stdout + done.stderr
    assert (settings / "wifi.toml").read_text() == bad  # kept for the next try
    assert not (root / "opt/pullprint/slots/a").exists()
