"""Heartbeat, config ETag and device data through the whole loop (`tools.rig`: uvicorn cloud,
virtual IPP printer, the real station code), with snmpsim standing in for the printer's agent.

* an unchanged config costs a 304 and the station keeps its transport;
* an admin's change reaches the station at its next heartbeat, is applied between deliveries
  (the next job prints on the new printer) and kept across a restart (0600 state file);
* status, supplies and meters reach the cloud; a new printer error is pushed at once as an alert,
  once, and cleared when it is gone; `admin printer show` puts it in words.
"""

from __future__ import annotations

import hashlib
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.db import PrinterAlert
from hardware.printers.virtual import VirtualPrinter
from hardware.readers.formats import h10301
from station.heartbeat import STATE_FILE, CloudSync, load_applied
from station.screens import DoneScreen, ErrorScreen, JobListScreen, NoJobsScreen
from station.workflow import Button
from tests.support.snmpsim import SHARED_SNMPREC, SnmpSimulator, fixed_recording
from tools.admin_printers import show_text
from tools.rig import LoopRig
from tools.samples import make_text

BADGE = h10301(91, 4242)
HP = "jetdirect_m130nw"
ERROR_STATE = "1.3.6.1.2.1.25.3.5.1.2.1|4x|"


@pytest.fixture(scope="module")
def snmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpSimulator]:
    sim = SnmpSimulator(tmp_path_factory.mktemp("heartbeat-snmpsim"))
    text = fixed_recording(SHARED_SNMPREC / f"{HP}.snmprec")
    sim.add_recording(HP, text)
    # The same printer out of paper (hrPrinterDetectedErrorState bit 1), in a copy only.
    assert ERROR_STATE + "00" in text
    sim.add_recording("hp-no-paper", text.replace(ERROR_STATE + "00", ERROR_STATE + "40"))
    with sim:
        yield sim


def _sync(rig: LoopRig) -> CloudSync:
    assert rig.station is not None
    syncs = [s for s in rig.station.background if isinstance(s, CloudSync)]
    assert len(syncs) == 1
    return syncs[0]


def _wait_first_beat(sync: CloudSync) -> None:
    deadline = time.monotonic() + 15
    while sync.heartbeat.beats < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sync.heartbeat.beats >= 1, sync.heartbeat.last_error


def _print_one(rig: LoopRig, token: str, data: bytes) -> None:
    response = rig.http.post(
        f"{rig.cloud_url}/api/v1/jobs",
        params={"name": "after-change.txt"},
        data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    tapped = rig.tap(BADGE)
    listed = rig.screens.wait_for(
        (JobListScreen, ErrorScreen, NoJobsScreen), after=tapped, timeout_s=15
    )
    assert listed is not None and isinstance(listed[1], JobListScreen)
    pressed = rig.press(Button.PRINT_ALL)
    done = rig.screens.wait_for((DoneScreen, ErrorScreen), after=pressed, timeout_s=60)
    assert done is not None and isinstance(done[1], DoneScreen), done
    assert rig.wait_idle(15)


def test_etag_unchanged_then_admin_change_applied_and_kept(tmp_path: Path) -> None:
    second = VirtualPrinter(processing_s=0.01).start()
    try:
        with LoopRig(tmp_path / "rig", done_s=0.2, error_s=0.2) as rig:
            assert rig.service is not None and rig.station is not None
            sync = _sync(rig)
            _wait_first_beat(sync)
            first_etag = sync.heartbeat.etag
            assert first_etag is not None  # the registry's config was taken at start
            first_transport = sync.transport.inner
            printer_id = uuid.UUID(rig.printer_id)

            assert sync.heartbeat.beat() is False  # 304: nothing changed
            assert sync.transport.inner is first_transport
            health = rig.service.registry.station_health(uuid.UUID(rig.station_id), "default")
            assert health is not None and health["config_current"] is True
            assert health["heartbeats"] >= 2 and health["health"]["version"]

            # The admin moves the printer to another address (admin API, as the CLI's peers do).
            rig.admin("PATCH", f"/api/v1/admin/printers/{printer_id}", {"uri": second.uri})
            pending = rig.service.registry.station_health(uuid.UUID(rig.station_id), "default")
            assert pending is not None and pending["config_current"] is False
            assert sync.heartbeat.beat() is True
            assert sync.heartbeat.etag not in (None, first_etag)
            assert rig.station.transport.uri == second.uri
            assert sync.transport.inner is not first_transport

            saved = tmp_path / "rig" / "spool" / STATE_FILE
            assert stat.S_IMODE(saved.stat().st_mode) == 0o600
            applied = load_applied(saved)
            assert applied is not None and applied.etag == sync.heartbeat.etag
            assert sync.heartbeat.beat() is False  # and now it is current again

            # The next job goes to the new printer, none to the old one.
            user = rig.enrol("grace@example.org", "Grace Hopper", BADGE)
            data = make_text(["moved printer"] * 50)
            assert rig.printer is not None
            before_old = len(rig.printer.received)
            _print_one(rig, user.token, data)
            assert [hashlib.sha256(d.data).digest() for d in second.received] == [
                hashlib.sha256(data).digest()
            ]
            assert len(rig.printer.received) == before_old
    finally:
        second.stop()


def test_device_data_alerts_at_once_and_show_in_words(tmp_path: Path, snmp: SnmpSimulator) -> None:
    devices = f"[devices]\nheartbeat_s = 3600\npoll_s = 3600\nsnmp_port = {snmp.port}\n"
    with LoopRig(tmp_path / "rig", extra_toml=devices) as rig:
        assert rig.service is not None
        service = rig.service
        sync = _sync(rig)
        _wait_first_beat(sync)
        assert sync.monitor is not None
        printer_id = uuid.UUID(rig.printer_id)
        # No SNMP yet: the station's first poll (at start) read the printer's IPP attributes.
        deadline = time.monotonic() + 15
        while service.devices.data(printer_id).status is None and time.monotonic() < deadline:
            sync.monitor.poll_now()
            time.sleep(0.1)
        data = service.devices.data(printer_id)
        assert data.status is not None and data.status["status_words"] == "Ready"

        service.registry.update(printer_id, {"snmp_community": HP})
        assert sync.heartbeat.beat() is True  # another way to read it: everything again
        assert sync.monitor.tick() == ["alerts", "meters", "status"]
        data = service.devices.data(printer_id)
        assert data.status is not None and data.status["problem"] is None
        assert data.meters and data.meters[0][1] > 0
        percents = [s["percent"] for s in data.status["supplies"]]
        assert percents and all(p is None or 0 <= p <= 100 for p in percents)
        sync.monitor.poll_now()
        assert sync.monitor.tick() == []  # nothing changed: nothing sent

        # Out of paper: pushed at the next poll, as an alert, once.
        service.registry.update(printer_id, {"snmp_community": "hp-no-paper"})
        assert sync.heartbeat.beat() is True
        for _ in range(2):
            sync.monitor.poll_now()
            sync.monitor.tick()
        data = service.devices.data(printer_id)
        assert [w for _, w, _ in data.alerts] == ["Out of paper"]
        assert data.status is not None and data.status["status_words"] == "Out of paper"
        view = service.registry.get(printer_id)
        health = {s: service.registry.station_health(s, "default") for s in view.stations}
        text = show_text(view, data, health)
        assert "status:    Out of paper" in text and "[critical] Out of paper" in text
        assert "%" in text and "pages" in text

        # Paper back: the alert is cleared, the row kept.
        service.registry.update(printer_id, {"snmp_community": HP})
        sync.heartbeat.beat()
        sync.monitor.poll_now()
        assert "alerts" in sync.monitor.tick()
        assert service.devices.data(printer_id).alerts == ()
        with service.context.read() as db:
            rows = db.query(PrinterAlert).all()
            assert len(rows) == 1 and rows[0].cleared_at is not None
