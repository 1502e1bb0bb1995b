"""The errors of `hardware.snmp`, all under `SnmpError` (itself a `HardwareError`).

SnmpError
├── SnmpTimeoutError      (also TimeoutError) no answer in time: host down, wrong port, or a
│                         v1/v2c community the agent ignores (agents stay silent on those)
├── SnmpAuthError         (also PermissionError) SNMPv3 user unknown, wrong key, or wrong level
├── SnmpNoSuchObjectError (also LookupError) the agent has no such object or instance
└── SnmpProtocolError     any other error-status or engine error from pysnmp

Each message is one line that an admin can act on; secrets never appear in it.
"""

from __future__ import annotations

from hardware.errors import HardwareError


class SnmpError(HardwareError):
    """Root of every error raised by `hardware.snmp`."""


class SnmpTimeoutError(SnmpError, TimeoutError):
    """The agent did not answer within the timeout and retries."""


class SnmpAuthError(SnmpError, PermissionError):
    """The agent rejected our SNMPv3 credentials (unknown user, wrong key or security level)."""


class SnmpNoSuchObjectError(SnmpError, LookupError):
    """The agent has no value at the requested OID."""

    def __init__(self, oid: str) -> None:
        super().__init__(f"no such object: {oid}")
        self.oid = oid


class SnmpProtocolError(SnmpError):
    """Any other error the agent or the engine reported."""
