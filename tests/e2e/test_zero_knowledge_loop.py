"""Zero-knowledge mode, release-all-on-tap and delegation, end to end through `tools.rig.LoopRig`.

The submitter (`pullprint submit`'s code) seals the job to the site's public key; the cloud holds
ciphertext it cannot open with anything it has (database, blobs, secrets file); the station,
paired with the site private key in its grant, prints it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import select

from cloud.container import ContainerError, hpke_unwrap_key, unwrap_key
from cloud.db import Job
from cloud.policies import PolicyChange
from hardware.readers.formats import h10301
from station.screens import DoneScreen, ErrorScreen, JobListScreen, NoJobsScreen
from station.workflow import Button
from tools.rig import LoopRig
from tools.samples import make_pdf
from tools.submit import submit_file

BADGE = h10301(90, 4242)
DEPUTY_BADGE = h10301(90, 4343)
PDF = make_pdf(["zero knowledge", "board minutes, strictly confidential"])


def _cloud_files(rig: LoopRig) -> list[bytes]:
    """Everything the cloud holds on disk: database (and WAL), blobs, secrets.toml."""
    return [p.read_bytes() for p in sorted((rig.work_dir / "cloud").rglob("*")) if p.is_file()]


def test_sealed_job_prints_through_the_station_and_the_cloud_cannot_open_it(
    tmp_path: Path,
) -> None:
    with LoopRig(tmp_path / "rig", done_s=0.3, error_s=0.3, zero_knowledge=True) as rig:
        assert rig.service is not None and rig.site_private_key is not None
        user = rig.enrol("ada@example.org", "Ada Lovelace", BADGE)
        document = tmp_path / "minutes.pdf"
        document.write_bytes(PDF)
        job = submit_file(rig.cloud_url, user.token, document)
        assert job["zero_knowledge"] is True and job["sha256"] is None
        assert job["pages"] == 1 and job["size_bytes"] == len(PDF)

        # The cloud's whole state: no plaintext, no private key; its master key opens nothing.
        private = rig.site_private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        held = _cloud_files(rig)
        assert any(b"master_key" in blob for blob in held)  # the secrets file is in there
        assert not any(b"strictly confidential" in blob for blob in held)
        assert not any(private in blob or private.hex().encode() in blob for blob in held)
        with rig.service.context.read() as db:
            wrapped = db.scalar(select(Job.wrapped_key).where(Job.id == uuid.UUID(job["id"])))
        assert wrapped is not None
        with pytest.raises(ContainerError):
            unwrap_key(rig.service.config.master_key, wrapped, uuid.UUID(job["id"]))
        stand_in = X25519PrivateKey.from_private_bytes(rig.service.config.master_key)
        with pytest.raises(ContainerError):
            hpke_unwrap_key(stand_in, wrapped, uuid.UUID(job["id"]), rig.service.config.site)

        tapped = rig.tap(BADGE)
        listed = rig.screens.wait_for(
            (JobListScreen, ErrorScreen, NoJobsScreen), after=tapped, timeout_s=15
        )
        assert listed is not None and isinstance(listed[1], JobListScreen), listed
        pressed = rig.press(Button.PRINT_ALL)
        finished = rig.screens.wait_for((DoneScreen, ErrorScreen), after=pressed, timeout_s=60)
        assert finished is not None and isinstance(finished[1], DoneScreen), finished
        assert rig.printer is not None
        assert [d.data for d in rig.printer.received] == [PDF]
        status = rig.job_status(job["id"])
        assert (status["state"], status["content_held"]) == ("printed", False)


def test_release_all_on_tap_prints_own_and_delegated_jobs(tmp_path: Path) -> None:
    with LoopRig(tmp_path / "rig", done_s=0.3, error_s=0.3) as rig:
        assert rig.service is not None
        ada = rig.enrol("ada@example.org", "Ada Lovelace", BADGE)
        deputy = rig.enrol("bo@example.org", "Bo Deputy", DEPUTY_BADGE)
        rig.service.policies.update(rig.service.config.site, PolicyChange(release_all_on_tap=True))
        granted = rig.http.post(
            f"{rig.cloud_url}/api/v1/delegations",
            json={"email": "bo@example.org"},
            headers={"Authorization": f"Bearer {ada.token}"},
            timeout=10,
        )
        assert granted.status_code == 201, granted.text
        for token, name in ((ada.token, "ada.pdf"), (deputy.token, "bo.pdf")):
            path = tmp_path / name
            path.write_bytes(make_pdf([name]))
            submit_file(rig.cloud_url, token, path)
        tapped = rig.tap(DEPUTY_BADGE)
        # No job list and no button: the tap itself released both jobs.
        finished = rig.screens.wait_for((DoneScreen, ErrorScreen), after=tapped, timeout_s=60)
        assert finished is not None and isinstance(finished[1], DoneScreen), finished
        assert rig.screens.wait_for(JobListScreen, after=tapped, timeout_s=0) is None
        assert rig.printer is not None
        printed = sorted(d.data for d in rig.printer.received)
        assert printed == sorted([make_pdf(["ada.pdf"]), make_pdf(["bo.pdf"])])
        owners = sorted(d.user_name for d in rig.printer.received)
        assert owners == ["Ada Lovelace", "Bo Deputy"]  # printed under each owner's name
