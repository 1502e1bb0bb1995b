"""SNMP range scans: ask every address of the planned ranges for its printer report.

Invariants:

- the ranges are checked by `plan_scan` before a single packet leaves: non-loopback ranges are
  refused unless `allow_network=True`;
- at most `concurrency` hosts are being read at once (a fixed pool of workers pulling addresses
  from a lazy iterator, so a /16 costs no memory up front), and the `SnmpClient` bounds the
  requests in flight below that;
- hosts are started no faster than `rate_per_s` (a token interval, not a burst), so a scan does
  not flood a network or a printer's SNMP agent;
- a host that does not answer (timeout) or refuses the credentials is skipped; only hosts that
  answer are returned, in address order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from hardware.discovery.ranges import DEFAULT_MAX_HOSTS, AddressRange, plan_scan
from hardware.discovery.result import ScanResult
from hardware.snmp.client import SnmpClient, SnmpTarget
from hardware.snmp.credentials import CommunityCredentials, Credentials
from hardware.snmp.errors import SnmpAuthError, SnmpError, SnmpTimeoutError
from hardware.snmp.reader import read_printer

logger = logging.getLogger(__name__)


class RateLimiter:
    """Spaces starts at least `1 / rate_per_s` seconds apart (no bursts); 0 or less: no limit."""

    def __init__(self, rate_per_s: float) -> None:
        self.interval_s = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Return when the next start is allowed."""
        if self.interval_s == 0.0:
            return
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval_s
        if start > now:
            await asyncio.sleep(start - now)


async def scan(
    client: SnmpClient,
    ranges: Sequence[str | AddressRange],
    exclude: Sequence[str | AddressRange] = (),
    *,
    community: str = "public",
    credentials: Credentials | None = None,
    port: int = 161,
    concurrency: int = 32,
    rate_per_s: float = 50.0,
    allow_network: bool = False,
    max_hosts: int = DEFAULT_MAX_HOSTS,
) -> list[ScanResult]:
    """Read the printer report of every host in `ranges` minus `exclude` that answers.

    Args:
        client: the SNMP client (its timeout and retries decide how long a silent host costs).
        ranges, exclude: CIDR blocks, `a-b` spans or addresses (see `hardware.discovery.ranges`).
        community: v2c community, used when `credentials` is not given.
        credentials: any SNMP credentials (v1, v2c, v3), instead of `community`.
        port: the agents' UDP port.
        concurrency: hosts read at once.
        rate_per_s: hosts started per second at most (0: unlimited).
        allow_network: allow addresses outside 127.0.0.0/8.
        max_hosts: refuse a plan with more addresses.

    Returns:
        One `ScanResult` per host that answered, in address order.

    Raises:
        RangeError, NetworkNotAllowedError: before anything is sent.
    """
    plan = plan_scan(ranges, exclude, allow_network=allow_network, max_hosts=max_hosts)
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    creds = credentials or CommunityCredentials(community)
    limiter = RateLimiter(rate_per_s)
    hosts = enumerate(plan.hosts())
    found: list[tuple[int, ScanResult]] = []
    silent = 0

    async def worker() -> None:
        nonlocal silent
        for index, address in hosts:  # a shared iterator: each address goes to one worker
            await limiter.wait()
            target = SnmpTarget(address, creds, port)
            try:
                report = await read_printer(client, target)
            except SnmpTimeoutError:
                silent += 1
                continue
            except SnmpAuthError as exc:
                logger.info("%s answers SNMP but refused the credentials: %s", target, exc)
                continue
            except SnmpError as exc:
                logger.warning("%s: SNMP error while scanning: %s", target, exc)
                continue
            found.append((index, ScanResult(address, port, report)))

    logger.info("scanning %d addresses (%s)", plan.host_count, ", ".join(map(str, plan.spans)))
    workers = min(concurrency, plan.host_count)
    await asyncio.gather(*(worker() for _ in range(workers)))
    logger.info("scan done: %d answered, %d silent", len(found), silent)
    return [result for _, result in sorted(found, key=lambda pair: pair[0])]
