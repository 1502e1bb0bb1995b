"""A private pcscd with a vsmartcard virtual reader, and a fake contactless card for it.

`PrivatePcscd` runs Debian's `pcscd` in the foreground in its own mount and network namespaces
(`unshare`, as root). In the mount namespace a temp dir is bind-mounted over `/run/pcscd`:
pcsc-lite 1.9 (bookworm) fixes its socket and pid file there and, unlike the client library,
ignores `PCSCLITE_CSOCK_NAME`, so without it a test would share (or fight) the machine's own
pcscd. The client side is pointed at the private socket with `PCSCLITE_CSOCK_NAME`, which
libpcsclite reads once per process: every test in one run uses the same socket path (a session
fixture) and the daemon is stopped by its PID.

The reader is vsmartcard's `vpcd` driver, which listens for a virtual card on TCP port 35963 of
every address: in the private network namespace that is only its own loopback, so nothing is
reachable from outside and the port cannot clash with anything. `FakeCard` joins that namespace
to connect and speaks the vpcd protocol (2-byte big-endian length, then a payload; a 1-byte
payload is a control code: 0 power off, 1 power on, 2 reset, 4 get ATR; anything else is an
APDU to answer). The card is "on the reader" exactly while `FakeCard` is connected.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_PORT = 35963  # vpcd's default; free in the private network namespace
GET_UID = bytes.fromhex("FFCA000000")
# A contactless storage card's ATR as PC/SC part 3 builds it (MIFARE Classic 1K).
MIFARE_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")


class PcscUnavailableError(RuntimeError):
    """pcscd, the vpcd driver, or a private mount namespace is not available here."""


class FakeCard:
    """A contactless card for the vpcd reader: answers `FF CA 00 00 00` with its UID.

    `present(uid)` puts a card on the reader (connects to vpcd inside pcscd's network
    namespace), `remove()` takes it off (closes the connection); `apdus` records every command
    APDU the reader sent; `status` is the status word for GET UID (tests set 6A81 to play a
    reader that cannot read UIDs).
    """

    def __init__(self, pcscd: PrivatePcscd) -> None:
        self._pcscd = pcscd
        self.status = b"\x90\x00"
        self.apdus: list[bytes] = []
        self._uid = b""
        self._sock: socket.socket | None = None
        self._heard = threading.Event()
        self._thread: threading.Thread | None = None

    def present(self, uid: bytes, timeout_s: float = 5.0) -> None:
        """Put a card with this UID on the reader (taking off any card there first)."""
        self.remove()
        self._uid = uid
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                sock = self._pcscd.connect_card()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # vpcd listens once pcscd has loaded the driver
        self._sock = sock
        self._heard = threading.Event()
        self._thread = threading.Thread(target=self._talk, args=(sock,), daemon=True)
        self._thread.start()
        # vpcd serves one card at a time: until it has noticed that a previous card left, this
        # connection waits in its backlog. Return once the reader is really talking to us.
        if not self._heard.wait(max(0.1, deadline - time.monotonic())):
            raise TimeoutError("vpcd did not pick up the fake card")

    def remove(self) -> None:
        """Take the card off the reader."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    close = remove

    def _talk(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                header = _recv_exact(sock, 2)
                if header is None:
                    return
                (length,) = struct.unpack(">H", header)
                payload = _recv_exact(sock, length)
                if payload is None:
                    return
                self._heard.set()
                if length == 1:
                    if payload[0] == 4:  # get ATR; power on / off / reset need no answer
                        sock.sendall(struct.pack(">H", len(MIFARE_ATR)) + MIFARE_ATR)
                    continue
                self.apdus.append(payload)
                if payload == GET_UID and self.status == b"\x90\x00":
                    answer = self._uid + self.status
                elif payload == GET_UID:
                    answer = self.status
                else:
                    answer = b"\x6d\x00"  # instruction not supported
                sock.sendall(struct.pack(">H", len(answer)) + answer)


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


_CLONE_NEWNET = 0x40000000


def _connect_in_netns(netns: Path, port: int) -> socket.socket:
    """A TCP connection to 127.0.0.1:`port` inside the network namespace `netns`.

    Made on a throwaway thread that joins the namespace (setns is per thread), so this process
    and its other threads stay in their own namespace; the socket keeps the namespace it was
    made in.
    """
    result: list[socket.socket | BaseException] = []

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with netns.open("rb") as ns:
                if libc.setns(ns.fileno(), _CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns: {os.strerror(errno)}")
            result.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        except BaseException as exc:  # handed to the caller
            result.append(exc)

    thread = threading.Thread(target=run, name="netns-connect")
    thread.start()
    thread.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    outcome.settimeout(None)
    return outcome


class PrivatePcscd:
    """pcscd in the foreground, in its own mount and network namespaces, with one vpcd reader.

    Raises:
        PcscUnavailableError: pcscd, the vpcd driver, `unshare` or `ip` is missing, or the
            namespaces cannot be made (not root); the message says which.
    """

    def __init__(self, work_dir: Path | None = None) -> None:
        pcscd = shutil.which("pcscd") or "/usr/sbin/pcscd"
        for path, package in ((pcscd, "pcscd"), (str(VPCD_DRIVER), "vsmartcard-vpcd")):
            if not Path(path).exists():
                raise PcscUnavailableError(f"{path} is missing: apt-get install {package}")
        for tool, package in (("unshare", "util-linux"), ("ip", "iproute2")):
            if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
                raise PcscUnavailableError(f"{tool} is missing: apt-get install {package}")
        self._own_dir = work_dir is None
        self.dir = (
            Path(tempfile.mkdtemp(prefix="pullprint-pcscd-")) if work_dir is None else work_dir
        )
        self.run_dir = self.dir / "run"
        self.conf_dir = self.dir / "reader.conf.d"
        self.run_dir.mkdir(mode=0o755, exist_ok=True)
        self.conf_dir.mkdir(exist_ok=True)
        # Server mode (DEVICENAME /dev/null): vpcd listens on VPCD_PORT on every address of its
        # namespace, which here has nothing but its own loopback. (Client mode, where vpcd
        # would connect to the card, aborts pcscd in vpcd 3.3 as soon as a card is removed.)
        (self.conf_dir / "vpcd").write_text(
            'FRIENDLYNAME "PullPrint Test Reader"\n'
            f"DEVICENAME   /dev/null:{VPCD_PORT:#x}\n"
            f"LIBPATH      {VPCD_DRIVER}\n"
            f"CHANNELID    {VPCD_PORT:#x}\n"
        )
        self.socket_path = self.run_dir / "pcscd.comm"
        self.log_path = self.dir / "pcscd.log"
        self._pcscd = pcscd
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """True while pcscd runs."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 10.0) -> PrivatePcscd:
        """Start pcscd and wait for its socket."""
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        # The mount point must exist in the parent namespace; an empty dir is harmless.
        Path("/run/pcscd").mkdir(mode=0o755, exist_ok=True)
        script = (
            "ip link set lo up && "
            f'mount --bind "{self.run_dir}" /run/pcscd && '
            f'exec "{self._pcscd}" --foreground --config "{self.conf_dir}"'
        )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", script],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while not self.socket_path.exists():
            if self.process.poll() is not None:
                log_text = self.log_path.read_text(errors="replace")[-800:]
                raise PcscUnavailableError(
                    f"pcscd exited with {self.process.returncode} (private mount and network "
                    f"namespaces need root): {log_text}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise PcscUnavailableError("pcscd did not create its socket in time")
            time.sleep(0.02)
        return self

    def connect_card(self) -> socket.socket:
        """A connection to vpcd's card port, inside pcscd's network namespace."""
        if self.process is None:
            raise ConnectionRefusedError("pcscd is not running")
        return _connect_in_netns(Path(f"/proc/{self.process.pid}/ns/net"), VPCD_PORT)

    def stop(self) -> None:
        """Stop pcscd by its PID (SIGTERM, then SIGKILL)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def close(self) -> None:
        """Stop pcscd and remove its files."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def client_env(self) -> dict[str, str]:
        """The environment a PC/SC client needs to reach this pcscd."""
        return {"PCSCLITE_CSOCK_NAME": str(self.socket_path)}


def use_private_pcscd(pcscd: PrivatePcscd) -> None:
    """Point this process's PC/SC client library at `pcscd` (before its first PC/SC call)."""
    os.environ.update(pcscd.client_env())
