"""The cloud's composition root: configuration in, a ready FastAPI application out.

This is the one place that chooses implementations: the database engine from
`database_url`, the blob store (filesystem under `<data_dir>/blobs` unless one is passed in
explicitly, e.g. `MemoryBlobStore` in tests), the clock, and the background sweeper.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from cloud.api import install_api
from cloud.blobstore import BlobStore
from cloud.config import CloudConfig
from cloud.context import Clock, utc_now
from cloud.events import EventBus
from cloud.ipp.endpoint import install_ipp
from cloud.metrics import install_metrics
from cloud.service import CloudService
from cloud.sweeper import Sweeper

log = logging.getLogger(__name__)


def create_app(
    config: CloudConfig,
    *,
    now: Clock = utc_now,
    blobs: BlobStore | None = None,
    run_sweeper: bool = True,
    events: Callable[[Engine], EventBus] | None = None,
) -> FastAPI:
    """Build the application: open (and migrate) the database, then mount the API.

    Args:
        config: the validated configuration.
        now: the clock (tests inject one).
        blobs: a blob store instead of the filesystem store under `config.blobs_dir`.
        run_sweeper: start the background sweeper with the app's lifespan.
        events: makes the event bus (default: `cloud.events.open_event_bus`).

    The sweeper thread starts and stops with the application's lifespan (uvicorn, or a
    `TestClient` used as a context manager); the service is reachable as `app.state.service`.
    """
    service = CloudService.open(config, blobs=blobs, now=now, events=events)
    sweeper = Sweeper(service.sweep, config.sweep_interval_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if run_sweeper:
            sweeper.start()
        log.info("cloud for site %s ready (data in %s)", config.site, config.data_dir)
        try:
            yield
        finally:
            sweeper.stop()
            # Pooled connections (and the event listener) are re-created on demand, so a
            # restarted lifespan still works.
            service.events.close()
            service.engine.dispose()

    app = FastAPI(title="PullPrint cloud", version="1", lifespan=lifespan)
    app.state.service = service
    app.state.sweeper = sweeper
    install_metrics(app, service)
    install_api(app)
    install_ipp(app, service)
    return app
