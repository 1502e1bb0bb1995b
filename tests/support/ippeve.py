"""Start Debian's ippeveprinter (a real IPP Everywhere printer) on 127.0.0.1 for tests.

See /work/shared/IPP-NOTES.md: ippeveprinter needs a D-Bus system bus even with `-r off`, so a
private dbus-daemon is started first and pointed at through the child's environment only. Both
processes are stopped by PID (terminate, then kill).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import requests

from hardware.ipp.codec import Attribute, IppMessage, IppParseError, decode_message, encode_message
from hardware.ipp.enums import Operation, Tag
from tools.procs import ServerProcess, ServerProcessContext, free_tcp_port

FORMATS = (
    "application/pdf,image/pwg-raster,image/urf,application/postscript,"
    "application/octet-stream,text/plain"
)


class IppEvePrinterError(RuntimeError):
    """ippeveprinter or its D-Bus could not be started."""


class IppEvePrinter(ServerProcessContext):
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
        self._log_path = tmp_path / "ippeveprinter.log"
        self._dbus = ServerProcess("dbus-daemon", None, error=IppEvePrinterError)
        self._printer = ServerProcess("ippeveprinter", self._log_path, error=IppEvePrinterError)

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
        self._dbus.start(
            [
                "dbus-daemon",
                "--session",
                "--nofork",
                "--nopidfile",
                f"--address=unix:path={bus}",
            ],
            ready=bus.exists,
            timeout_s=5.0,
        )
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={bus}")
        self.port = self.port or free_tcp_port()  # a restart keeps the port (and so the URIs)
        # -n localhost binds 127.0.0.1 (and ::1); -n 127.0.0.1 would fail (IPP-NOTES).
        command = ["ippeveprinter", "-r", "off", "-p", str(self.port), "-n", "localhost"]
        command += ["-k", "-d", str(self.spool_dir), "-K", str(self.keys_dir)]
        if self.print_command is not None:
            command += ["-c", self.print_command]
        if self.verbose:
            command += ["-vv"]
        command += ["-f", FORMATS, self.name]
        # 127.0.0.1 works as well as localhost, and keeps every connection on IPv4 loopback.
        self.uri = f"ipp://127.0.0.1:{self.port}/ipp/print"
        # The log is appended to, so a restart keeps the first run's lines.
        self._printer.start(command, ready=self._answers, timeout_s=self.start_timeout_s, env=env)

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
        self._printer.stop(timeout_s=5)
        self._dbus.stop(timeout_s=5)

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
