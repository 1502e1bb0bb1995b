"""The station side of the heartbeat: health sent only when it changed, a new config applied
and kept (0600), an unusable one not taken; the transport swapped between deliveries only."""

from __future__ import annotations

import stat
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from hardware.printers.transport import DeliveryResult, PrintJob
from station.config import PrinterConfig
from station.errors import ConfigError
from station.heartbeat import (
    Heartbeat,
    HeartbeatReply,
    SwappableTransport,
    load_applied,
    printer_config_from,
)


class Link:
    """Answers heartbeats like the cloud: 304 unless the ETag differs from `current`."""

    def __init__(self) -> None:
        self.current = '"v1"'
        self.config: dict[str, Any] = {"version": 1, "printer": {"uri": "ipp://p1/ipp"}}
        self.sent: list[tuple[str | None, dict[str, Any] | None]] = []

    def heartbeat(self, etag: str | None, health: dict[str, Any] | None) -> HeartbeatReply:
        self.sent.append((etag, health))
        if etag == self.current:
            return HeartbeatReply(False, etag)
        return HeartbeatReply(True, self.current, self.config)

    def close(self) -> None:
        pass


def test_health_only_when_changed_and_config_applied_once(tmp_path: Path) -> None:
    link, applied, health = Link(), [], {"started": 1, "version": "x"}
    beat = Heartbeat(
        link,  # type: ignore[arg-type]
        interval_s=60,
        state_file=tmp_path / "printer-config.json",
        apply=applied.append,
        health=lambda: dict(health),
    )
    assert beat.beat() is True and applied == [link.config]
    assert beat.beat() is False and beat.beat() is False
    assert [h for _, h in link.sent] == [health, None, None]
    health["printer"] = "Out of paper"
    beat.beat()
    assert link.sent[-1][1] == health
    saved = tmp_path / "printer-config.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    kept = load_applied(saved)
    assert kept is not None and kept.etag == '"v1"' and kept.document == link.config

    link.current, link.config = '"v2"', {"version": 1, "printer": {"uri": "ipp://p2/ipp"}}

    def refuse(_doc: dict[str, Any]) -> None:
        raise ConfigError("unusable")

    beat._apply = refuse  # the next config cannot be built: its ETag is not taken
    with pytest.raises(ConfigError):
        beat.beat()
    assert beat.etag == '"v1"'
    assert load_applied(saved).etag == '"v1"'  # type: ignore[union-attr]


def test_printer_config_from_cloud_documents() -> None:
    base = PrinterConfig(uri="ipp://old/ipp", timeout_s=42)
    doc = {
        "printer": {
            "uri": "ipps://new/ipp",
            "mode": "ipps-then-ipp",
            "pin": "x" * 44,
            "ipp_uri": "ipp://new/ipp",
            "raw_pjl": False,
            "snmp_community": "c",
        }
    }
    made = printer_config_from(doc, base)
    assert (made.uri, made.mode, made.ipp_uri, made.timeout_s) == (
        "ipps://new/ipp",
        "ipps-then-ipp",
        "ipp://new/ipp",
        42,
    )
    assert made.raw_pjl is False and made.snmp_community == "c"
    for bad in (
        {"printer": None},
        {"printer": {"mode": "any"}},
        {"printer": {"uri": "u", "mode": "x"}},
    ):
        with pytest.raises(ConfigError):
            printer_config_from(bad, base)


class SlowPrinter:
    """A transport whose delivery takes a while (to see that a swap waits for it)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.closed = False
        self.started = threading.Event()

    def deliver(
        self,
        job: PrintJob,
        document: Iterable[bytes],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> DeliveryResult:
        self.started.set()
        time.sleep(0.3)
        assert not self.closed, "closed mid-delivery"
        return DeliveryResult(1, sum(len(c) for c in document))

    def job_outcome(self, name: str) -> str:
        return "completed"

    def close(self) -> None:
        self.closed = True


def test_swap_waits_for_the_delivery_in_flight() -> None:
    old, new = SlowPrinter("ipp://old/ipp"), SlowPrinter("ipp://new/ipp")
    transport = SwappableTransport(old)
    done: list[DeliveryResult] = []
    worker = threading.Thread(
        target=lambda: done.append(transport.deliver(PrintJob("r1", "ada"), [b"abc"]))
    )
    worker.start()
    assert old.started.wait(5)
    transport.swap(new)  # blocks until the delivery returns
    worker.join(5)
    assert done and done[0].bytes_sent == 3 and old.closed
    assert transport.uri == "ipp://new/ipp" and transport.job_outcome("r1") == "completed"
    assert getattr(SwappableTransport(object()), "job_outcome", None) is None  # type: ignore[arg-type]


def test_devices_config_defaults_off_switch_and_errors(tmp_path: Path) -> None:
    from station.config import load_config
    from tests.station.test_station_config import MINIMAL, write

    config = load_config(write(tmp_path, MINIMAL), {})
    assert config.devices.heartbeat_s == 2700 and config.devices.meters_s == 86400
    off = load_config(write(tmp_path, MINIMAL + "[devices]\nheartbeat_s = 0\npoll_s = 0\n"), {})
    assert (off.devices.heartbeat_s, off.devices.poll_s) == (0, 0)
    env = {"PULLPRINT_STATION_DEVICES_SNMP_PORT": "1161"}
    assert load_config(write(tmp_path, MINIMAL), env).devices.snmp_port == 1161
    for bad in ("heartbeat_s = 5", "poll_s = -1", 'status_s = "often"', "every_s = 1"):
        with pytest.raises(ConfigError):
            load_config(write(tmp_path, MINIMAL + f"[devices]\n{bad}\n"), {})


def test_the_heartbeat_tells_the_station_whether_the_cloud_answered(tmp_path: Path) -> None:
    """The heartbeat is the station's idle-time probe (no separate pings: keep-alive budget)."""
    from station.errors import CloudUnreachableError

    class FlakyLink(Link):
        down = True

        def heartbeat(self, etag: str | None, health: dict[str, Any] | None) -> HeartbeatReply:
            if self.down:
                raise CloudUnreachableError("cannot reach the cloud (ConnectionError)")
            return super().heartbeat(etag, health)

    link = FlakyLink()
    events: list[str] = []
    beat = Heartbeat(
        link,  # type: ignore[arg-type]
        interval_s=0.05,
        state_file=tmp_path / "printer-config.json",
        apply=lambda _doc: None,
        health=dict,
    )
    beat.on_unreachable = lambda exc: events.append(f"down: {exc}")
    beat.on_answered = lambda: events.append("up")
    beat.start()
    try:
        deadline = time.monotonic() + 10
        while not any(e.startswith("down") for e in events) and time.monotonic() < deadline:
            time.sleep(0.01)
        link.down = False
        while "up" not in events and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        beat.stop()
    assert events[0].startswith("down: cannot reach the cloud")
    assert "up" in events
    assert beat.last_error is None or events[-1] == "up"


def test_a_production_station_does_not_ping_between_heartbeats(tmp_path: Path) -> None:
    """Without an explicit watch interval (as `pullprint station run`), idle probing is left to
    the signed heartbeat, whose failures and answers drive the offline screen."""
    from station import app
    from station.heartbeat import CloudSync
    from tools.rig import LoopRig

    with LoopRig(tmp_path / "rig", heartbeat_s=None) as rig:
        assert rig.station is not None
        assert rig.station.heartbeat_s == app.QUIET_WATCH_S
        [sync] = [s for s in rig.station.background if isinstance(s, CloudSync)]
        assert sync.heartbeat.on_unreachable == rig.station.cloud_unreachable
        assert sync.heartbeat.on_answered == rig.station.cloud_answered
        # The heartbeat reporting an outage turns the station offline at once.
        from station.errors import CloudUnreachableError

        sync.heartbeat.on_unreachable(CloudUnreachableError("gone"))
        deadline = time.monotonic() + 10
        while not rig.station.offline and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rig.station.offline
