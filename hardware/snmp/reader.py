"""Read one printer's report: a GET of the system group, then the printer tables, concurrently.

The first GET decides whether the printer is there at all and whether our credentials work: its
timeout or auth error is raised as is. After that a table that times out (some agents choke on
one table) is recorded in `PrinterReport.unreadable` instead of losing the whole report.
"""

from __future__ import annotations

import asyncio
import logging

from hardware.snmp import oids, vendors
from hardware.snmp.client import SnmpClient, SnmpTarget, SnmpValue
from hardware.snmp.errors import SnmpTimeoutError
from hardware.snmp.oids import Oid, format_oid
from hardware.snmp.report import PrinterReport, build_report

logger = logging.getLogger(__name__)


async def read_values(
    client: SnmpClient, target: SnmpTarget
) -> tuple[dict[Oid, SnmpValue], tuple[str, ...]]:
    """Every value a report is built from, and the subtrees that timed out.

    Raises:
        SnmpTimeoutError: the printer did not answer the first request.
        SnmpAuthError: the printer refused our credentials.
    """
    values = await client.get(target, oids.SYSTEM_SCALARS)
    object_id = values.get(oids.SYS_OBJECT_ID)
    enterprise = (
        object_id[6]
        if isinstance(object_id, tuple) and len(object_id) > 6 and object_id[:6] == oids.ENTERPRISES
        else None
    )
    subtrees = list(oids.REPORT_SUBTREES)
    subtrees += vendors.VENDOR_SUBTREES.get(enterprise, ()) if enterprise is not None else ()

    async def vendor_scalars() -> dict[Oid, SnmpValue]:
        return await client.get(target, vendors.VENDOR_SCALARS)

    names = ["vendor objects", *(format_oid(s) for s in subtrees)]
    results = await asyncio.gather(
        vendor_scalars(),
        *(client.walk(target, subtree) for subtree in subtrees),
        return_exceptions=True,
    )
    unreadable = []
    for name, result in zip(names, results, strict=True):
        if isinstance(result, SnmpTimeoutError):
            logger.debug("%s: %s timed out", target, name)
            unreadable.append(name)
        elif isinstance(result, BaseException):
            raise result
        else:
            values.update(result)
    return values, tuple(unreadable)


async def read_printer(client: SnmpClient, target: SnmpTarget) -> PrinterReport:
    """What `target` reports about itself (see `PrinterReport`)."""
    values, unreadable = await read_values(client, target)
    return build_report(values, unreadable)
