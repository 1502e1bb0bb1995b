"""A private cupsd on 127.0.0.1 for tests and benchmarks: all its state in one directory.

cupsd runs in the foreground with its own two config files (IPP-NOTES.md, "A private cupsd as a
real client"), listens on 127.0.0.1 and a unix socket that `CUPS_SERVER` points lpadmin, lp and
lpstat at, never touches the host's CUPS, and is stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from tools.procs import ServerProcess, free_tcp_port


def tool(name: str) -> str:
    """The full path of a CUPS command-line tool; a clear error naming the package if missing."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is missing: apt-get install cups cups-ipp-utils")
    return path


def environment_without_proxies() -> dict[str, str]:
    """ipptool and the CUPS tools must talk to 127.0.0.1 directly, never through a proxy."""
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


class PrivateCupsd:
    """cupsd on 127.0.0.1 with all its state in `root`.

    Args:
        root: a directory readable by user lp (cupsd runs its filters as lp), e.g. under /tmp.
        file_device: allow `file:` device URIs (a queue on /dev/null that prints nowhere).
        log_level: cupsd's LogLevel; "debug" when a test wants to show why something failed.
        keep_history: keep finished jobs listed (`lpstat -W completed`); a benchmark turns it off.
    """

    def __init__(
        self,
        root: Path,
        *,
        file_device: bool = False,
        log_level: str = "warn",
        keep_history: bool = True,
    ) -> None:
        self.root = root
        self.port = free_tcp_port()
        self.socket = root / "cups.sock"
        self.env = {**environment_without_proxies(), "CUPS_SERVER": str(self.socket)}
        self._file_device = file_device
        self._log_level = log_level
        self._keep_history = keep_history
        self._server = ServerProcess("cupsd", None)

    @property
    def pid(self) -> int | None:
        """cupsd's process id while it runs."""
        process = self._server.process
        return process.pid if process is not None else None

    def start(self) -> None:
        """Write the config and start cupsd; returns once it answers."""
        root = self.root
        for name in ("etc/ppd", "spool/tmp", "tmp", "cache", "state", "log"):
            (root / name).mkdir(parents=True, exist_ok=True)
        (root / "etc/cupsd.conf").write_text(
            f"Listen 127.0.0.1:{self.port}\nListen {self.socket}\nBrowsing No\n"
            f"LogLevel {self._log_level}\n"
            # MaxLogSize 0: one log file, never rotated (a test reads its jobs' lines back).
            "MaxLogSize 0\n"
            # MaxJobs 0: stock cupsd refuses new jobs past 500 unfinished ones.
            "MaxJobs 0\nMaxJobsPerPrinter 0\nMaxJobsPerUser 0\n"
            f"PreserveJobHistory {'Yes' if self._keep_history else 'No'}\n"
            "PreserveJobFiles No\nWebInterface No\n"
            "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
            "<Policy default>\n  <Limit All>\n    Order allow,deny\n    Allow all\n"
            "  </Limit>\n</Policy>\n"
        )
        (root / "etc/cups-files.conf").write_text(
            f"ServerRoot {root}/etc\nRequestRoot {root}/spool\nTempDir {root}/tmp\n"  # noqa: S108
            f"CacheDir {root}/cache\nStateDir {root}/state\nErrorLog {root}/log/error_log\n"
            f"AccessLog {root}/log/access_log\nPageLog {root}/log/page_log\n"
            "ServerBin /usr/lib/cups\nDataDir /usr/share/cups\nSystemGroup root\n"
            f"FileDevice {'Yes' if self._file_device else 'No'}\nPrintcap\n"
        )
        for path in [root, *root.rglob("*")]:  # cupsd runs filters as user lp
            path.chmod(0o777 if path.is_dir() else 0o666)
        self._server.start(
            [
                tool("cupsd"),
                "-f",
                "-c",
                str(root / "etc/cupsd.conf"),
                "-s",
                str(root / "etc/cups-files.conf"),
            ],
            ready=lambda: self.run("lpstat", "-r").returncode == 0,
            timeout_s=15,
            log=self.log,  # cupsd writes to its ErrorLog, not to stdout
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a CUPS command-line tool against this cupsd.

        A tool that could not connect at all is run again (up to 3 times): on a loaded machine
        the CUPS client library now and then fails its unix-socket connect with "Bad file
        descriptor" although cupsd is listening, and nothing reached cupsd in that case, so
        running it again cannot do anything twice.
        """
        for attempt in range(3):
            done = subprocess.run(  # noqa: S603 - CUPS tools with our arguments
                [tool(args[0]), *args[1:]],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if done.returncode == 0 or "Unable to connect to server" not in done.stderr:
                return done
            time.sleep(0.2 * (attempt + 1))
        return done

    def log(self) -> str:
        """The end of cupsd's error log."""
        path = self.root / "log/error_log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        """Stop cupsd by PID."""
        self._server.stop()
