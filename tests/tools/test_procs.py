"""tools/procs.py: server children started, awaited and stopped by PID, with a useful failure."""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path

import pytest

from tools.procs import (
    ProcessStartError,
    ServerProcess,
    ServerProcessContext,
    free_tcp_port,
    free_udp_port,
)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_child_that_exits_fails_the_start_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = ServerProcess("the test server", log)
    with pytest.raises(ProcessStartError) as caught:
        server.start(
            python("import sys; print('port already in use', flush=True); sys.exit(3)"),
            ready=lambda: False,
            timeout_s=30,
        )
    message = str(caught.value)
    assert message.startswith("the test server exited with 3")
    assert str(log) in message and "port already in use" in message


def test_a_silent_child_fails_after_the_timeout_and_is_stopped(tmp_path: Path) -> None:
    server = ServerProcess("the silent server", tmp_path / "silent.log", error=LookupError)
    with pytest.raises(LookupError, match=r"the silent server did not answer within 0.3 s"):
        server.start(python("import time; time.sleep(60)"), ready=lambda: False, timeout_s=0.3)
    child = server.process
    assert child is not None and child.poll() is None  # still running: the caller decides
    server.stop(timeout_s=5)
    assert child.poll() is not None and server.process is None


def test_start_returns_once_the_server_answers(tmp_path: Path) -> None:
    port = free_tcp_port()
    server = ServerProcess("a TCP server", tmp_path / "tcp.log")
    code = (
        "import socket, time\n"
        f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen()\n"
        "time.sleep(60)\n"
    )

    def accepts() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return False
        return True

    server.start(python(code), ready=accepts, timeout_s=30)
    assert server.running and accepts()
    server.stop()
    assert not server.running


def test_a_child_ignoring_the_stop_signal_is_killed(tmp_path: Path) -> None:
    server = ServerProcess("a stubborn server", tmp_path / "stubborn.log")
    ready = tmp_path / "ready"
    code = (
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(60)\n"
    )
    server.start(python(code), ready=ready.exists, timeout_s=30)
    child = server.process
    assert child is not None
    server.stop(sig=signal.SIGINT, timeout_s=0.5)
    assert child.returncode == -signal.SIGKILL


def test_a_with_block_whose_start_fails_stops_the_child(tmp_path: Path) -> None:
    class Helper(ServerProcessContext):
        def __init__(self) -> None:
            self.server = ServerProcess("the helper", None)
            self.spawned: list[int] = []

        def start(self) -> None:
            self.server.spawn(python("import time; time.sleep(60)"))
            assert self.server.process is not None
            self.spawned.append(self.server.process.pid)
            self.server.wait_until(lambda: False, 0.2)

        def stop(self) -> None:
            self.server.stop(timeout_s=5)

    helper = Helper()
    with pytest.raises(ProcessStartError, match=r"(?s)did not answer.*\(no log\)"), helper:
        pytest.fail("the block must not run")
    assert helper.spawned and helper.server.process is None


def test_free_ports_are_bindable_on_loopback() -> None:
    with socket.socket() as tcp:
        tcp.bind(("127.0.0.1", free_tcp_port()))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", free_udp_port()))
