"""SNMP credentials as typed, frozen values whose `repr` never shows a secret.

v1 and v2c carry a community string (RFC 1157, RFC 3416); v3 carries a USM user with keys
(RFC 3414 User-based Security Model, RFC 3826 AES). The community is a secret too: on most
printers it is the only thing between anyone on the LAN and the printer's settings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class SnmpVersion(enum.Enum):
    """The protocol version; the value is what the CLI and config files say."""

    V1 = "1"
    V2C = "2c"
    V3 = "3"


class AuthProtocol(enum.Enum):
    """USM authentication protocols (RFC 3414 §6-7, RFC 7860 for SHA-2)."""

    NONE = "NONE"
    MD5 = "MD5"
    SHA = "SHA"
    SHA224 = "SHA224"
    SHA256 = "SHA256"
    SHA384 = "SHA384"
    SHA512 = "SHA512"


class PrivProtocol(enum.Enum):
    """USM privacy protocols (RFC 3414 §8 DES, RFC 3826 AES-128; AES-192/256 as net-snmp does)."""

    NONE = "NONE"
    DES = "DES"
    AES = "AES"
    AES192 = "AES192"
    AES256 = "AES256"


def _hidden(secret: str) -> str:
    return "***" if secret else "''"


@dataclass(frozen=True)
class CommunityCredentials:
    """SNMPv1 or v2c with a community string."""

    community: str = field(repr=False)
    version: SnmpVersion = SnmpVersion.V2C

    def __post_init__(self) -> None:
        if self.version is SnmpVersion.V3:
            raise ValueError("a community is for SNMPv1 or v2c; use UsmCredentials for v3")
        if not self.community:
            raise ValueError("the community string is empty")

    def __repr__(self) -> str:
        return f"CommunityCredentials(version={self.version.value!r}, community=***)"


@dataclass(frozen=True)
class UsmCredentials:
    """An SNMPv3 USM user: noAuthNoPriv, authNoPriv or authPriv depending on the keys given."""

    user: str
    auth_key: str = field(default="", repr=False)
    priv_key: str = field(default="", repr=False)
    auth_protocol: AuthProtocol = AuthProtocol.SHA
    priv_protocol: PrivProtocol = PrivProtocol.AES
    context_name: str = ""

    def __post_init__(self) -> None:
        if not self.user:
            raise ValueError("the SNMPv3 user name is empty")
        # RFC 3414 §11.2: pass phrases shorter than 8 characters are not allowed.
        for name, key in (("auth", self.auth_key), ("priv", self.priv_key)):
            if key and len(key) < 8:
                raise ValueError(f"the SNMPv3 {name} key must have at least 8 characters")
        if self.priv_key and not self.auth_key:
            raise ValueError("SNMPv3 privacy needs authentication too (authPriv)")

    @property
    def version(self) -> SnmpVersion:
        """Always SNMPv3."""
        return SnmpVersion.V3

    @property
    def security_level(self) -> str:
        """`noAuthNoPriv`, `authNoPriv` or `authPriv` (RFC 3411 §3.4.3)."""
        if self.priv_key:
            return "authPriv"
        return "authNoPriv" if self.auth_key else "noAuthNoPriv"

    def __repr__(self) -> str:
        return (
            f"UsmCredentials(user={self.user!r}, level={self.security_level}, "
            f"auth={self.auth_protocol.value}:{_hidden(self.auth_key)}, "
            f"priv={self.priv_protocol.value}:{_hidden(self.priv_key)}, "
            f"context_name={self.context_name!r})"
        )


Credentials = CommunityCredentials | UsmCredentials
