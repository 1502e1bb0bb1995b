"""`pullprint discover --report` from a paired station, then `pullprint admin printer
discovered|adopt` on the cloud host: snmpsim on 127.0.0.1 is the printer found."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.snmpsim import SHARED_SNMPREC, SnmpSimulator, fixed_recording
from tools.cli import main
from tools.rig import LoopRig

HP = "jetdirect_m130nw"


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpSimulator]:
    sim = SnmpSimulator(tmp_path_factory.mktemp("discover-report-snmpsim"))
    sim.add_recording(HP, fixed_recording(SHARED_SNMPREC / f"{HP}.snmprec"))
    with sim:
        yield sim


def test_station_reports_discovery_and_admin_adopts_it(
    tmp_path: Path, simulator: SnmpSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    with LoopRig(tmp_path / "rig") as rig:
        assert rig.service is not None
        scan = ["discover", "--snmp", "127.0.0.1-2", "--port", str(simulator.port)]
        scan += ["--community", HP, "--timeout", "0.3", "--report"]
        station_toml = str(rig.work_dir / "station.toml")
        for _ in range(2):  # reported twice: the second time the device is seen again
            assert main([*scan, "--station-config", station_toml]) == 0
        out = capsys.readouterr().out
        assert "1 new, 0 seen again" in out and "0 new, 1 seen again" in out
        found = rig.service.devices.list_discovered()
        assert len(found) == 1 and found[0].reported_by is not None
        assert found[0].data["addresses"] == ["127.0.0.1"]

        data_dir = ["--data-dir", str(rig.work_dir / "cloud")]
        assert main(["admin", "printer", "discovered", "--json", *data_dir]) == 0
        listed = json.loads(capsys.readouterr().out)["devices"]
        assert [d["serial_number"] for d in listed] == [found[0].data["serial_number"]]
        assert main(["admin", "printer", "discovered", *data_dir]) == 0
        assert found[0].data["serial_number"] in capsys.readouterr().out

        # SNMP found no IPP service: the admin names the way to print.
        adopt = ["admin", "printer", "adopt", str(found[0].id), "--name", "Found", "--snmp"]
        assert main([*adopt, "--uri", "ipp://127.0.0.1:631/ipp/print", *data_dir]) == 0
        assert "registered printer" in capsys.readouterr().out
        printer = rig.service.registry.find("Found")
        assert printer.has_snmp and printer.capabilities["serial_number"]
        assert rig.service.devices.list_discovered()[0].printer_id == printer.id
        assert main([*adopt, "--uri", "ipp://127.0.0.1:631/ipp/print", *data_dir]) == 1
