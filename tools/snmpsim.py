"""Serve SNMP recordings with `snmpsim-command-responder` on loopback (tests, the /24 sweep bench).

The recordings in shared/data/snmprec are copied into a temporary data directory (the shared
files are never touched), with the two upstream faults that README.md describes fixed in the
copy. Tests may add recordings of their own before `start()`. snmpsim answers SNMPv1/v2c with
community = file stem, and SNMPv3 for one USM user (authPriv SHA/AES) with context = file stem.
The responder listens on 127.0.0.1 only and is stopped by PID, unless `hosts` names more
loopback addresses (127.0.0.0/8): then it listens on each, at one port, and a recording added
with `add_host_recording` answers on its host only (snmpsim selects data files by the listening
endpoint's transport ID, `<md5(community)>/1.3.6.1.6.1.1.<n>.snmprec`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import sys
from pathlib import Path

from tools.procs import ServerProcess, ServerProcessContext, free_udp_port

SHARED_SNMPREC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "snmprec"
UDP_TRANSPORT_ID = "1.3.6.1.6.1.1"  # snmpsim numbers its UDP/IPv4 endpoints under this

V3_USER = "pullprint-test"
V3_AUTH_KEY = "auth-secret-8chars"
V3_PRIV_KEY = "priv-secret-8chars"
READY_COMMUNITY = "pullprint-ready"


class SnmpSimError(RuntimeError):
    """snmpsim could not be started, or the shared recordings are missing."""


def shared_recordings() -> list[Path]:
    """Every *.snmprec in the shared folder, sorted; fails clearly when the folder is absent."""
    if not SHARED_SNMPREC.is_dir():
        raise SnmpSimError(
            f"shared SNMP recordings not found at {SHARED_SNMPREC}: the repository clone needs "
            "shared/ beside it (shared/data/snmprec)"
        )
    found = sorted(SHARED_SNMPREC.glob("*.snmprec"))
    if not found:
        raise SnmpSimError(f"no *.snmprec files in {SHARED_SNMPREC}")
    return found


def fixed_recording(path: Path) -> str:
    """The text of a shared recording with the upstream faults of README.md repaired."""
    lines = path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    fixed = []
    for line in lines:
        parts = line.split("|", 2)
        numeric = len(parts) == 3 and parts[1] in ("65", "66", "67", "70", "2")
        if numeric and not re.fullmatch(r"-?\d+", parts[2]):
            # okilan_9450g: a corrupt Counter32 ("6git3159") stops every walk at that line.
            continue
        if len(parts) == 3 and parts[1] == "6" and parts[2] == "0":
            # zebra: a one-arc OID value cannot be encoded; snmpsim drops the whole response.
            fixed.append(f"{parts[0]}|6|0.0")
        else:
            fixed.append(line)
    return "\n".join(fixed) + "\n"


class SnmpSimulator(ServerProcessContext):
    """A running snmpsim serving the shared recordings plus any added; a context manager."""

    def __init__(
        self,
        work_dir: Path,
        *,
        start_timeout_s: float = 20.0,
        hosts: tuple[str, ...] = ("127.0.0.1",),
    ) -> None:
        if not hosts or not all(h.startswith("127.") for h in hosts):
            raise SnmpSimError("snmpsim is started on loopback addresses only")
        self.hosts = hosts
        self.work_dir = work_dir
        self.data_dir = work_dir / "data"
        self.cache_dir = work_dir / "cache"
        self.start_timeout_s = start_timeout_s
        self.port = 0
        self.host = hosts[0]
        self.communities: list[str] = []
        self._per_host = False
        self._log_path = work_dir / "snmpsim.log"
        self._server = ServerProcess("snmpsim", work_dir / "snmpsim.out", error=SnmpSimError)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)

    def add_recording(self, community: str, text: str) -> None:
        """Serve `text` (snmprec lines) under `community`; call before `start()`."""
        if self._server.process is not None:
            raise SnmpSimError("add recordings before start(): snmpsim indexes them at start")
        (self.data_dir / f"{community}.snmprec").write_text(text, encoding="utf-8")
        self.communities.append(community)

    def add_host_recording(self, host: str, community: str, text: str) -> None:
        """Serve `text` under `community` on `host` only (one of `hosts`); before `start()`."""
        if self._server.process is not None:
            raise SnmpSimError("add recordings before start(): snmpsim indexes them at start")
        index = self.hosts.index(host)  # the endpoint's position is its transport ID
        self._per_host = True
        # snmpsim maps a v1/v2c community to the context md5(community) and probes
        # `<context>/<transport ID>` for a per-endpoint file, so the folder is named by the hash.
        folder = self.data_dir / hashlib.md5(community.encode(), usedforsecurity=False).hexdigest()
        folder.mkdir(exist_ok=True)
        (folder / f"{UDP_TRANSPORT_ID}.{index}.snmprec").write_text(text, encoding="utf-8")
        # snmpsim accepts a v1/v2c community only if a data file has that name; the request is
        # then served from the endpoint's own file (`<community>/<transport ID>`), found first.
        plain = self.data_dir / f"{community}.snmprec"
        if not plain.exists():
            plain.write_text("1.3.6.1.2.1.1.1.0|4|no recording for this endpoint\n")

    def copy_shared(self) -> list[str]:
        """Copy (and repair) every shared recording into the data dir; returns the communities."""
        names = []
        for path in shared_recordings():
            self.add_recording(path.stem, fixed_recording(path))
            names.append(path.stem)
        return names

    def start(self) -> None:
        """Start the responder on 127.0.0.1:free port and wait until it answers."""
        self.add_recording(READY_COMMUNITY, "1.3.6.1.2.1.1.1.0|4|ready\n")
        exe = Path(sys.executable).parent / "snmpsim-command-responder"
        if not exe.exists():
            found = shutil.which("snmpsim-command-responder")
            if found is None:
                raise SnmpSimError("snmpsim-command-responder not found: pip install snmpsim")
            exe = Path(found)
        self.port = free_udp_port()
        if self._per_host:
            # Per-endpoint data files need snmpsim's transport probing, which pysnmp 7 bypasses.
            launcher = [sys.executable, "-m", "tools.snmpsim_responder"]
        else:
            launcher = [str(exe)]
        endpoints = [f"--agent-udpv4-endpoint={host}:{self.port}" for host in self.hosts]
        command = [
            *launcher,
            # The engine options must come first: they open the engine the rest belongs to.
            "--v3-engine-id=auto",
            f"--data-dir={self.data_dir}",
            f"--cache-dir={self.cache_dir}",
            *endpoints,
            f"--v3-user={V3_USER}",
            f"--v3-auth-key={V3_AUTH_KEY}",
            "--v3-auth-proto=SHA",
            f"--v3-priv-key={V3_PRIV_KEY}",
            "--v3-priv-proto=AES",
            f"--logging-method=file:{self._log_path}",
        ]
        # snmpsim refuses to run as root unless told: the test machines run tests as root.
        env = dict(os.environ, SNMPSIM_ALLOW_ROOT="true")
        self._server.start(
            command,
            ready=self._answers,
            timeout_s=self.start_timeout_s,
            env=env,
            interval_s=0.1,
            log=lambda: f"{self._server.log_tail(4000)}\n{self.log()}",
        )

    def stop(self) -> None:
        """Stop the responder by PID (terminate, then kill)."""
        self._server.stop(timeout_s=5)

    def log(self) -> str:
        """What snmpsim logged (the tail)."""
        if not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")[-4000:]

    def _answers(self) -> bool:
        packet = snmp_v2c_get(READY_COMMUNITY, (1, 3, 6, 1, 2, 1, 1, 1, 0), request_id=4242)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.3)
            try:
                s.sendto(packet, (self.host, self.port))
                reply, _ = s.recvfrom(4096)
            except OSError:
                return False
        return b"ready" in reply


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _ber_int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def _ber_oid(oid: tuple[int, ...]) -> bytes:
    body = bytearray([40 * oid[0] + oid[1]])
    for arc in oid[2:]:
        rest = arc
        chunk = [rest & 0x7F]
        rest >>= 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


def snmp_v2c_get(community: str, oid: tuple[int, ...], request_id: int) -> bytes:
    """A v2c GetRequest (RFC 3416) built by hand: the readiness probe needs no SNMP library."""
    varbind = _tlv(0x30, _ber_oid(oid) + b"\x05\x00")
    pdu = _tlv(0xA0, _ber_int(request_id) + _ber_int(0) + _ber_int(0) + _tlv(0x30, varbind))
    return _tlv(0x30, _ber_int(1) + _tlv(0x04, community.encode()) + pdu)


def parse_snmprec(text: str) -> dict[tuple[int, ...], int | bytes | tuple[int, ...]]:
    """An snmprec text as the plain values `hardware.snmp.report.build_report` takes.

    Lines are `OID|TAG|VALUE`; a tag ending in `x` carries hex. Variation-module tags
    (`65:numeric`) are read as their base type with the value left as written.
    """
    values: dict[tuple[int, ...], int | bytes | tuple[int, ...]] = {}
    for line in text.splitlines():
        parts = line.split("|", 2)
        if len(parts) != 3 or not parts[0] or parts[0].startswith("#"):
            continue
        oid_text, tag, raw = parts
        try:
            oid = tuple(int(p) for p in oid_text.split("."))
        except ValueError:
            continue
        tag = tag.split(":", 1)[0]
        is_hex = tag.endswith("x")
        base = tag.rstrip("x")
        try:
            if base in ("2", "65", "66", "67", "70"):
                values[oid] = int(raw)
            elif base in ("4", "68"):
                values[oid] = (
                    bytes.fromhex(raw) if is_hex else raw.encode("utf-8", "surrogateescape")
                )
            elif base == "64":
                values[oid] = (
                    bytes.fromhex(raw) if is_hex else bytes(int(p) for p in raw.split("."))
                )
            elif base == "6":
                values[oid] = tuple(int(p) for p in raw.split("."))
        except ValueError:
            continue  # the upstream faults: skipped here as snmpsim would fail on them
    return values
