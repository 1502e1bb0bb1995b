"""`SnmpSession`: a synchronous facade over `SnmpClient` for the CLI and other blocking code.

It runs one private event loop in a daemon thread for its whole life, so the one `SnmpEngine`
stays on the loop it was made on (an engine reused across `asyncio.run()` calls hangs, see
SNMP-NOTES.md). Every call waits for its result with a deadline; `close()` stops the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import TypeVar

from hardware.snmp.client import SnmpClient, SnmpTarget, SnmpValue
from hardware.snmp.errors import SnmpTimeoutError
from hardware.snmp.oids import Oid
from hardware.snmp.reader import read_printer
from hardware.snmp.report import PrinterReport

T = TypeVar("T")


class SnmpSession:
    """Blocking SNMP calls on a private loop; use as a context manager or call `close()`.

    Args:
        timeout_s, retries, max_in_flight: passed to `SnmpClient`.
        call_timeout_s: the longest one call (a whole report) may take before SnmpTimeoutError.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 2.0,
        retries: int = 1,
        max_in_flight: int = 16,
        call_timeout_s: float = 60.0,
    ) -> None:
        self.call_timeout_s = call_timeout_s
        self._loop = asyncio.new_event_loop()
        self._client = SnmpClient(timeout_s=timeout_s, retries=retries, max_in_flight=max_in_flight)
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="snmp-session", daemon=True
        )
        self._thread.start()
        self._closed = False

    def __enter__(self) -> SnmpSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def run(self, work: Callable[[SnmpClient], Awaitable[T]]) -> T:
        """Run `work(client)` on the session's loop and wait for its result."""
        if self._closed:
            raise RuntimeError("the SnmpSession is closed")

        async def call() -> T:
            return await work(self._client)

        future = asyncio.run_coroutine_threadsafe(call(), self._loop)
        try:
            return future.result(self.call_timeout_s)
        except TimeoutError as exc:
            future.cancel()
            if isinstance(exc, SnmpTimeoutError):
                raise
            raise SnmpTimeoutError(f"no result within {self.call_timeout_s} s") from exc

    def get(self, target: SnmpTarget, oids: Sequence[Oid]) -> dict[Oid, SnmpValue]:
        """Blocking `SnmpClient.get`."""
        return self.run(lambda client: client.get(target, oids))

    def walk(self, target: SnmpTarget, subtree: Oid) -> dict[Oid, SnmpValue]:
        """Blocking `SnmpClient.walk`."""
        return self.run(lambda client: client.walk(target, subtree))

    def read_printer(self, target: SnmpTarget) -> PrinterReport:
        """Blocking `hardware.snmp.reader.read_printer`."""
        return self.run(lambda client: read_printer(client, target))

    def close(self) -> None:
        """Close the engine, stop the loop and its thread. Safe to call twice."""
        if self._closed:
            return
        self._closed = True

        async def shutdown() -> None:
            self._client.close()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5.0)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5.0)
            if not self._thread.is_alive():
                self._loop.close()
