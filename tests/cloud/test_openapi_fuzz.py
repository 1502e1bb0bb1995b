"""Schemathesis over the served OpenAPI document: no 5xx, and responses match their schemas.

Every operation gets a bounded number of generated requests (the CI budget is minutes), sent
with a real admin token and a real user token in turn, so the handlers behind authentication run
too, not only the 401 path. Station routes need RFC 9421 signatures that a generator cannot
make; they are exercised for their refusals here and for their behaviour in test_api/test_flow.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from cloud.app import create_app
from cloud.service import CloudService
from tests.cloud.conftest import ADMIN_TOKEN, FakeClock, make_config

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

_state: dict[str, Any] = {}


@pytest.fixture
def api_schema(tmp_path: Path) -> Iterator[Any]:
    # Per test, not per module: the postgres profile gives each data dir its own database and
    # drops it when the test that made it ends.
    data = tmp_path / "data"
    app = create_app(make_config(data), now=FakeClock(), run_sweeper=False)
    with TestClient(app):  # runs the lifespan once, so the app is what a server would serve
        service: CloudService = app.state.service
        issued = service.identity.create_user("fuzz@example.org", "Fuzz")
        _state["user"] = issued.api_token
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


_CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
_SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,  # the same examples every run: a CI failure reproduces locally
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _fuzz(api_schema: Any, token: str) -> list[str]:
    """Run every operation's strategy; return one line per operation that failed a check."""
    # Driven through Hypothesis directly rather than schemathesis' pytest plugin, whose lazy
    # fixture loader does not work with this pytest version.
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @_SETTINGS
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=_CHECKS)

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    return failures


def test_as_the_admin(api_schema: Any) -> None:
    failures = _fuzz(api_schema, ADMIN_TOKEN)
    assert failures == [], "\n\n".join(failures)


def test_as_a_user(api_schema: Any) -> None:
    failures = _fuzz(api_schema, _state["user"])
    assert failures == [], "\n\n".join(failures)


def test_the_openapi_document_is_served(api_schema: Any) -> None:
    operations = list(api_schema.get_all_operations())
    assert len(operations) > 10
    paths = {op.ok().path for op in operations}
    assert {"/api/v1/jobs", "/api/v1/admin/users", "/api/v1/admin/audit"} <= paths
