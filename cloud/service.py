"""The cloud's domain service: one object composing identity, uploads, jobs, sessions, releases.

No HTTP here: the API layer (`cloud.api`) and the admin tools call these methods and translate
`cloud.errors` at their own boundary. Everything takes an injectable clock (`now`), so expiry,
sessions and leases are tested without sleeping.

Usage::

    service = CloudService.open(config)          # engine + migrations + blob store
    issued = service.identity.create_user("ada@example.org", "Ada")
    service.uploads.submit(principal, "report.pdf", chunks, "application/pdf")
    service.sweep()
    service.close()
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from cloud.blobstore import BlobStore, open_blob_store
from cloud.config import CloudConfig
from cloud.context import Clock, ServiceContext, utc_now
from cloud.db import make_engine
from cloud.delegations import Delegations
from cloud.devices import Devices
from cloud.enrolment import Enrolment
from cloud.events import EventBus, open_event_bus
from cloud.identity import Identity
from cloud.ipp.jobs import IppJobs
from cloud.jobs import Jobs
from cloud.migrate import upgrade
from cloud.pairing import Pairing
from cloud.passcodes import Passcodes, ReleasePasscodes
from cloud.pins import Pins
from cloud.policies import Policies
from cloud.registry import Registry
from cloud.releases import Releases
from cloud.reports import Reports
from cloud.sessions import Sessions
from cloud.sites import Sites
from cloud.stations import Stations
from cloud.updates import Updates
from cloud.uploads import Uploads

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep did."""

    expired_jobs: int
    expired_leases: int


class CloudService:
    """The domain, wired to a database engine, a blob store and a clock."""

    def __init__(
        self,
        config: CloudConfig,
        engine: Engine,
        blobs: BlobStore,
        now: Clock = utc_now,
        events: EventBus | None = None,
    ) -> None:
        """Compose the domain modules; the schema must already be migrated (see `open`).

        `events` replaces the bus `open_event_bus` would choose (the workers of one server on
        SQLite share theirs over sockets: `cloud.workers`)."""
        self.config = config
        self.engine = engine
        self.blobs = blobs
        self.events = events if events is not None else open_event_bus(engine)
        self.context = ServiceContext.build(config, engine, blobs, now, self.events)
        self.sites = Sites(self.context)
        self.identity = Identity(self.context)
        self.uploads = Uploads(self.context)
        self.jobs = Jobs(self.context)
        self.pins = Pins(self.context)
        self.release_passcodes = ReleasePasscodes(self.context)
        self.stations = Stations(self.context)
        self.sessions = Sessions(self.context, self.pins, self.release_passcodes, self.stations)
        self.enrolment = Enrolment(self.context)
        self.releases = Releases(self.context)
        self.passcodes = Passcodes(self.context)
        self.ipp_jobs = IppJobs(self.context)
        self.pairing = Pairing(self.context)
        self.reports = Reports(self.context)
        self.policies = Policies(self.context)
        self.delegations = Delegations(self.context)
        self.registry = Registry(self.context)
        self.devices = Devices(self.context, self.registry)
        self.updates = Updates(self.context)

    @classmethod
    def open(
        cls,
        config: CloudConfig,
        *,
        blobs: BlobStore | None = None,
        now: Clock = utc_now,
        events: Callable[[Engine], EventBus] | None = None,
    ) -> CloudService:
        """Open the configured database (migrating it to the latest schema) and blob store.

        Args:
            config: the validated configuration.
            blobs: a blob store to use instead of the configured one (`open_blob_store`).
            now: the clock.
            events: makes the event bus for the engine, instead of `open_event_bus`.
        """
        config.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(config.database_url)
        try:
            upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
        if blobs is None:
            try:
                blobs = open_blob_store(config)
            except BaseException:
                engine.dispose()
                raise
        service = cls(config, engine, blobs, now, events(engine) if events is not None else None)
        service.sites.ensure_default()
        return service

    def sweep(self) -> SweepReport:
        """Expire leases (jobs back to held), then expire jobs, then retry failed blob deletes.

        Leases go first so that a job returned to the list after its own expiry is destroyed in
        the same sweep rather than one interval later.
        """
        leases = self.releases.expire_leases()
        jobs = self.jobs.expire_due()
        self.jobs.purge_orphan_blobs()
        self.ipp_jobs.abort_stale()
        self.stations.sweep_nonces()
        self.pairing.sweep()
        self.uploads.sweep_idempotency_keys()
        self.enrolment.sweep()
        return SweepReport(expired_jobs=jobs, expired_leases=leases)

    def close(self) -> None:
        """Stop the event listener and release the database connections."""
        self.events.close()
        self.engine.dispose()
