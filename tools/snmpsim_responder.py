"""`python -m tools.snmpsim_responder ARGS`: snmpsim's command responder, with its data-file
selection by listening endpoint working again on pysnmp 7.

snmpsim 1.2 overrides pysnmp's `handleMgmtOperation` to pick a data file by community *and*
transport (`probe_hash_context`), but pysnmp 7 calls `handle_management_operation` (with one
argument fewer) and renamed the calls that function makes, so the override never runs and every
endpoint answers from the community's one file. This launcher installs the same probing under the
new names; nothing else changes. `tools.snmpsim` uses it only when a recording is served on one
address of several (the /24 sweep bench).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from hashlib import md5
from typing import Any

from pysnmp import error  # type: ignore[import-untyped]
from snmpsim import datafile  # type: ignore[import-untyped]
from snmpsim.commands import responder  # type: ignore[import-untyped]

_RESPONDERS = (
    "GetCommandResponder",
    "SetCommandResponder",
    "NextCommandResponder",
    "BulkCommandResponder",
)


def probe(self: Any, snmp_engine: Any, default: Any) -> Any:
    """snmpsim's `probe_hash_context` in pysnmp 7 names: the most specific data file for the
    request's community and listening endpoint (`<md5(community)>/<transport ID>`), else the
    community's own."""
    ctx = snmp_engine.observer.get_execution_context("rfc3412.receiveMessage:request")
    community_context = ctx["contextName"].prettyPrint()
    for candidate in datafile.probe_context(
        ctx["transportDomain"], ctx["transportAddress"], None, community_context
    ):
        # snmpsim registers names longer than 32 octets under their MD5 (SNMP's limit).
        name = (
            md5(candidate, usedforsecurity=False).hexdigest() if len(candidate) > 32 else candidate
        )
        try:
            self.snmpContext.get_mib_instrum(name)
        except error.PySnmpError:
            continue
        return name
    return default


def _probing(base: Callable[..., Any]) -> Callable[..., Any]:
    def handle(self: Any, snmp_engine: Any, state_reference: Any, context: Any, pdu: Any) -> None:
        base(self, snmp_engine, state_reference, probe(self, snmp_engine, context), pdu)

    return handle


def main() -> int:
    """Patch the four responders, then run snmpsim's own main."""
    for name in _RESPONDERS:
        cls = getattr(responder, name)
        pysnmp_class = cls.__mro__[1]
        cls.handle_management_operation = _probing(pysnmp_class.handle_management_operation)
    return int(responder.main() or 0)


if __name__ == "__main__":
    sys.exit(main())
