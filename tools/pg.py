"""A private PostgreSQL server on 127.0.0.1 for tests and benchmarks, all its state in one dir.

Debian's `postgresql` package provides the binaries (`initdb`, `postgres`); the cluster lives under
`root`, listens on 127.0.0.1 on a free port and on a unix socket in `root`, trusts local
connections (it is reachable from this machine only, and holds throw-away data), never touches a
system cluster, and is stopped by PID. PostgreSQL refuses to run as root, so under root the server
runs as the `postgres` system user the package creates.

Usage::

    with PrivatePostgres(Path(tmp)) as pg:
        url = pg.create_database("test1")   # postgresql+psycopg://pullprint@127.0.0.1:PORT/test1
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg

from tools.procs import ServerProcess, ServerProcessContext, free_tcp_port

SUPERUSER = "pullprint"
_START_TIMEOUT_S = 30.0


def binary(name: str) -> str:
    """The full path of a PostgreSQL server program; a clear error naming the package."""
    found = shutil.which(name)
    if found is not None:
        return found
    # Debian keeps the server programs out of PATH, per major version.
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise RuntimeError(f"{name} is missing: apt-get install postgresql")


class PrivatePostgres(ServerProcessContext):
    """A PostgreSQL cluster in `root`, serving 127.0.0.1 only.

    Args:
        root: an empty or missing directory for the cluster and its socket.
        durable: keep fsync on; tests turn it off for speed (a killed server process still
            loses nothing: its WAL is in the OS's page cache), the benchmark keeps it on.
    """

    def __init__(self, root: Path, *, durable: bool = False) -> None:
        self.root = root
        self.data = root / "data"
        self.socket_dir = root / "sock"
        self.port = free_tcp_port()
        self._durable = durable
        self._server = ServerProcess("postgres", root / "server.log")
        self._user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root needs the 'postgres' user: apt-get install postgresql"
                ) from None
            self._user = "postgres"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the `postgres` maintenance database."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        """The SQLAlchemy URL of database `name` (TCP on 127.0.0.1, psycopg 3)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - the system's PostgreSQL tools, our arguments
            list(args),
            user=self._user,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=_clean_env(),
        )

    def _own(self, path: Path) -> None:
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        """initdb (first time only) and start the server; returns once it accepts connections."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._own(self.root)
        self._own(self.socket_dir)
        if not (self.data / "PG_VERSION").exists():
            done = self._run(
                binary("initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            if done.returncode != 0:
                raise RuntimeError(f"initdb failed:\n{done.stderr[-4000:]}")
        self._spawn()

    def _spawn(self) -> None:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": "200",
            "fsync": "on" if self._durable else "off",
            # Always on: with it off a commit is acknowledged before its WAL leaves the server's
            # memory, and a killed server loses it (the restart test would catch exactly that).
            "synchronous_commit": "on",
            "full_page_writes": "on" if self._durable else "off",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
        }
        args = [binary("postgres"), "-D", str(self.data)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        self._server.start(
            args, ready=self._accepts, timeout_s=_START_TIMEOUT_S, env=_clean_env(), user=self._user
        )

    def _accepts(self) -> bool:
        try:
            with psycopg.connect(
                host="127.0.0.1",
                port=self.port,
                user=SUPERUSER,
                dbname="postgres",
                connect_timeout=2,
            ):
                return True
        except psycopg.OperationalError:
            return False

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE DATABASE cannot run inside one)."""
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql.encode())

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database `name` (optionally as a copy of `template`); returns its URL."""
        suffix = f' TEMPLATE "{template}"' if template else ""
        self.execute(f'CREATE DATABASE "{name}"{suffix}')
        return self.database_url(name)

    def kill(self) -> None:
        """Crash the server (SIGKILL to the postmaster, as a power cut would), for fault tests."""
        if self._server.process is not None:
            self._server.kill()
            # The backends notice their postmaster is gone and exit; wait until the port is free.
            time.sleep(0.5)

    def restart(self) -> None:
        """Start again after `kill()` or `stop()` on the same port (crash recovery runs first)."""
        if self._server.process is None:
            pid_file = self.data / "postmaster.pid"
            deadline = time.monotonic() + 15
            while pid_file.exists() and time.monotonic() < deadline:
                # Orphaned backends of a killed postmaster keep the lock until they exit.
                if not _pid_file_alive(pid_file):
                    break
                time.sleep(0.1)
            self._spawn()

    def log(self) -> str:
        """The end of the server log."""
        return self._server.log_tail()

    def stop(self) -> None:
        """Stop the server by PID (fast shutdown: SIGINT)."""
        self._server.stop(sig=signal.SIGINT, timeout_s=30)


def _pid_file_alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def _clean_env() -> dict[str, str]:
    """No PG* variables from the caller's environment, no proxies."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith("PG") and "proxy" not in k.lower()
    }
