"""Engine and storage selection: PostgreSQL URLs get psycopg 3; the blob store follows config."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cloud.blobstore import FilesystemBlobStore, open_blob_store
from cloud.config import load_config
from cloud.db import Release, database_url
from cloud.errors import ConfigError, JobNotHeldError, ReleaseConflictError
from cloud.service import CloudService
from cloud.states import ReleaseState
from tests.cloud.conftest import Enrolled, make_config

SECRETS = {
    "PULLPRINT_MASTER_KEY": "11" * 32,
    "PULLPRINT_PEPPER": "22" * 32,
    "PULLPRINT_ADMIN_TOKEN": "t" * 40,
}


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u@127.0.0.1:5432/db", "postgresql+psycopg"),
        ("postgres://u@127.0.0.1/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@127.0.0.1/db", "postgresql+psycopg"),
        ("sqlite:////tmp/x.db", "sqlite"),
    ],
)
def test_postgres_urls_use_psycopg_3(given: str, driver: str) -> None:
    assert database_url(given).drivername == driver


def test_s3_settings_are_read_and_checked(tmp_path: Path) -> None:
    env = {
        **SECRETS,
        "PULLPRINT_DATA_DIR": str(tmp_path),
        "PULLPRINT_BLOB_STORE": "s3",
        "PULLPRINT_S3_BUCKET": "pullprint-jobs",
        "PULLPRINT_S3_ENDPOINT_URL": "https://s3.example.org",
        "PULLPRINT_S3_PREFIX": "site-a/",
    }
    config = load_config(None, env)
    assert (config.blob_store, config.s3_bucket, config.s3_prefix) == (
        "s3",
        "pullprint-jobs",
        "site-a/",
    )
    assert config.s3_endpoint_url == "https://s3.example.org"
    with pytest.raises(ConfigError, match="s3_bucket"):
        load_config(None, {**env, "PULLPRINT_S3_BUCKET": ""})
    with pytest.raises(ConfigError, match="s3_bucket"):
        load_config(None, {**env, "PULLPRINT_S3_BUCKET": "Not_A_Bucket"})
    with pytest.raises(ConfigError, match="blob_store"):
        load_config(None, {**env, "PULLPRINT_BLOB_STORE": "ftp"})
    with pytest.raises(ConfigError, match="s3_endpoint_url"):
        load_config(None, {**env, "PULLPRINT_S3_ENDPOINT_URL": "s3.example.org"})
    assert "AWS" not in repr(config)  # credentials never come from (or show in) the config


def test_the_blob_store_follows_the_config(tmp_path: Path) -> None:
    files = make_config(tmp_path / "a", blob_store="filesystem")
    assert isinstance(open_blob_store(files), FilesystemBlobStore)
    s3 = make_config(
        tmp_path / "b", blob_store="s3", s3_bucket="b-u-c", s3_endpoint_url="http://127.0.0.1:9"
    )
    # The S3 store is checked at start (stale uploads are listed): unreachable -> StorageError.
    with pytest.raises(OSError, match="cannot reach the S3 bucket"):
        open_blob_store(s3)


def test_concurrent_releases_of_one_job_grant_it_once(
    service: CloudService, enrolled: Enrolled
) -> None:
    """Compare-and-set holds on both engines: SQLite serialises writers, PostgreSQL runs them
    at READ COMMITTED, where the UPDATE re-checks `state = 'held'` after waiting."""
    job = service.uploads.submit(enrolled.user, "doc.pdf", iter([b"%PDF-1.7 x" * 100]))
    racers = 6
    sessions = [service.sessions.open(enrolled.station, enrolled.tag).id for _ in range(racers)]
    start = threading.Barrier(racers)

    def release(session_id: uuid.UUID) -> int:
        start.wait()
        try:
            return len(service.releases.create(enrolled.station, session_id, [job.id]))
        except JobNotHeldError:
            return 0

    with ThreadPoolExecutor(racers) as pool:
        granted = list(pool.map(release, sessions))
    assert sorted(granted) == [0] * (racers - 1) + [1]
    with service.context.read() as db:
        assert db.scalar(select(func.count()).select_from(Release)) == 1


def test_concurrent_outcomes_record_exactly_one(service: CloudService, enrolled: Enrolled) -> None:
    job = service.uploads.submit(enrolled.user, "doc.pdf", iter([b"%PDF-1.7 x" * 100]))
    session = service.sessions.open(enrolled.station, enrolled.tag)
    [grant] = service.releases.create(enrolled.station, session.id, [job.id])
    outcomes = [ReleaseState.PRINTED, ReleaseState.FAILED] * 3
    start = threading.Barrier(len(outcomes))

    def report(outcome: ReleaseState) -> str:
        start.wait()
        try:
            return str(service.releases.report_outcome(enrolled.station, grant.id, outcome).state)
        except ReleaseConflictError:
            return "conflict"

    with ThreadPoolExecutor(len(outcomes)) as pool:
        results = list(pool.map(report, outcomes))
    winner = next(r for r in results if r != "conflict")
    # The winner's outcome, repeated by the same reports (idempotent); the other is refused.
    assert all(r in (winner, "conflict") for r in results)
    assert results.count(winner) == 3
    held = [j.id for j in service.jobs.list_held(enrolled.user.id)]
    assert held == ([] if winner == "printed" else [job.id])


def test_concurrent_first_pin_failures_at_a_station_count_each(
    service: CloudService, enrolled: Enrolled
) -> None:
    """The station's failure counter row is created by whichever failure comes first; a
    simultaneous one must count too, not fail with a duplicate-key error (PostgreSQL)."""
    from cloud.db import PinStationFailures
    from cloud.errors import TooManyRequestsError, UnknownCredentialError
    from cloud.pins import pin_tag
    from tests.cloud.conftest import SITE_KEY

    # Unknown emails: no PIN row is locked first, so nothing else serialises the two.
    racers = 4
    start = threading.Barrier(racers)

    def fail(n: int) -> str:
        email = f"nobody-{n}@example.org"
        start.wait()
        try:
            service.sessions.open_with_pin(
                enrolled.station, email, pin_tag(SITE_KEY, email, "0000")
            )
        except (UnknownCredentialError, TooManyRequestsError) as exc:
            return type(exc).__name__
        return "opened"

    with ThreadPoolExecutor(racers) as pool:
        results = list(pool.map(fail, range(racers)))
    # Every failure is counted (from the third on the answer is the back-off, still counted);
    # none fails with a duplicate-key error.
    assert set(results) <= {"UnknownCredentialError", "TooManyRequestsError"}, results
    with service.context.read() as db:
        row = db.get(PinStationFailures, enrolled.station.id)
        assert row is not None and row.failures == racers
