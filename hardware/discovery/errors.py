"""The errors of `hardware.discovery`.

DiscoveryError (a HardwareError)
├── RangeError                 (also ValueError) a range that cannot be parsed or is too big
└── NetworkNotAllowedError     (also PermissionError) a non-loopback range without allow_network
"""

from __future__ import annotations

from hardware.errors import HardwareError


class DiscoveryError(HardwareError):
    """Root of the errors raised while discovering printers."""


class RangeError(DiscoveryError, ValueError):
    """An address range that cannot be parsed, is not IPv4, or holds too many hosts."""


class NetworkNotAllowedError(DiscoveryError, PermissionError):
    """A scan reached beyond 127.0.0.0/8 without `allow_network=True`."""
