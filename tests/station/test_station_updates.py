"""The station's updater against the real cloud, on a temp folder acting as /opt/pullprint.

The software updated is a tiny stand-in packaged as a real `pullprint` wheel (tests/support/
updates.py): pip installs it into a real venv in the inactive slot, and a supervisor speaking
systemd's sd_notify protocol runs `current/bin/pullprint station run`, so the health check,
the switch and the rollback are the ones a station runs.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.app import create_app
from cloud.server import RunningServer, start_in_thread
from cloud.service import CloudService
from station.errors import CloudRejectedError, UpdateError
from station.service_manager import ProcessService, SystemdService
from station.signing import SignatureAuth
from station.slots import SlotLayout
from station.update_client import UpdateClient
from station.updates import (
    STATE_FILE,
    TRIAL_FILE,
    UpdateOffer,
    Updater,
    UpdaterSettings,
    load_keys,
    read_health,
)
from tests.cloud.conftest import ADMIN_TOKEN, make_config, pair_station
from tests.support.updates import PROBE, probe_bundle
from tools.cli import main

CHECKOUT = Path(__file__).resolve().parents[2]
SETTINGS = UpdaterSettings(ready_timeout_s=30.0, settle_s=1.0, max_crashes=2, poll_s=0.05)


@dataclass
class Rig:
    cloud: RunningServer
    client: UpdateClient
    layout: SlotLayout
    state: Path
    key: Ed25519PrivateKey
    service: ProcessService
    tmp: Path

    def updater(self, client: Any = None, settings: UpdaterSettings = SETTINGS) -> Updater:
        return Updater(
            self.layout,
            self.state,
            [self.key.public_key()],
            client or self.client,
            self.service,
            settings=settings,
        )

    def admin(self, *argv: str) -> None:
        assert main(["update", *argv, "--cloud", self.cloud.url]) == 0

    def publish(self, version: str, *, key: Ed25519PrivateKey | None = None, **kw: Any) -> Path:
        bundle = probe_bundle(self.tmp / f"{version}.bundle", key or self.key, version, **kw)
        self.admin("publish", str(bundle))
        return bundle

    def steps(self) -> list[str]:
        return [s["step"] for s in read_health(self.state)["steps"]]


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    monkeypatch.setenv("PULLPRINT_ADMIN_TOKEN", ADMIN_TOKEN)
    app = create_app(make_config(tmp_path / "data"), run_sweeper=False)
    server = start_in_thread(app)
    service = cast(CloudService, app.state.service)
    paired = pair_station(service)
    auth = SignatureAuth(paired.identity, str(paired.id))
    client = UpdateClient(server.url, auth, timeout_s=10.0, backoff_s=0.01)
    layout = SlotLayout(tmp_path / "opt")
    supervisor = ProcessService([str(layout.program()), "station", "run"], restart_s=0.05)
    try:
        yield Rig(
            server,
            client,
            layout,
            tmp_path / "state",
            Ed25519PrivateKey.generate(),
            supervisor,
            tmp_path,
        )
    finally:
        supervisor.stop()
        client.close()
        server.stop()


def fake_slot(layout: SlotLayout, slot: str, version: str, behaviour: str = "ok") -> None:
    """A complete slot without a venv (for tests about refusals, which never install)."""
    folder = layout.slot_dir(slot) / "bin"
    folder.mkdir(parents=True)
    program = folder / "pullprint"
    body = PROBE.format(version=version, behaviour=behaviour)
    program.write_text(f"#!{sys.executable}\n{body}\nsys.exit(main())\n")
    program.chmod(0o755)
    (layout.slot_dir(slot) / ".version").write_text(version + "\n")
    (layout.slot_dir(slot) / ".complete").write_text("")


def wait_ready(service: ProcessService, timeout_s: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not service.probe().ready:
        assert time.monotonic() < deadline, "the station never said READY=1"
        time.sleep(0.05)


def test_policy_update_and_a_failing_update_rolled_back(rig: Rig, capsys) -> None:
    layout = rig.layout
    # First boot made slot a (0.1.0; first boot's own venv install is tested with the image).
    # Both updates below make real venvs with pip.
    fake_slot(layout, "a", "0.1.0")
    layout.switch("a")
    rig.service.restart()
    wait_ready(rig.service)

    rig.publish("0.2.0", min_version="0.1.5")
    # Notify (the default): the station learns of 0.2.0 and installs nothing.
    updater = rig.updater()
    assert updater.run() == "available"
    health = read_health(rig.state)
    assert (health["state"], health["available_version"], health["policy"]) == (
        "available",
        "0.2.0",
        "notify",
    )
    assert not layout.slot_dir("b").exists()
    # Off: nothing offered, nothing served.
    rig.admin("policy", "off")
    assert rig.updater().run() == "off"
    with pytest.raises(CloudRejectedError) as refused, open(os.devnull, "wb") as sink:
        rig.client.download(UpdateOffer("off", bundle_path=_bundle_path(rig)), sink, 10)
    assert (refused.value.status, refused.value.code) == (403, "updates-off")
    assert not layout.slot_dir("b").exists()

    # Automatic: downloaded, verified, installed into b, switched, healthy.
    rig.admin("policy", "automatic")
    updater = rig.updater()
    assert updater.run() == "healthy"
    assert layout.active() == "b" and layout.version("b") == "0.2.0"
    assert os.readlink(layout.current_link) == "slots/b"
    wait_ready(rig.service)
    assert any("probe 0.2.0" in m for m in rig.service.messages)
    steps = rig.steps()
    for step in ("downloading", "downloaded", "verified", "installed", "switched", "healthy"):
        assert step in steps
    assert steps.index("verified") < steps.index("installed") < steps.index("switched")
    assert updater.floor == "0.1.5"
    assert read_health(rig.state)["current_version"] == "0.2.0"
    rig.admin("stations")
    assert "healthy" in capsys.readouterr().out
    assert not (rig.state / "staging").exists()
    assert list((rig.state / "downloads").iterdir()) == []

    # 0.3.0 crashes at start: installed into a, switched, crash-looped, rolled back to b.
    rig.publish("0.3.0", behaviour="crash")
    updater = rig.updater()
    assert updater.run() == "rolled-back"
    assert layout.active() == "b"
    assert updater.failed_versions == ["0.3.0"]
    health = read_health(rig.state)
    assert health["state"] == "rolled-back"
    assert "crashed" in health["last_error"] and "back on slot b" in health["last_error"]
    assert rig.steps()[-2:] == ["switched", "rolled-back"]
    wait_ready(rig.service)  # 0.2.0 runs again
    assert "probe 0.2.0" in rig.service.messages[-1]
    assert not (rig.state / TRIAL_FILE).exists()
    rig.admin("stations")
    assert "rolled-back" in capsys.readouterr().out
    # The failed version is not tried again every poll.
    assert rig.updater().run() == "skipped"
    assert layout.active() == "b"

    # A version below the minimum this station has reached is refused before installing.
    rig.publish("0.1.2", min_version="0.1.0")
    rig.admin("policy", "automatic", "--target", "0.1.2")
    before = (layout.slot_dir("a") / ".complete").stat().st_mtime_ns
    assert rig.updater().run() == "refused"
    assert "below this station's minimum version 0.1.5" in read_health(rig.state)["last_error"]
    assert (layout.slot_dir("a") / ".complete").stat().st_mtime_ns == before
    assert layout.active() == "b"


def _bundle_path(rig: Rig) -> str:
    service = cast(CloudService, rig.cloud.app.state.service)
    bundle_id = service.updates.published("default")[0].id
    return f"/api/v1/station/update/bundles/{bundle_id}"


class CutOff(UpdateClient):
    """The real client, with the connection lost halfway through the bundle."""

    def download(self, offer: UpdateOffer, out: BinaryIO, limit: int) -> None:
        class Half:
            def __init__(self) -> None:
                self.left = (offer.size or 0) // 2

            def write(self, data: bytes) -> int:
                take = data[: self.left]
                self.left -= len(take)
                return out.write(take)

        super().download(offer, cast(BinaryIO, Half()), limit)


def test_tampered_wrong_key_and_truncated_bundles_are_refused_before_installing(
    rig: Rig, tmp_path: Path
) -> None:
    fake_slot(rig.layout, "a", "0.1.0")
    rig.layout.switch("a")
    rig.admin("policy", "automatic")

    # Tampered after signing (the cloud stores what it is given; the station checks).
    good = probe_bundle(tmp_path / "good.bundle", rig.key, "0.2.0")
    tampered = tmp_path / "tampered.bundle"
    with tarfile.open(good) as src, tarfile.open(tampered, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.endswith(".whl"):
                data = data[:-30] + bytes([data[-30] ^ 0xFF]) + data[-29:]
            dst.addfile(member, io.BytesIO(data))
    rig.admin("publish", str(tampered))
    assert rig.updater().run() == "refused"
    health = read_health(rig.state)
    assert health["last_error"].startswith("verify: ") and "sha256 differs" in health["last_error"]
    assert not rig.layout.slot_dir("b").exists() and rig.layout.active() == "a"
    assert not (rig.state / "staging").exists()

    # Signed by a key this station does not pin.
    rig.admin("withdraw", "0.2.0")
    rig.publish("0.2.1", key=Ed25519PrivateKey.generate())
    assert rig.updater().run() == "refused"
    assert "does not match any pinned key" in read_health(rig.state)["last_error"]

    # Cut off mid-download.
    rig.admin("withdraw", "0.2.1")
    rig.publish("0.2.2")
    cut = CutOff(rig.cloud.url, rig.client._auth, timeout_s=10.0)
    assert rig.updater(client=cut).run() == "refused"
    error = read_health(rig.state)["last_error"]
    assert error.startswith("download: the download ended after") and "bytes" in error
    assert not rig.layout.slot_dir("b").exists() and rig.layout.active() == "a"
    steps = rig.steps()
    assert steps.count("verify") == 2 and steps.count("download") == 1
    cut.close()

    # A cloud that says one version and serves another (an old signed bundle) is caught.
    class Lying(UpdateClient):
        def offer(self, current: str | None) -> UpdateOffer:
            real = super().offer(current)
            return dataclasses.replace(real, version="0.9.0")

    lying = Lying(rig.cloud.url, rig.client._auth, timeout_s=10.0)
    assert rig.updater(client=lying).run() == "refused"
    assert (
        "the bundle is version 0.2.2, the cloud offered 0.9.0"
        in (read_health(rig.state)["last_error"])
    )
    assert rig.layout.active() == "a"
    lying.close()


def test_an_interrupted_trial_is_finished_by_the_next_run(rig: Rig) -> None:
    """Power cut after the switch: the next run (from the previous slot) watches and rolls back."""
    fake_slot(rig.layout, "a", "0.1.0")
    fake_slot(rig.layout, "b", "0.2.0", behaviour="silent")  # never says READY=1
    rig.layout.switch("b")
    trial = {"slot": "b", "previous": "a", "version": "0.2.0", "min_version": "0.2.0", "trials": 1}
    rig.state.mkdir()
    (rig.state / STATE_FILE).write_text(json.dumps({"trial": trial}))
    (rig.state / TRIAL_FILE).write_text("a\n")
    settings = UpdaterSettings(ready_timeout_s=1.0, settle_s=0.5, poll_s=0.05)
    assert rig.updater(settings=settings).run() == "up-to-date"  # notify, nothing published
    assert rig.layout.active() == "a"
    health = read_health(rig.state)
    assert [s["step"] for s in health["steps"]] == ["resumed", "rolled-back"]
    assert "not ready within 1 s" in health["last_error"]
    assert not (rig.state / TRIAL_FILE).exists()
    wait_ready(rig.service)

    # Interrupted again and again (a boot loop): rolled back without another watch.
    rig.layout.switch("b")
    trial["trials"] = 2
    (rig.state / STATE_FILE).write_text(json.dumps({"trial": trial}))
    assert rig.updater(settings=settings).run() == "up-to-date"
    assert rig.layout.active() == "a"
    assert "interrupted 2 times" in read_health(rig.state)["last_error"]


def test_the_update_script_runs_the_previous_slot_during_a_trial(tmp_path: Path) -> None:
    """images/.../pullprint-update: during a trial the known-good slot's updater runs."""
    script = CHECKOUT / "images/rootfs/usr/local/sbin/pullprint-update"
    opt, state = tmp_path / "opt", tmp_path / "state"
    for slot in ("a", "b"):
        program = opt / "slots" / slot / "bin" / "pullprint"
        program.parent.mkdir(parents=True)
        program.write_text(f'#!/bin/sh\necho "slot {slot}: $*"\n')
        program.chmod(0o755)
    os.symlink("slots/b", opt / "current")
    state.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "PULLPRINT_OPT_DIR": str(opt),
        "PULLPRINT_STATE_DIR": str(state),
    }

    def run() -> str:
        return subprocess.run(
            ["sh", str(script)], env=env, capture_output=True, text=True, check=True
        ).stdout

    assert run().startswith("slot b: update run")
    (state / TRIAL_FILE).write_text("a\n")
    assert run().startswith("slot a: update run")
    (state / TRIAL_FILE).write_text("../../evil\n")  # only a or b are ever run
    assert run().startswith("slot b: update run")


def test_systemd_service_reads_ready_and_restarts_from_systemctl(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    fake = tmp_path / "systemctl"
    pid = tmp_path / "pid"
    pid.write_text("100")
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'case "$1" in show) printf "ActiveState=active\\nSubState=running\\nNRestarts=3\\n'
        f'Result=success\\nMainPID=%s\\n" "$(cat {pid})";; esac\n'
    )
    fake.chmod(0o755)
    unit = SystemdService("pullprint-station.service", str(fake))
    unit.restart()
    # The old process (pid 100) still answering is not the new version being ready.
    assert not unit.probe().ready
    pid.write_text("200")
    probe = unit.probe()
    assert (probe.ready, probe.restarts, probe.failed) == (True, 3, False)
    assert calls.read_text().splitlines()[1] == "restart --no-block pullprint-station.service"
    failing = tmp_path / "failing"
    failing.write_text("#!/bin/sh\necho nope >&2\nexit 1\n")
    failing.chmod(0o755)
    with pytest.raises(OSError, match="nope"):
        SystemdService("x.service", str(failing)).restart()


def test_the_pinned_key_file_must_be_roots_and_not_writable_by_others(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    from station.update_bundle import public_key_text

    path = tmp_path / "keys"
    path.write_text(public_key_text(key.public_key()) + "\n")
    path.chmod(0o644)
    assert len(load_keys(path, require_root=os.geteuid() == 0)) == 1
    path.chmod(0o666)
    with pytest.raises(UpdateError, match="writable by group or others"):
        load_keys(path, require_root=False)
    with pytest.raises(UpdateError, match="no pinned update key"):
        load_keys(tmp_path / "missing")


def test_pullprint_update_run_and_status_on_a_paired_station(
    rig: Rig, tmp_path: Path, capsys
) -> None:
    """The command the update unit runs, from the station's own config and key files."""
    from station.signing import load_or_create_identity
    from station.update_bundle import public_key_text

    service = cast(CloudService, rig.cloud.app.state.service)
    identity = load_or_create_identity(tmp_path / "station.key")
    issued = service.pairing.request(identity.signing_public, identity.exchange_public, "127.0.0.1")
    approved = service.pairing.approve(
        issued.user_code, site_key=b"k" * 32, printer_name="P", printer_uri="ipp://127.0.0.1/ipp"
    )
    config = tmp_path / "station.toml"
    config.write_text(
        f'[station]\nname = "Lobby"\n[cloud]\nurl = "{rig.cloud.url}"\n'
        f'station_id = "{approved.station_id}"\n'
        f'[identity]\nkey_file = "{tmp_path / "station.key"}"\n'
        f'[site]\nkey_hex = "{"ab" * 32}"\n[printer]\nuri = "ipp://127.0.0.1/ipp/print"\n'
    )
    keys = tmp_path / "update-keys"
    keys.write_text(public_key_text(rig.key.public_key()) + "\n")
    keys.chmod(0o644)
    fake_slot(rig.layout, "a", "0.1.0")
    rig.layout.switch("a")
    rig.publish("0.2.0")
    argv = ["update", "run", "--config", str(config), "--keys", str(keys)]
    argv += ["--root", str(rig.layout.root), "--state", str(rig.state), "--etc", str(tmp_path)]
    if os.geteuid() != 0:
        argv.append("--allow-non-root-keys")
    assert main(argv) == 0
    assert "update: available" in capsys.readouterr().out
    assert main(["update", "status", "--state", str(rig.state)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["state"], status["available_version"], status["current_version"]) == (
        "available",
        "0.2.0",
        "0.1.0",
    )
    assert main(["update", "stations", "--cloud", rig.cloud.url]) == 0
    assert f"{approved.station_id}  available" in capsys.readouterr().out
    # A read-only root is refused, clearly.
    (tmp_path / "read-only-root").write_text("overlay\n")
    assert main(argv) == 1
    assert "read-only root" in capsys.readouterr().err
