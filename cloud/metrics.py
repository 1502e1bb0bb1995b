"""Prometheus metrics: request counts and latencies, plus gauges read from the database.

One `CollectorRegistry` per application (not the library's global one), so several apps in one
process (tests, two replicas in one e2e run) never mix their series.

What is exported, and what is not:

* HTTP requests by method, *route template* (`/api/v1/admin/jobs/{job_id}`, never the concrete
  path: ids would make unbounded label sets and would leak which objects exist) and status;
* request latency as a histogram by method and route template;
* at scrape time, counts read from the database: jobs by state, releases by state, stations by
  status, users. They are totals over every site: the scrape token belongs to the operator of the
  whole cloud, not to one site's admin, and no label ever names a site, user or station.

`/metrics` is served only when the `metrics_token` secret is set, and only with that bearer
token (compared in constant time); without the secret the route answers 404 as if it did not
exist, so a cloud never exposes its activity by default.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud.db import Job, Release, Station, User
from cloud.service import CloudService

__all__ = ["install_metrics"]

# Latency buckets from 1 ms to 10 s: tap -> list is tens of ms, a large upload seconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_UNMATCHED = "<unmatched>"


class _DatabaseCollector(Collector):
    """Counts read at scrape time: cheap grouped COUNTs over indexed state columns."""

    def __init__(self, service: CloudService) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "pullprint_jobs", "Jobs in the store by state (all sites).", labels=["state"]
        )
        releases = GaugeMetricFamily(
            "pullprint_releases", "Release records by state (all sites).", labels=["state"]
        )
        stations = GaugeMetricFamily(
            "pullprint_stations", "Stations by status (all sites).", labels=["status"]
        )
        with self._service.engine.connect() as conn:
            for state, count in conn.execute(
                select(Job.state, func.count()).group_by(Job.state)
            ).all():
                jobs.add_metric([state], count)
            for state, count in conn.execute(
                select(Release.state, func.count()).group_by(Release.state)
            ).all():
                releases.add_metric([state], count)
            active = conn.execute(
                select(func.count()).select_from(Station).where(Station.revoked_at.is_(None))
            ).scalar_one()
            total = conn.execute(select(func.count()).select_from(Station)).scalar_one()
            users = conn.execute(select(func.count()).select_from(User)).scalar_one()
        stations.add_metric(["active"], active)
        stations.add_metric(["revoked"], total - active)
        yield jobs
        yield releases
        yield stations
        yield GaugeMetricFamily("pullprint_users", "Users (all sites).", value=users)

    def describe(self) -> Iterator[Metric]:
        # No series at registration time: describing would otherwise run a query per registry.
        return iter(())


def _route_template(app: FastAPI, scope: Scope) -> str:
    """The path template of the route this request matched, or a fixed placeholder."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # Requests that failed before routing (404s, for one) still need a bounded label.
    for candidate in app.router.routes:
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", _UNMATCHED))
    return _UNMATCHED


class _RequestMetrics:
    """Pure ASGI middleware: counts each HTTP request once its response has started.

    Pure ASGI rather than Starlette's `BaseHTTPMiddleware`, which would copy every streamed
    request and response body through an extra task: IPP documents are hundreds of MB.
    """

    def __init__(
        self, app: ASGIApp, *, app_ref: FastAPI, requests: Counter, latency: Histogram
    ) -> None:
        self._app = app
        self._root = app_ref
        self._requests = requests
        self._latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception escaping the app is a 500 to the client

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                self._latency.labels(scope["method"], _route_template(self._root, scope)).observe(
                    time.perf_counter() - started
                )
            await send(message)

        try:
            await self._app(scope, receive, send_and_note)
        finally:
            route = _route_template(self._root, scope)
            if route != "/metrics":
                self._requests.labels(scope["method"], route, str(status)).inc()


def install_metrics(app: FastAPI, service: CloudService) -> CollectorRegistry:
    """Add the request-metrics middleware and the `/metrics` route; return the registry."""
    registry = CollectorRegistry(auto_describe=False)
    requests = Counter(
        "pullprint_http_requests",
        "HTTP requests served, by method, route template and status.",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "pullprint_http_request_duration_seconds",
        "Time to the response's headers, by method and route template.",
        ["method", "route"],
        buckets=_BUCKETS,
        registry=registry,
    )
    registry.register(_DatabaseCollector(service))
    token = service.config.metrics_token.encode()

    app.add_middleware(_RequestMetrics, app_ref=app, requests=requests, latency=latency)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        if not token:
            return Response(status_code=404)
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
            return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return registry
