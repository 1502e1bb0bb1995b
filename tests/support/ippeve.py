"""Start Debian's ippeveprinter (a real IPP Everywhere printer) on 127.0.0.1 for tests.

See /work/shared/IPP-NOTES.md: ippeveprinter needs a D-Bus system bus even with `-r off`, so a
private dbus-daemon is started first and pointed at through the child's environment only. Both
processes are stopped by PID (terminate, then kill).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import requests

from hardware.ipp.codec import Attribute, IppMessage, IppParseError, decode_message, encode_message
from hardware.ipp.enums import Operation, Tag

FORMATS = (
    "application/pdf,image/pwg-raster,image/urf,application/postscript,"
    "application/octet-stream,text/plain"
)


class IppEvePrinterError(RuntimeError):
    """ippeveprinter or its D-Bus could not be started."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (ippeveprinter binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class IppEvePrinter:
    """A running ippeveprinter keeping every document in `spool_dir`; use as a context manager."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        name: str = "PullPrint Test Printer",
        print_command: str | None = "/bin/true",
        start_timeout_s: float = 15.0,
        verbose: bool = False,
    ) -> None:
        self.tmp_path = tmp_path
        self.name = name
        self.print_command = print_command  # None: each job takes a simulated 5-15 s
        self.start_timeout_s = start_timeout_s
        self.verbose = verbose  # -vv: log() then names every operation it was sent
        self.spool_dir = tmp_path / "ippeve-spool"
        self.keys_dir = tmp_path / "ippeve-keys"  # -K: its self-signed TLS key, for ipps://
        self.port = 0
        self.uri = ""
        self._dbus: subprocess.Popen[bytes] | None = None
        self._printer: subprocess.Popen[bytes] | None = None
        self._log_path = tmp_path / "ippeveprinter.log"

    def __enter__(self) -> IppEvePrinter:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start dbus-daemon, then ippeveprinter, and wait until it answers IPP."""
        for tool in ("ippeveprinter", "dbus-daemon"):
            if shutil.which(tool) is None:
                raise IppEvePrinterError(
                    f"{tool} is not installed: install Debian packages cups-ipp-utils and dbus "
                    "(tools/quickstart.sh test does)"
                )
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.keys_dir.mkdir(parents=True, exist_ok=True)  # it cannot make its TLS key otherwise
        bus = self.tmp_path / "bus.sock"
        bus.unlink(missing_ok=True)  # left by a previous start: wait for the new daemon's
        self._dbus = subprocess.Popen(
            [
                "dbus-daemon",
                "--session",
                "--nofork",
                "--nopidfile",
                f"--address=unix:path={bus}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for(bus.exists, 5.0, "dbus-daemon did not create its socket")
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={bus}")
        self.port = self.port or free_port()  # a restart keeps the port (and so the URIs)
        # -n localhost binds 127.0.0.1 (and ::1); -n 127.0.0.1 would fail (IPP-NOTES).
        command = ["ippeveprinter", "-r", "off", "-p", str(self.port), "-n", "localhost"]
        command += ["-k", "-d", str(self.spool_dir), "-K", str(self.keys_dir)]
        if self.print_command is not None:
            command += ["-c", self.print_command]
        if self.verbose:
            command += ["-vv"]
        command += ["-f", FORMATS, self.name]
        with self._log_path.open("ab") as log:  # a restart appends
            self._printer = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        # 127.0.0.1 works as well as localhost, and keeps every connection on IPv4 loopback.
        self.uri = f"ipp://127.0.0.1:{self.port}/ipp/print"
        _wait_for(self._answers, self.start_timeout_s, "ippeveprinter did not answer IPP")

    @property
    def ipps_uri(self) -> str:
        """The same printer over TLS (ippeveprinter serves both on one port, key from -K)."""
        return self.uri.replace("ipp://", "ipps://", 1)

    def restart(self, *, new_key: bool = False) -> None:
        """Stop and start again on the same port; `new_key` deletes its TLS key first, so it
        makes a new one: the "printer certificate changed" case of IPP-NOTES.md."""
        self.stop()
        if new_key:
            for path in self.keys_dir.iterdir():
                if path.is_file():
                    path.unlink()
        self.start()

    def stop(self) -> None:
        """Stop ippeveprinter, then its D-Bus, by PID."""
        for proc in (self._printer, self._dbus):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self._printer = self._dbus = None

    def documents(self) -> list[Path]:
        """Documents kept by `-k`, as `JOBID-jobname.ext`, oldest job first.

        The `.prn` files are the print command's output, not what was sent, and are left out.
        """
        files = [p for p in self.spool_dir.iterdir() if p.is_file() and p.suffix != ".prn"]
        return sorted(files, key=lambda p: int(p.name.split("-", 1)[0]))

    def log(self) -> str:
        """What ippeveprinter wrote to stdout and stderr."""
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def _answers(self) -> bool:
        if self._printer is not None and self._printer.poll() is not None:
            raise IppEvePrinterError(
                f"ippeveprinter exited with {self._printer.returncode}:\n{self.log()}"
            )
        request = IppMessage.request(
            Operation.GET_PRINTER_ATTRIBUTES,
            1,
            Attribute.of("printer-uri", Tag.URI, self.uri),
            Attribute.of("requested-attributes", Tag.KEYWORD, "printer-state"),
        )
        try:
            response = requests.post(
                self.uri.replace("ipp://", "http://", 1),
                data=encode_message(request),
                headers={"Content-Type": "application/ipp"},
                timeout=2,
            )
            message, _ = decode_message(response.content)
        except (requests.RequestException, IppParseError):
            return False
        return message.is_success


def _wait_for(condition: Callable[[], bool], timeout_s: float, failure: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise IppEvePrinterError(f"{failure} within {timeout_s} s")
