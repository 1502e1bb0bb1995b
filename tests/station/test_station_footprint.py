"""The station's service process loads only what a station uses (DESIGN.md: idle RSS <= 45 MB).

Every module a process imports stays in its memory for good, so these guard the lazy imports that
keep `pullprint station run` small: the other commands' modules, the cloud service, optional
hardware drivers and protocol stacks load only when a command or a configured part needs them.
No timings here: `pullprint bench-station` measures and prints them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from hardware.display.registry import display_from_config
from hardware.display.simulated import CONFIGURED_KEEP_FRAMES, SimulatedDisplay
from station.config import HardwareConfig
from station.parts import build_display

# Loaded by no station whose config names no SNMP, discovery or SPI/GPIO part.
HEAVY = (
    "tools.imaging",  # the image/flash tools behind `pullprint image` and `flash`
    "tools.admin",
    "tools.bench_ipp",
    "tools.cupsd",
    "tools.update_cmd",
    "cloud.api",  # the cloud service: only cloud.container belongs on a station
    "cloud.db",
    "fastapi",
    "sqlalchemy",
    "pysnmp",  # SNMP: when the printer's device data is read
    "zeroconf",  # discovery: `pullprint discover` only
    "luma",  # SPI panels: when configured
    "gpiozero",
    "cryptography.x509",  # printer pinning: when a pin is fetched
    "cryptography.hazmat.primitives.serialization",  # the station's keys are raw bytes
)
# The station's HTTP is urllib3 itself (station/cloud_http.py, hardware/printers/ipp_client.py):
# requests and what it imports cost ~4 MB of the idle budget.
NEVER_ON_A_STATION = ("requests", "charset_normalizer", "chardet", "idna", "certifi")

_PROBE = """
import json, sys
from tools.cli import main
code = main(sys.argv[1:])
import station.heartbeat  # a paired station attaches it in build_station
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _station_run_modules(tmp_path: Path, config_text: str) -> tuple[int, list[str], str]:
    config = tmp_path / "station.toml"
    config.write_text(config_text)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _PROBE,
            *("station", "run", "--config", str(config), "--state-dir", str(tmp_path / "state")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.stdout, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    return int(result["code"]), list(result["modules"]), proc.stderr


def _loaded(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def test_station_run_imports_no_heavy_module(tmp_path: Path) -> None:
    # A config the station refuses (it names no station) after `station run` imported its whole
    # entry point: station.app, the config, first start and the hardware registries.
    code, modules, stderr = _station_run_modules(
        tmp_path, '[cloud]\nurl = "http://127.0.0.1:9"\nstation_id = "s1"\n'
    )
    assert code == 1, stderr
    assert "pullprint:" in stderr  # refused with a one-line error, not a traceback
    assert "station.app" in modules  # the probe did reach the station's composition root
    loaded = [name for name in (*HEAVY, *NEVER_ON_A_STATION) if _loaded(modules, name)]
    assert loaded == [], f"`pullprint station run` imported {loaded}"


_BUILD_PROBE = """
import json, sys
from pathlib import Path
from station.app import build_station
from station.config import load_config
from station.pairing import write_site_key
from station.signing import load_or_create_identity

work = Path(sys.argv[1])
load_or_create_identity(work / "station.key")
write_site_key(bytes(32), work / "site.key")
# A paired station, built as `station run` builds it: its cloud client, its heartbeat and
# device data link, its printer; then the other runtime paths (pairing, updates, INFRA proxy,
# a pinned ipps:// printer). Nothing is started: building must not reach the network.
built = build_station(load_config(work / "station.toml", {}))
import station.infra_proxy, station.update_client
from hardware.printers.pinning import printer_pool
printer_pool("https", "127.0.0.1", 9, pin="A" * 43 + "=", timeout_s=1.0)
print(json.dumps({"modules": sorted(sys.modules), "client": type(built.client).__name__}))
"""


def test_a_built_station_runs_on_urllib3_without_requests(tmp_path: Path) -> None:
    (tmp_path / "station.toml").write_text(
        '[station]\nname = "Probe"\n'
        '[cloud]\nurl = "https://cloud.invalid"\n'
        'station_id = "0b7e1c2a-0000-4000-8000-000000000001"\n'
        f'[identity]\nkey_file = "{tmp_path / "station.key"}"\n'
        f'[site]\nkey_file = "{tmp_path / "site.key"}"\n'
        '[printer]\nuri = "ipp://127.0.0.1:9/ipp/print"\n'
        '[hardware]\nreader = "simulated"\ndisplay = "simulated"\n'
        f'[spool]\ndir = "{tmp_path / "spool"}"\n'
    )
    proc = subprocess.run(
        [sys.executable, "-c", _BUILD_PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    modules = result["modules"]
    assert result["client"] == "CloudClient"
    # The probe did build the HTTP paths it checks.
    for name in ("station.cloud_http", "station.heartbeat", "station.pairing", "urllib3"):
        assert name in modules, name
    loaded = [name for name in NEVER_ON_A_STATION if _loaded(modules, name)]
    assert loaded == [], f"a built station imported {loaded}"


def test_version_is_looked_up_only_when_asked() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tools.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    words = proc.stdout.split()
    assert words[0] == "pullprint" and len(words) == 2 and words[1][0].isdigit(), proc.stdout


def test_a_configured_simulated_display_keeps_only_its_last_frames() -> None:
    # A long-running station with a simulated display (demo, bench) must not keep every frame:
    # 320x240 RGB frames are 230 KB each.
    for display in (build_display(HardwareConfig()), display_from_config("simulated")):
        assert isinstance(display, SimulatedDisplay)
        frames = [Image.new("RGB", display.size, (shade, 0, 0)) for shade in range(20)]
        for frame in frames:
            display.show(frame)
        assert display.shown == 20
        assert [f.getpixel((0, 0)) for f in display.frames] == [
            (shade, 0, 0) for shade in range(20 - CONFIGURED_KEEP_FRAMES, 20)
        ]
