"""Releases from a phone, through the whole loop (tools.rig.LoopRig): the user calls the API as
the phone would (the printer's QR code names the printer), the station, long-polling while idle,
prints the job at the paired virtual printer without a tap, and shows whose it is. A job of
another user cannot be released that way; a station killed mid-delivery and restarted does not
print it twice."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from hardware.display.simulated import SimulatedDisplay
from hardware.readers.formats import h10301
from hardware.readers.simulated import SimulatedCardReader
from station.app import Backoff, build_station
from station.config import load_config
from station.screens import DeliveringScreen, DoneScreen
from tests.e2e.test_restart import print_by_hand
from tools.rig import EnrolledUser, LoopRig
from tools.samples import make_pdf

WAIT_S = 20


def submit(rig: LoopRig, user: EnrolledUser, name: str, text: str) -> str:
    response = rig.http.post(
        f"{rig.cloud_url}/api/v1/jobs",
        params={"name": name},
        data=make_pdf([text]),
        headers={"Authorization": f"Bearer {user.token}", "Content-Type": "application/pdf"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def from_phone(rig: LoopRig, user: EnrolledUser, body: dict[str, Any]) -> Any:
    return rig.http.post(
        f"{rig.cloud_url}/api/v1/me/printers/{rig.printer_id}/releases",
        json=body,
        headers={"Authorization": f"Bearer {user.token}"},
        timeout=30,
    )


def wait_printed(rig: LoopRig, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        status = rig.job_status(job_id)
        if status["state"] == "printed":
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not printed: {rig.job_status(job_id)}")


def test_a_job_released_from_a_phone_prints_without_a_tap(tmp_path: Path) -> None:
    with LoopRig(tmp_path / "rig", done_s=0.3, long_poll=True) as rig:
        assert rig.printer is not None
        ada = rig.enrol("ada@example.org", "Ada Lovelace", h10301(90, 324))
        bob = rig.enrol("bob@example.org", "Bob", h10301(90, 325))
        job_id = submit(rig, ada, "boarding-pass.pdf", "from the phone")
        bobs = submit(rig, bob, "bobs.pdf", "not for ada")
        time.sleep(0.3)  # the station is idle, its long-poll waiting in the cloud

        refused = from_phone(rig, ada, {"job_ids": [bobs]})  # another user's job
        assert refused.status_code == 404, refused.text
        started = time.monotonic()
        made = from_phone(rig, ada, {"job_ids": [job_id]})
        assert made.status_code == 201, made.text
        status = wait_printed(rig, job_id)
        assert status["content_held"] is False
        assert len(rig.printer.received) == 1
        shown = rig.screens.wait_for(DoneScreen, after=started, timeout_s=WAIT_S)
        assert shown is not None and shown[1].owner == "Ada Lovelace"
        delivering = [
            s for at, s in rig.screens.entries if at >= started and isinstance(s, DeliveringScreen)
        ]
        assert delivering and delivering[-1].owner == "Ada Lovelace"
        assert [item.name for item in delivering[-1].items] == ["boarding-pass.pdf"]
        assert rig.job_status(bobs)["state"] == "held"


def test_a_station_killed_mid_delivery_does_not_print_twice(tmp_path: Path) -> None:
    pdf = make_pdf(["printed once"])
    with LoopRig(tmp_path / "rig", done_s=0.3) as rig:  # no long-poll: the "crash" is by hand
        assert rig.station is not None and rig.printer is not None
        ada = rig.enrol("ada@example.org", "Ada", h10301(90, 324))
        first = submit(rig, ada, "first.pdf", "printed once")
        made = from_phone(rig, ada, {"job_ids": [first]})
        assert made.status_code == 201, made.text
        release_id = made.json()["releases"][0]["id"]

        # What the station's worker does up to the crash: the grant, the journal, the document
        # to the printer ... and the power goes before the outcome reaches the cloud.
        client = rig.station.client
        journal = print_by_hand(rig, client, client.release_grant(release_id))  # type: ignore[attr-defined]
        rig.station.stop()
        rig.station = None
        assert rig.job_status(first)["content_held"] is True

        # Meanwhile another job is released from the phone, for the station to find.
        second = submit(rig, ada, "second.pdf", "after the restart")
        assert from_phone(rig, ada, {"job_ids": [second]}).status_code == 201

        # The station starts again from the same state directory, now long-polling.
        config = load_config(rig.work_dir / "station.toml", {})
        config = dataclasses.replace(
            config, cloud=dataclasses.replace(config.cloud, long_poll=True)
        )
        restarted = build_station(
            config,
            reader=SimulatedCardReader(),
            display=SimulatedDisplay(),
            backoff=Backoff(0.1, 0.5),
        )
        restarted.start()
        try:
            wait_printed(rig, first)
            wait_printed(rig, second)
        finally:
            restarted.stop()
        documents = [d.data for d in rig.printer.received]
        assert documents.count(pdf) == 1  # the first job printed exactly once
        assert len(documents) == 2
        assert journal.entries() == []
