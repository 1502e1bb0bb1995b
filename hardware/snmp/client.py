"""An asyncio SNMP client on pysnmp 7 (`pysnmp.hlapi.v3arch.asyncio`): GET and subtree walks.

Invariants (see shared/SNMP-NOTES.md for why):

- one `SnmpEngine` per client, created on first use inside the running event loop and bound to
  it: using the client from another loop raises RuntimeError instead of hanging;
- numeric OIDs with `lookupMib=False` (no MIB files are loaded);
- at most `max_in_flight` requests outstanding (a sweep of many hosts must not flood 2 cores);
- every request has pysnmp's own timeout and retries, and an outer asyncio deadline as a guard;
- values leave this module as plain `int`, `bytes` or OID tuples; pysnmp types stay inside.

Credentials are passed per request and never logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pyasn1.type import univ  # type: ignore[import-untyped]
from pysnmp.error import PySnmpError  # type: ignore[import-untyped]
from pysnmp.hlapi.v3arch.asyncio import (  # type: ignore[import-untyped]
    USM_AUTH_HMAC96_MD5,
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC128_SHA224,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC256_SHA384,
    USM_AUTH_HMAC384_SHA512,
    USM_AUTH_NONE,
    USM_PRIV_CBC56_DES,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB192_AES,
    USM_PRIV_CFB256_AES,
    USM_PRIV_NONE,
    CommunityData,
    ContextData,
    EndOfMibView,
    NoSuchInstance,
    NoSuchObject,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
    next_cmd,
)
from pysnmp.proto import errind  # type: ignore[import-untyped]
from pysnmp.smi import builder, view  # type: ignore[import-untyped]
from pysnmp.smi import mibs as pysnmp_mibs

from hardware.snmp.credentials import (
    AuthProtocol,
    CommunityCredentials,
    Credentials,
    PrivProtocol,
    SnmpVersion,
    UsmCredentials,
)
from hardware.snmp.errors import (
    SnmpAuthError,
    SnmpError,
    SnmpNoSuchObjectError,
    SnmpProtocolError,
    SnmpTimeoutError,
)
from hardware.snmp.oids import Oid, format_oid

logger = logging.getLogger(__name__)

SnmpValue = int | bytes | Oid

_AUTH = {
    AuthProtocol.NONE: USM_AUTH_NONE,
    AuthProtocol.MD5: USM_AUTH_HMAC96_MD5,
    AuthProtocol.SHA: USM_AUTH_HMAC96_SHA,
    AuthProtocol.SHA224: USM_AUTH_HMAC128_SHA224,
    AuthProtocol.SHA256: USM_AUTH_HMAC192_SHA256,
    AuthProtocol.SHA384: USM_AUTH_HMAC256_SHA384,
    AuthProtocol.SHA512: USM_AUTH_HMAC384_SHA512,
}
_PRIV = {
    PrivProtocol.NONE: USM_PRIV_NONE,
    PrivProtocol.DES: USM_PRIV_CBC56_DES,
    PrivProtocol.AES: USM_PRIV_CFB128_AES,
    PrivProtocol.AES192: USM_PRIV_CFB192_AES,
    PrivProtocol.AES256: USM_PRIV_CFB256_AES,
}
# Engine-level indications that mean "your SNMPv3 credentials are wrong".
_AUTH_INDICATIONS = (
    errind.UnknownUserName,
    errind.WrongDigest,
    errind.UnknownSecurityName,
    errind.UnsupportedSecurityLevel,
    errind.AuthenticationError,
    errind.AuthenticationFailure,
    errind.DecryptionError,
    errind.UnknownCommunityName,
)
_NO_SUCH_NAME = 2  # SNMPv1 error-status noSuchName (RFC 1157 §4.1.1)
_AUTHORIZATION_ERROR = 16  # RFC 3416 §3
_MAX_WALK_ROWS = 10_000  # a guard against agents that never end a table


@dataclass(frozen=True)
class SnmpTarget:
    """One agent: host (an IP address or name), UDP port, and the credentials to use."""

    host: str
    credentials: Credentials
    port: int = 161

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class SnmpClient:
    """Async SNMP client owning one engine on the running loop; use `async with` or `close()`.

    Args:
        timeout_s: pysnmp's per-try timeout (its timer ticks at about 0.5 s).
        retries: resends after a timeout.
        max_in_flight: requests outstanding at once across all targets.
        max_repetitions: GETBULK max-repetitions for walks on v2c/v3.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 2.0,
        retries: int = 1,
        max_in_flight: int = 32,
        max_repetitions: int = 16,
    ) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_repetitions = max_repetitions
        self._semaphore = asyncio.Semaphore(max_in_flight)
        self._engine: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transports: dict[tuple[str, int], Any] = {}

    async def __aenter__(self) -> SnmpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the engine's sockets; call it while the loop still runs (`async with` does)."""
        if self._engine is not None:
            try:
                self._engine.close_dispatcher()
            except RuntimeError:
                # The loop was closed first: its transports went with it, nothing left to close.
                logger.debug("SNMP engine closed after its event loop")
        self._engine = None
        self._transports.clear()

    async def get(self, target: SnmpTarget, oids: Sequence[Oid]) -> dict[Oid, SnmpValue]:
        """GET `oids`; objects the agent lacks are left out of the result.

        Raises:
            SnmpTimeoutError, SnmpAuthError, SnmpProtocolError.
        """
        pending = list(oids)
        result: dict[Oid, SnmpValue] = {}
        v1 = target.credentials.version is SnmpVersion.V1
        while pending:
            status, index, varbinds = await self._request(target, "get", pending)
            if status == _NO_SUCH_NAME and v1 and 0 < index <= len(pending):
                # SNMPv1 fails the whole PDU for one missing object: drop it and ask again.
                del pending[index - 1]
                continue
            _raise_for_status(status, index, pending)
            for oid, value in varbinds:
                if (plain := _plain(value)) is not None:
                    result[oid] = plain
            break
        return result

    async def get_one(self, target: SnmpTarget, oid: Oid) -> SnmpValue:
        """GET one object; raises SnmpNoSuchObjectError when the agent lacks it."""
        values = await self.get(target, [oid])
        if oid not in values:
            raise SnmpNoSuchObjectError(format_oid(oid))
        return values[oid]

    async def walk(self, target: SnmpTarget, subtree: Oid) -> dict[Oid, SnmpValue]:
        """Every object under `subtree` (GETBULK on v2c/v3, GETNEXT on v1), in OID order."""
        result: dict[Oid, SnmpValue] = {}
        current = subtree
        v1 = target.credentials.version is SnmpVersion.V1
        while len(result) < _MAX_WALK_ROWS:
            kind = "next" if v1 else "bulk"
            status, index, varbinds = await self._request(target, kind, [current])
            if status == _NO_SUCH_NAME and v1:
                break  # SNMPv1 end of MIB view
            _raise_for_status(status, index, [current])
            advanced = False
            for oid, value in varbinds:
                if oid[: len(subtree)] != subtree or oid <= current:
                    return result  # left the subtree, or the agent went backwards
                plain = _plain(value)
                if plain is None and _is_end(value):
                    return result
                if plain is not None:
                    result[oid] = plain
                current = oid
                advanced = True
            if not advanced:
                break
        return result

    async def _request(
        self, target: SnmpTarget, kind: str, oids: Sequence[Oid]
    ) -> tuple[int, int, list[tuple[Oid, Any]]]:
        """One request; returns (error-status, error-index, varbinds) or raises an SnmpError."""
        engine = self._engine_for_loop()
        varbinds = [ObjectType(ObjectIdentity(format_oid(oid))) for oid in oids]
        auth, context = _auth_data(target.credentials)
        # pysnmp retries internally; the outer deadline only guards against a hung engine.
        deadline_s = self.timeout_s * (self.retries + 1) + 2.0
        async with self._semaphore:
            try:
                transport = await self._transport(target)
                async with asyncio.timeout(deadline_s):
                    if kind == "get":
                        response = await get_cmd(
                            engine, auth, transport, context, *varbinds, lookupMib=False
                        )
                    elif kind == "next":
                        response = await next_cmd(
                            engine, auth, transport, context, *varbinds, lookupMib=False
                        )
                    else:
                        response = await bulk_cmd(
                            engine,
                            auth,
                            transport,
                            context,
                            0,
                            self.max_repetitions,
                            *varbinds,
                            lookupMib=False,
                        )
            except TimeoutError as exc:
                message = f"{target}: no SNMP answer within {deadline_s:.1f} s"
                raise SnmpTimeoutError(message) from exc
            except PySnmpError as exc:
                raise SnmpProtocolError(f"{target}: {exc}") from exc
        indication, status, index, rows = response
        if indication:
            raise _error_for_indication(target, indication)
        return (
            int(status),
            int(index),
            [(tuple(int(arc) for arc in name), value) for name, value in rows],
        )

    def _engine_for_loop(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise RuntimeError("an SnmpClient belongs to the event loop it first ran on")
        if self._engine is None:
            self._engine = SnmpEngine()
            self._engine.cache["mibViewController"] = _mib_view_without_compiler()
            self._loop = loop
        return self._engine

    async def _transport(self, target: SnmpTarget) -> Any:
        key = (target.host, target.port)
        transport = self._transports.get(key)
        if transport is None:
            transport = await UdpTransportTarget.create(
                key, timeout=self.timeout_s, retries=self.retries
            )
            self._transports[key] = transport
        return transport


class _NoMibCompiler:
    """Stands in for pysmi's MIB compiler: numeric OIDs never need a MIB compiled.

    When pysmi is installed (snmpsim brings it), pysnmp builds its MIB parser on an engine's
    first request, about a second of CPU; an engine that already has a compiler skips that.
    Should anything still ask for a MIB, it is reported missing instead of compiled.
    """

    def compile(self, *names: str, **options: object) -> dict[str, str]:
        return dict.fromkeys(names, "missing")


def _mib_view_without_compiler() -> Any:
    mib_builder = builder.MibBuilder()
    # set_mib_compiler also adds its directory as a MIB source: give it pysnmp's own MIBs,
    # which are a source already.
    mib_builder.set_mib_compiler(_NoMibCompiler(), os.path.dirname(pysnmp_mibs.__file__))
    return view.MibViewController(mib_builder)


def _auth_data(credentials: Credentials) -> tuple[Any, Any]:
    if isinstance(credentials, CommunityCredentials):
        model = 0 if credentials.version is SnmpVersion.V1 else 1
        return CommunityData(credentials.community, mpModel=model), ContextData()
    assert isinstance(credentials, UsmCredentials)
    user = UsmUserData(
        credentials.user,
        authKey=credentials.auth_key or None,
        privKey=credentials.priv_key or None,
        authProtocol=_AUTH[credentials.auth_protocol] if credentials.auth_key else USM_AUTH_NONE,
        privProtocol=_PRIV[credentials.priv_protocol] if credentials.priv_key else USM_PRIV_NONE,
    )
    return user, ContextData(contextName=credentials.context_name)


def _error_for_indication(target: SnmpTarget, indication: Any) -> SnmpError:
    if isinstance(indication, errind.RequestTimedOut):
        # v1/v2c agents stay silent on a wrong community, so say so.
        hint = "" if target.credentials.version is SnmpVersion.V3 else " (or wrong community)"
        return SnmpTimeoutError(f"{target}: no SNMP answer{hint}")
    if isinstance(indication, _AUTH_INDICATIONS):
        return SnmpAuthError(f"{target}: SNMPv3 authentication failed: {indication}")
    return SnmpProtocolError(f"{target}: {indication}")


def _raise_for_status(status: int, index: int, oids: Sequence[Oid]) -> None:
    if status == 0:
        return
    where = format_oid(oids[index - 1]) if 0 < index <= len(oids) else "?"
    if status == _AUTHORIZATION_ERROR:
        raise SnmpAuthError(f"agent refused access to {where}")
    if status == _NO_SUCH_NAME:
        raise SnmpNoSuchObjectError(where)
    raise SnmpProtocolError(f"agent answered error-status {status} at {where}")


def _is_end(value: Any) -> bool:
    """endOfMibView (RFC 3416 §3): the agent has nothing after this OID."""
    return isinstance(value, EndOfMibView)


def _plain(value: Any) -> SnmpValue | None:
    """A pyasn1 value as int, bytes or an OID tuple; None for Null and the v2 exceptions."""
    # pyasn1's Null (and so the v2 exception values) derive from OctetString: test them first.
    if isinstance(value, (univ.Null, NoSuchObject, NoSuchInstance, EndOfMibView)):
        return None
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.OctetString):
        return bytes(value)
    if isinstance(value, univ.ObjectIdentifier):
        return tuple(int(arc) for arc in value)
    return None  # Null, noSuchObject, noSuchInstance, endOfMibView
