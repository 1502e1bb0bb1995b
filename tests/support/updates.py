"""A tiny stand-in for pullprint, packaged as a real wheel, to update stations with in tests.

`probe_wheel` writes `pullprint-VERSION-py3-none-any.whl` holding one module and the
`pullprint` console script, so pip installs it into a slot's venv exactly as it would install
the real thing, and the slot's self-check (`pullprint --version`) and the service
(`pullprint station run`, Type=notify) run it. Its behaviour under `station run`:

- ok:     sends READY=1 to $NOTIFY_SOCKET, then runs until SIGTERM
- crash:  exits 3 at once (systemd would restart it: a crash loop)
- silent: runs but never says READY=1
"""

from __future__ import annotations

import base64
import hashlib
import textwrap
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.update_bundle import REQUIREMENTS, manifest_for, sign_manifest, write_bundle

PROBE = """\
import os
import signal
import socket
import sys
import time

VERSION = {version!r}
BEHAVIOUR = {behaviour!r}


def _notify(text):
    path = os.environ.get("NOTIFY_SOCKET")
    if path:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(text.encode(), path)


def main():
    args = sys.argv[1:]
    if args == ["--version"]:
        print("pullprint " + VERSION)
        return 0
    if args[:2] != ["station", "run"]:
        return 2
    if BEHAVIOUR == "crash":
        return 3
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if BEHAVIOUR == "ok":
        _notify("READY=1\\nSTATUS=probe " + VERSION)
    while True:
        time.sleep(0.2)
"""


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def probe_wheel(folder: Path, version: str, behaviour: str = "ok") -> Path:
    """Write the probe's wheel (and requirements.txt) into `folder`; returns the wheel."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"pullprint-{version}.dist-info"
    files = {
        "ppprobe/__init__.py": PROBE.format(version=version, behaviour=behaviour).encode(),
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: pullprint\nVersion: {version}\n"
        ).encode(),
        f"{info}/WHEEL": textwrap.dedent(
            """\
            Wheel-Version: 1.0
            Generator: pullprint-tests
            Root-Is-Purelib: true
            Tag: py3-none-any
            """
        ).encode(),
        f"{info}/entry_points.txt": b"[console_scripts]\npullprint = ppprobe:main\n",
    }
    record = [_record_line(name, data) for name, data in files.items()]
    record.append(f"{info}/RECORD,,")
    wheel = folder / f"pullprint-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    (folder / REQUIREMENTS).write_text(f"pullprint=={version}\n")
    return wheel


def probe_bundle(
    out: Path,
    key: Ed25519PrivateKey | None,
    version: str,
    *,
    min_version: str | None = None,
    behaviour: str = "ok",
) -> Path:
    """A bundle of the probe (signed with `key`, or unsigned), built as `pullprint update
    build` builds one."""
    wheels = out.parent / f"wheels-{version}-{behaviour}"
    wheel = probe_wheel(wheels, version, behaviour)
    files = {wheel.name: wheel, REQUIREMENTS: wheels / REQUIREMENTS}
    created = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    manifest = manifest_for(files.values(), version, min_version or version, created).to_bytes()
    signature = sign_manifest(manifest, key) if key is not None else None
    write_bundle(out, manifest, signature, files)
    return out
