"""sd_notify: READY once the station serves taps, WATCHDOG while healthy, STOPPING at the end."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from hardware.display.simulated import SimulatedDisplay
from hardware.readers.simulated import SimulatedCardReader
from station.app import build_station
from station.config import load_config
from station.service import SystemdNotifier


@pytest.fixture
def systemd(tmp_path: Path):
    """A datagram socket standing in for systemd's notify socket."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(3)
    yield path, sock
    sock.close()


def _messages(sock: socket.socket, until: str, timeout_s: float = 5.0) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen.append(sock.recv(4096).decode())
        if until in seen[-1]:
            return seen
    raise AssertionError(f"no {until} in {seen}")


def test_notifier_is_silent_without_systemd() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    notifier.ready()
    notifier.watchdog()  # nothing to send to, nothing raised


def test_watchdog_is_rate_limited_to_half_the_interval(systemd) -> None:
    path, sock = systemd
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    notifier = SystemdNotifier(env)
    assert notifier.watchdog_interval_s == 0.5
    for now in (10.0, 10.1, 10.4, 10.6):
        notifier.watchdog(now)
    assert sock.recv(100) == b"WATCHDOG=1"
    assert sock.recv(100) == b"WATCHDOG=1"  # at 10.6 only: 10.1 and 10.4 were too soon
    sock.settimeout(0.1)
    with pytest.raises(TimeoutError):
        sock.recv(100)


def test_keep_alives_are_for_our_own_pid_only(systemd) -> None:
    path, _ = systemd
    other = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert SystemdNotifier(other).watchdog_interval_s is None


class Quiet:
    uri = "ipp://127.0.0.1:1/ipp/print"

    def close(self) -> None: ...


def test_a_running_station_says_ready_then_keeps_alive_then_stopping(tmp_path, systemd) -> None:
    path, sock = systemd
    (tmp_path / "station.toml").write_text(
        '[station]\nname = "s"\n[cloud]\nurl = "http://127.0.0.1:1"\n'
        'station_id = "6f1c2a54-9d3e-4c1b-8a7f-2b5d0e9c4a11"\n'
        f'[site]\nkey_hex = "{"ab" * 32}"\n[printer]\nuri = "ipp://127.0.0.1:1/ipp/print"\n'
    )
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000", "WATCHDOG_PID": str(os.getpid())}
    station = build_station(
        load_config(tmp_path / "station.toml", {}),
        reader=SimulatedCardReader(),
        display=SimulatedDisplay(),
        transport=Quiet(),  # type: ignore[arg-type]
        client=Quiet(),  # type: ignore[arg-type]
        notifier=SystemdNotifier(env),
    )
    station.start()
    try:
        first = _messages(sock, "READY=1")
        assert any(m.startswith("STATUS=idle") for m in first)  # the idle screen is up first
        assert "WATCHDOG=1" in _messages(sock, "WATCHDOG=1")
    finally:
        station.stop()
    assert "STOPPING=1" in _messages(sock, "STOPPING=1")[-1]
