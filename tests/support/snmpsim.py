"""The snmpsim launcher lives in `tools.snmpsim` (the /24 sweep bench starts it too)."""

from tools.procs import free_udp_port
from tools.snmpsim import (
    READY_COMMUNITY,
    SHARED_SNMPREC,
    V3_AUTH_KEY,
    V3_PRIV_KEY,
    V3_USER,
    SnmpSimError,
    SnmpSimulator,
    fixed_recording,
    parse_snmprec,
    shared_recordings,
    snmp_v2c_get,
)

__all__ = [
    "READY_COMMUNITY",
    "SHARED_SNMPREC",
    "V3_AUTH_KEY",
    "V3_PRIV_KEY",
    "V3_USER",
    "SnmpSimError",
    "SnmpSimulator",
    "fixed_recording",
    "free_udp_port",
    "parse_snmprec",
    "shared_recordings",
    "snmp_v2c_get",
]
