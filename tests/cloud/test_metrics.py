"""Prometheus metrics: off without a token, guarded by it, bounded labels, real counts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cloud.app import create_app
from cloud.config import ConfigError, load_config
from tests.cloud.conftest import FakeClock, TestClient, World, make_config

METRICS_TOKEN = "ppm_" + "m" * 40


def _scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def metrics_client(tmp_path: Path, clock: FakeClock) -> TestClient:
    app = create_app(
        make_config(tmp_path / "data", metrics_token=METRICS_TOKEN), now=clock, run_sweeper=False
    )
    with TestClient(app) as test_client:
        yield test_client  # type: ignore[misc]


def test_metrics_are_off_without_a_token(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 404


def test_metrics_need_the_scrape_token(metrics_client: TestClient) -> None:
    assert metrics_client.get("/metrics").status_code == 401
    wrong = metrics_client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 44})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    # The admin token is not a scrape token: they are separate secrets.
    admin = metrics_client.get("/metrics", headers={"Authorization": "Bearer " + "a" * 44})
    assert admin.status_code == 401


def test_requests_are_counted_by_route_template(
    metrics_client: TestClient, clock: FakeClock
) -> None:
    world = World(metrics_client, clock)
    job = world.submit(b"%PDF-1.4 secret words", name="payroll.pdf")
    assert (
        metrics_client.get(f"/api/v1/admin/jobs/{job['id']}", headers=_admin()).status_code == 200
    )
    assert metrics_client.get("/no/such/route").status_code == 404

    samples = _scrape(metrics_client)
    submitted = samples[
        (
            "pullprint_http_requests_total",
            (("method", "POST"), ("route", "/api/v1/jobs"), ("status", "201")),
        )
    ]
    assert submitted == 1
    by_template = (
        "pullprint_http_requests_total",
        (("method", "GET"), ("route", "/api/v1/admin/jobs/{job_id}"), ("status", "200")),
    )
    assert samples[by_template] == 1
    assert (
        samples[
            (
                "pullprint_http_requests_total",
                (("method", "GET"), ("route", "<unmatched>"), ("status", "404")),
            )
        ]
        == 1
    )
    # Database gauges: the held job, the user, the paired station.
    assert samples[("pullprint_jobs", (("state", "held"),))] == 1
    assert samples[("pullprint_users", ())] == 1
    assert samples[("pullprint_stations", (("status", "active"),))] == 1
    # Histogram present for the submit route.
    count_key = (
        "pullprint_http_request_duration_seconds_count",
        (("method", "POST"), ("route", "/api/v1/jobs")),
    )
    assert samples[count_key] == 1


def test_no_ids_names_or_content_in_the_exposition(
    metrics_client: TestClient, clock: FakeClock
) -> None:
    world = World(metrics_client, clock)
    job = world.submit(b"%PDF-1.4 secret words", name="payroll.pdf")
    metrics_client.get(f"/api/v1/admin/jobs/{job['id']}", headers=_admin())
    text = metrics_client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    for forbidden in (job["id"], "payroll", "secret words", world.tag, world.user_id, "ada@"):
        assert forbidden not in text
    # Every route label is a template or the placeholder, never a concrete id.
    uuid_re = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")
    assert not uuid_re.search(text)


def test_metrics_token_is_validated(tmp_path: Path) -> None:
    env = {
        "PULLPRINT_DATA_DIR": str(tmp_path),
        "PULLPRINT_MASTER_KEY": "11" * 32,
        "PULLPRINT_PEPPER": "22" * 32,
        "PULLPRINT_ADMIN_TOKEN": "ppa_" + "a" * 40,
    }
    assert load_config(None, env).metrics_token == ""
    assert load_config(None, {**env, "PULLPRINT_METRICS_TOKEN": METRICS_TOKEN}).metrics_token
    with pytest.raises(ConfigError, match="metrics_token must be at least"):
        load_config(None, {**env, "PULLPRINT_METRICS_TOKEN": "short"})
    assert METRICS_TOKEN not in repr(
        load_config(None, {**env, "PULLPRINT_METRICS_TOKEN": METRICS_TOKEN})
    )


def _admin() -> dict[str, str]:
    return {"Authorization": "Bearer ppa_" + "a" * 40}
