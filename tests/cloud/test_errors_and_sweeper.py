"""The error tree and its HTTP mapping; the sweeper's scheduling and failure logging."""

from __future__ import annotations

import logging
import threading

import pytest

from cloud import errors
from cloud.api.problems import status_for
from cloud.sweeper import Sweeper

LEAVES_AND_BUILTINS = [
    (errors.ConfigError, ValueError),
    (errors.SecretsExistError, FileExistsError),
    (errors.UnauthorizedError, PermissionError),
    (errors.JobNotFoundError, LookupError),
    (errors.UnknownCredentialError, LookupError),
    (errors.InvalidTagError, ValueError),
    (errors.TruncatedUploadError, EOFError),
    (errors.BlobNotFoundError, FileNotFoundError),
    (errors.StorageError, OSError),
]


@pytest.mark.parametrize(("error", "builtin"), LEAVES_AND_BUILTINS)
def test_leaves_inherit_root_and_builtin(
    error: type[errors.CloudError], builtin: type[Exception]
) -> None:
    instance = error("detail")
    assert isinstance(instance, errors.CloudError)
    assert isinstance(instance, builtin)
    assert instance.detail == "detail"


def test_every_error_has_a_distinct_code() -> None:
    classes = [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, errors.CloudError)
    ]
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    assert all(code == code.lower() and " " not in code for code in codes)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.UnauthorizedError(), 401),
        (errors.UnknownCredentialError(), 404),
        (errors.JobNotFoundError(), 404),
        (errors.JobNotHeldError(), 409),
        (errors.ReleaseConflictError(), 409),
        (errors.TruncatedUploadError(), 400),
        (errors.EmptyDocumentError(), 400),
        (errors.InvalidTagError(), 422),
        (errors.SessionExpiredError(), 410),
        (errors.StorageError(), 500),
        (errors.BlobNotFoundError(), 500),  # a missing blob is our fault, not the client's
        (errors.ConfigError(), 500),
    ],
)
def test_status_mapping(error: errors.CloudError, status: int) -> None:
    assert status_for(error) == status


def test_sweeper_runs_periodically_and_stops() -> None:
    ran = threading.Event()
    sweeper = Sweeper(ran.set, interval_s=0.01)
    sweeper.start()
    assert ran.wait(5)
    sweeper.stop()
    assert not sweeper.running


def test_sweeper_logs_a_repeating_failure_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cloud.sweeper")
    healthy = False

    def sweep() -> None:
        if not healthy:
            raise OSError("database is locked")

    sweeper = Sweeper(sweep, interval_s=60)
    for _ in range(3):
        sweeper.run_once()
    healthy = True
    sweeper.run_once()
    levels = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [m for lvl, m in levels if lvl == logging.WARNING] == [
        "sweep failed; retrying every 60s",
        "sweep recovered",
    ]
    assert sum(1 for lvl, _ in levels if lvl == logging.DEBUG) == 2
    assert sweeper.runs == 4
