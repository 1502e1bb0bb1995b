"""One printer reached several ways: IPPS, then IPP, then RAW 9100, as its pairing allows.

Rules (DESIGN.md "Printers"; each has a test in tests/hardware/test_delivery_fallback.py):

1. The order is fixed: ipps:// -> ipp:// -> socket://, each only if the policy has it and its
   mode allows it: "ipps-only" (never downgraded), "ipps-then-ipp", "any" (RAW too).
2. The next way is tried only after `PrinterConnectError`: no TCP connection could be made, so
   nothing was sent. Never after a byte of the document went out, never after the printer
   answered (busy, not ready, rejected, job failed), never after a TLS failure (that is what a
   downgrade attack looks like), and never after `PrinterPinMismatchError`: a printer whose key
   changed gets no job by any way until an admin re-pairs it.
3. Each way is built once and kept (connections are reused); `close()` closes them all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from hardware.errors import PrinterError, PrinterUnreachableError
from hardware.printers.errors import PrinterConnectError, PrinterNotReadyError
from hardware.printers.ipp import IppPrinterTransport, JobOutcome
from hardware.printers.pinning import check_pin
from hardware.printers.raw import PageCounter, PageCounterError, RawPrinterTransport
from hardware.printers.transport import DeliveryResult, PrintJob

if TYPE_CHECKING:
    from hardware.snmp.client import SnmpTarget

logger = logging.getLogger(__name__)

FallbackMode = Literal["ipps-only", "ipps-then-ipp", "any"]
MODES: tuple[str, ...] = get_args(FallbackMode)


@dataclass(frozen=True, slots=True)
class PrinterPolicy:
    """How a paired printer may be reached, recorded at pairing.

    Attributes:
        mode: "ipps-only", "ipps-then-ipp" or "any" (see the module docstring).
        ipps_uri: `ipps://host[:port]/path`, with `pin` (base64 SHA-256 of the key's SPKI).
        ipp_uri: `ipp://host[:port]/path`, used by "ipps-then-ipp" and "any".
        raw_uri: `socket://host[:port]`, used by "any" only.
        raw_pjl: wrap RAW jobs in PJL (False for a printer that prints PJL as text).
        snmp: where to read the page counter that confirms RAW jobs without PJL echo, and
            the printer's state before a RAW release.
    """

    mode: FallbackMode
    ipps_uri: str | None = None
    pin: str | None = None
    ipp_uri: str | None = None
    raw_uri: str | None = None
    raw_pjl: bool = True
    snmp: SnmpTarget | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"printer mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.ipps_uri is not None and self.pin is None:
            raise ValueError("an ipps:// printer needs the pin recorded at pairing")
        if self.pin is not None:
            check_pin(self.pin)
        if self.mode == "ipps-only" and (self.ipp_uri or self.raw_uri or not self.ipps_uri):
            raise ValueError("an ipps-only printer has an ipps:// URI and pin, and nothing else")
        if self.mode == "ipps-then-ipp" and self.raw_uri:
            raise ValueError("RAW 9100 needs mode 'any'")
        if not self.uris():
            raise ValueError("the printer policy names no way to reach the printer")

    @classmethod
    def for_host(
        cls,
        host: str,
        *,
        mode: FallbackMode,
        pin: str | None = None,
        ipp_port: int = 631,
        raw_port: int = 9100,
        path: str = "/ipp/print",
        snmp: SnmpTarget | None = None,
    ) -> PrinterPolicy:
        """The usual endpoints of one host: ipps:// (when pinned) and ipp:// on `ipp_port`,
        socket:// on `raw_port`, as far as `mode` allows."""
        ipps = f"ipps://{host}:{ipp_port}{path}" if pin is not None else None
        ipp = f"ipp://{host}:{ipp_port}{path}" if mode != "ipps-only" else None
        raw = f"socket://{host}:{raw_port}" if mode == "any" else None
        return cls(mode, ipps_uri=ipps, pin=pin, ipp_uri=ipp, raw_uri=raw, snmp=snmp)

    def uris(self) -> list[str]:
        """The ways to try, in order."""
        allowed = {
            "ipps-only": (self.ipps_uri,),
            "ipps-then-ipp": (self.ipps_uri, self.ipp_uri),
            "any": (self.ipps_uri, self.ipp_uri, self.raw_uri),
        }[self.mode]
        return [uri for uri in allowed if uri]


class FallbackTransport:
    """A `PrinterTransport` over the ways a `PrinterPolicy` allows, in order (module docstring).

    Also offers what the station needs around a delivery: `check_ready()` before releasing and
    `job_outcome(release_id)` after a restart. `last_uri` is the way the last delivery took.
    """

    def __init__(
        self,
        policy: PrinterPolicy,
        *,
        timeout_s: float = 30.0,
        poll_interval_s: float = 1.0,
        busy_backoff_s: float = 0.5,
        job_timeout_s: float = 600.0,
        pjl_probe_s: float = 3.0,
        counter_timeout_s: float = 60.0,
        counter_poll_s: float = 1.0,
        page_counter: PageCounter | None = None,
    ) -> None:
        """Nothing is connected until used.

        Args:
            policy: the printer's ways and mode.
            timeout_s: connect and I/O timeout of every way.
            poll_interval_s, busy_backoff_s: IPP timings (see `IppPrinterTransport`).
            job_timeout_s: how long any way waits for the printer to finish a job.
            pjl_probe_s, counter_timeout_s, counter_poll_s: RAW timings (see
                `RawPrinterTransport`).
            page_counter: overrides the SNMP counter built from `policy.snmp` (tests).
        """
        self.policy = policy
        self.uri = policy.uris()[0]
        self.last_uri: str | None = None
        self._timeout_s = timeout_s
        self._ipp_timings = (poll_interval_s, busy_backoff_s, job_timeout_s)
        self._raw_timings = (pjl_probe_s, counter_timeout_s, counter_poll_s)
        self._page_counter = page_counter
        self._transports: dict[str, IppPrinterTransport | RawPrinterTransport] = {}

    def deliver(
        self,
        job: PrintJob,
        document: Iterable[bytes],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> DeliveryResult:
        """Deliver by the first way that connects (see `PrinterTransport.deliver`).

        Raises:
            PrinterConnectError: no way could connect; nothing was sent.
            PrinterPinMismatchError: the ipps:// key changed; nothing was sent by any way.
            PrinterError: any other failure of the way that connected, unchanged.
        """
        last_error: PrinterConnectError | None = None
        for uri in self.policy.uris():
            started = False

            def progress(sent: int) -> None:
                nonlocal started
                started = True
                if on_progress is not None:
                    on_progress(sent)

            try:
                result = self._transport(uri).deliver(job, document, on_progress=progress)
            except PrinterConnectError as exc:
                if started:  # cannot happen by the transports' rules; never resend regardless
                    raise PrinterUnreachableError(exc.reason, detail=exc.detail) from exc
                logger.warning("printer %s cannot be reached; trying the next way", uri)
                last_error = exc
                continue
            self.last_uri = uri
            return result
        assert last_error is not None  # uris() is never empty
        raise last_error

    def check_ready(self) -> None:
        """Raise `PrinterNotReadyError` with words if the printer cannot print now.

        Asks the first way that connects: IPP printer state, or for RAW the SNMP error state
        (RAW without SNMP cannot tell, and counts as ready).

        Raises:
            PrinterNotReadyError: the printer reports a condition ("Out of paper in tray 2").
            PrinterConnectError: no way could connect.
            PrinterPinMismatchError: the ipps:// key changed.
        """
        last_error: PrinterConnectError | None = None
        for uri in self.policy.uris():
            transport = self._transport(uri)
            if isinstance(transport, IppPrinterTransport):
                try:
                    transport.check_ready()
                except PrinterConnectError as exc:
                    last_error = exc
                    continue
                return
            counter = self._counter()
            problem = getattr(counter, "problem", None)
            if problem is None:
                return
            try:
                words = problem()
            except PageCounterError as exc:
                raise PrinterConnectError("Printer not reachable", detail=str(exc)) from exc
            if words is not None:
                raise PrinterNotReadyError(words, detail=f"SNMP for {uri}")
            return
        assert last_error is not None
        raise last_error

    def job_outcome(self, job_name: str) -> JobOutcome:
        """What became of the job named `job_name` (see `IppPrinterTransport.job_outcome`).

        Asked over the first IPP way that connects. RAW has no job list: when no IPP way is
        allowed this raises `PrinterError`, because the station cannot prove the job absent and
        must not resend blindly.

        Raises:
            PrinterConnectError: no IPP way could connect.
            PrinterPinMismatchError: the ipps:// key changed.
            PrinterError: the printer is RAW-only.
        """
        last_error: PrinterConnectError | None = None
        for uri in self.policy.uris():
            transport = self._transport(uri)
            if not isinstance(transport, IppPrinterTransport):
                continue
            try:
                return transport.job_outcome(job_name)
            except PrinterConnectError as exc:
                last_error = exc
        if last_error is not None:
            raise last_error
        raise PrinterError("Printer cannot report its jobs", detail="RAW 9100 has no job list")

    def close(self) -> None:
        """Close every way opened."""
        for transport in self._transports.values():
            transport.close()
        if self._page_counter is not None:
            self._page_counter.close()
        self._transports.clear()

    def _transport(self, uri: str) -> IppPrinterTransport | RawPrinterTransport:
        transport = self._transports.get(uri)
        if transport is None:
            if uri.lower().startswith("socket:"):
                probe_s, counter_timeout_s, counter_poll_s = self._raw_timings
                transport = RawPrinterTransport(
                    uri,
                    timeout_s=self._timeout_s,
                    pjl=self.policy.raw_pjl,
                    pjl_probe_s=probe_s,
                    job_timeout_s=self._ipp_timings[2],
                    page_counter=self._counter(),
                    counter_timeout_s=counter_timeout_s,
                    counter_poll_s=counter_poll_s,
                )
            else:
                poll_interval_s, busy_backoff_s, job_timeout_s = self._ipp_timings
                transport = IppPrinterTransport(
                    uri,
                    pin=self.policy.pin if uri == self.policy.ipps_uri else None,
                    timeout_s=self._timeout_s,
                    poll_interval_s=poll_interval_s,
                    busy_backoff_s=busy_backoff_s,
                    job_timeout_s=job_timeout_s,
                )
            self._transports[uri] = transport
        return transport

    def _counter(self) -> PageCounter | None:
        if self._page_counter is None and self.policy.snmp is not None:
            # pysnmp is imported only for printers that need it: it slows a station's start.
            from hardware.printers.pagecount import SnmpPageCounter  # noqa: PLC0415

            self._page_counter = SnmpPageCounter(self.policy.snmp, timeout_s=2.0)
        return self._page_counter
