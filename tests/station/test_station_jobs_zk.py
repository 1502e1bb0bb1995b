"""The station's side of jobs policies: release-all-on-tap, reprints left out of "print all",
delegated jobs labelled, and zero-knowledge job keys unwrapped with the site private key."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud.container import ContainerError, hpke_wrap_key, new_data_key
from station.cloud_client import _job, _release
from station.config import load_config
from station.errors import CloudError
from station.models import JobSummary
from station.workflow import (
    Button,
    ButtonPressed,
    CardPresented,
    OpenSession,
    ReleaseJobs,
    SessionOpened,
    State,
    Tick,
    Timings,
    Workflow,
)

HELD = JobSummary("j1", "report.pdf", datetime(2026, 5, 9, 9, 30), 100, 1)
KEPT = JobSummary("j2", "old.pdf", datetime(2026, 5, 8, 9, 30), 100, 1, reprint=True)


def opened(release_all: bool, jobs: tuple[JobSummary, ...]) -> tuple[Workflow, list[object]]:
    wf = Workflow(Timings(identify_s=5, session_s=30, done_s=4, error_s=6), station_name="F2")
    wf.handle(Tick(100.0))
    attempt = next(c for c in wf.handle(CardPresented("a" * 64)) if isinstance(c, OpenSession))
    commands = wf.handle(SessionOpened("s1", "Ana", jobs, attempt.attempt, release_all))
    return wf, list(commands)


def test_release_all_on_tap_releases_held_jobs_without_the_list() -> None:
    wf, commands = opened(True, (HELD, KEPT))
    assert wf.state is State.DELIVERING
    assert [c for c in commands if isinstance(c, ReleaseJobs)] == [ReleaseJobs("s1", ("j1",))]
    # Only reprints waiting: the list is shown, nothing prints by itself.
    wf, commands = opened(True, (KEPT,))
    assert wf.state is State.JOB_LIST
    assert not [c for c in commands if isinstance(c, ReleaseJobs)]


def test_print_all_leaves_reprints_out_but_a_chosen_reprint_prints() -> None:
    wf, _ = opened(False, (HELD, KEPT))
    commands = wf.handle(ButtonPressed(Button.PRINT_ALL))
    assert [c for c in commands if isinstance(c, ReleaseJobs)] == [ReleaseJobs("s1", ("j1",))]
    wf, _ = opened(False, (KEPT,))
    commands = wf.handle(ButtonPressed(Button.PRINT_ALL))
    assert [c for c in commands if isinstance(c, ReleaseJobs)] == [ReleaseJobs("s1", ("j2",))]


def test_delegated_and_kept_jobs_as_listed() -> None:
    item = {
        "id": "j9",
        "name": "budget.xlsx",
        "submitted_at": "2026-05-09T09:30:00.000Z",
        "size_bytes": 10,
        "owner_name": "Ada Lovelace",
        "state": "printed",
    }
    summary = _job(item)
    assert (summary.name, summary.reprint) == ("Ada Lovelace: budget.xlsx", True)
    assert _job({**item, "owner_name": None, "state": "held"}).name == "budget.xlsx"


def release_item(wrapped: bytes, job_id: uuid.UUID) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "job_id": str(job_id),
        "name": "x",
        "format": "application/pdf",
        "copies": 1,
        "size_bytes": 1,
        "content_bytes": 100,
        "user_name": "Ada",
        "site": "default",
        "key_wrap": "hpke",
        "data_key": None,
        "wrapped_key": base64.b64encode(wrapped).decode(),
    }


def test_zero_knowledge_release_is_unwrapped_with_the_site_private_key() -> None:
    key = X25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    job_id, data_key = uuid.uuid4(), new_data_key()
    item = release_item(hpke_wrap_key(public, data_key, job_id, "default"), job_id)
    assert _release(item, key).data_key == data_key
    with pytest.raises(ContainerError):
        _release(item, X25519PrivateKey.generate())
    with pytest.raises(CloudError):
        _release(item, None)
    with pytest.raises(ContainerError):  # a wrapped key served under another job id
        _release({**item, "job_id": str(uuid.uuid4())}, key)


def test_station_config_reads_the_site_private_key(tmp_path: Path) -> None:
    key = tmp_path / "site-private.key"
    key.write_text("ab" * 32 + "\n")
    site = tmp_path / "site.key"
    site.write_text("cd" * 32 + "\n")
    toml = tmp_path / "station.toml"
    toml.write_text(
        '[station]\nname = "s"\n'
        f'[cloud]\nurl = "http://127.0.0.1:1"\nstation_id = "{uuid.uuid4()}"\n'
        f'[site]\nkey_file = "{site}"\nprivate_key_file = "{key}"\n'
        '[printer]\nuri = "ipp://127.0.0.1:2/ipp/print"\n'
    )
    config = load_config(toml, {})
    assert config.site_private_key == bytes.fromhex("ab" * 32)
    assert "abab" not in repr(config)
    toml.write_text(toml.read_text().replace(f'private_key_file = "{key}"\n', ""))
    assert load_config(toml, {}).site_private_key is None
