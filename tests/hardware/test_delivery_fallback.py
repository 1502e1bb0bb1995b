"""FallbackTransport: IPPS -> IPP -> RAW as the policy allows, and only on "cannot connect"."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from hardware.errors import PrinterError, PrinterUnreachableError
from hardware.printers.errors import (
    PrinterConnectError,
    PrinterNotReadyError,
    PrinterPinMismatchError,
)
from hardware.printers.fallback import FallbackTransport, PrinterPolicy
from hardware.printers.transport import PrintJob
from hardware.printers.virtual import VirtualPrinter
from hardware.printers.virtual_tls import self_signed_identity
from tests.hardware.test_delivery_raw import RawListener

JOB = PrintJob("release-fb01", "alice", "text/plain")
PIN = self_signed_identity().pin


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connections to it are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.fixture
def ipp_printer() -> Iterator[VirtualPrinter]:
    with VirtualPrinter(processing_s=0.02) as printer:
        yield printer


@pytest.fixture
def tls_printer() -> Iterator[VirtualPrinter]:
    with VirtualPrinter(processing_s=0.02, tls=True) as printer:
        yield printer


@pytest.fixture
def raw_printer() -> Iterator[RawListener]:
    listener = RawListener(speaks_pjl=True)
    yield listener
    listener.close()


def fallback(policy: PrinterPolicy) -> FallbackTransport:
    return FallbackTransport(policy, timeout_s=2.0, poll_interval_s=0.02, pjl_probe_s=0.3)


def test_ipps_is_preferred_when_it_connects(tls_printer, ipp_printer):
    policy = PrinterPolicy(
        "ipps-then-ipp", ipps_uri=tls_printer.uri, pin=tls_printer.pin, ipp_uri=ipp_printer.uri
    )
    transport = fallback(policy)
    transport.deliver(JOB, [b"doc"])
    assert transport.last_uri == tls_printer.uri
    assert len(tls_printer.received) == 1
    assert ipp_printer.operations_seen == []


def test_ipps_that_cannot_connect_falls_back_to_ipp(closed_port, ipp_printer):
    policy = PrinterPolicy(
        "ipps-then-ipp",
        ipps_uri=f"ipps://127.0.0.1:{closed_port}/ipp/print",
        pin=PIN,
        ipp_uri=ipp_printer.uri,
    )
    transport = fallback(policy)
    transport.deliver(JOB, [b"doc"])
    assert transport.last_uri == ipp_printer.uri
    assert ipp_printer.received[0].data == b"doc"


def test_any_falls_back_through_ipp_to_raw(closed_port, raw_printer):
    dead = f"127.0.0.1:{closed_port}"
    policy = PrinterPolicy(
        "any",
        ipps_uri=f"ipps://{dead}/ipp/print",
        pin=PIN,
        ipp_uri=f"ipp://{dead}/ipp/print",
        raw_uri=raw_printer.uri,
    )
    transport = fallback(policy)
    result = transport.deliver(JOB, [b"doc"])
    assert transport.last_uri == raw_printer.uri
    assert result.impressions == 2  # PJL END echo
    assert b"doc" in raw_printer.received


def test_ipps_only_is_never_downgraded(closed_port, ipp_printer, raw_printer):
    policy = PrinterPolicy("ipps-only", ipps_uri=f"ipps://127.0.0.1:{closed_port}/p", pin=PIN)
    assert policy.uris() == [policy.ipps_uri]
    with pytest.raises(PrinterConnectError):
        fallback(policy).deliver(JOB, [b"doc"])
    with pytest.raises(ValueError, match="ipps-only"):
        PrinterPolicy("ipps-only", ipps_uri=policy.ipps_uri, pin=PIN, ipp_uri=ipp_printer.uri)
    with pytest.raises(ValueError, match="ipps-only"):
        PrinterPolicy("ipps-only", raw_uri=raw_printer.uri)
    assert ipp_printer.operations_seen == []
    assert raw_printer.connections == 0


def test_ipps_then_ipp_never_reaches_raw(closed_port, raw_printer):
    with pytest.raises(ValueError, match="any"):
        PrinterPolicy("ipps-then-ipp", ipp_uri="ipp://x/p", raw_uri=raw_printer.uri)
    dead = f"127.0.0.1:{closed_port}"
    policy = PrinterPolicy.for_host(
        "127.0.0.1", mode="ipps-then-ipp", pin=PIN, ipp_port=closed_port
    )
    assert policy.uris() == [f"ipps://{dead}/ipp/print", f"ipp://{dead}/ipp/print"]
    with pytest.raises(PrinterConnectError):
        fallback(policy).deliver(JOB, [b"doc"])
    assert raw_printer.connections == 0


def test_pin_mismatch_never_falls_back(tls_printer, ipp_printer, raw_printer):
    policy = PrinterPolicy(
        "any", ipps_uri=tls_printer.uri, pin=PIN, ipp_uri=ipp_printer.uri, raw_uri=raw_printer.uri
    )
    transport = fallback(policy)
    with pytest.raises(PrinterPinMismatchError):
        transport.deliver(JOB, [b"doc"])
    with pytest.raises(PrinterPinMismatchError):
        transport.check_ready()
    with pytest.raises(PrinterPinMismatchError):
        transport.job_outcome(JOB.job_name)
    assert tls_printer.requests_started == 0
    assert ipp_printer.operations_seen == []
    assert raw_printer.connections == 0


def test_a_tls_failure_is_not_cannot_connect(ipp_printer, raw_printer):
    """ipps:// at a port that speaks plain HTTP: the handshake fails; falling back to plain IPP
    here is exactly what an attacker breaking handshakes would want."""
    tls_at_plain_port = ipp_printer.uri.replace("ipp://", "ipps://", 1)
    policy = PrinterPolicy(
        "any", ipps_uri=tls_at_plain_port, pin=PIN, ipp_uri=ipp_printer.uri, raw_uri=raw_printer.uri
    )
    with pytest.raises(PrinterUnreachableError) as info:
        fallback(policy).deliver(JOB, [b"doc"])
    assert not isinstance(info.value, PrinterConnectError)
    assert ipp_printer.received == []
    assert raw_printer.connections == 0


def test_no_fallback_once_the_document_started_going_out(ipp_printer, raw_printer):
    ipp_printer.set_fault("stop-responding-mid-job")
    policy = PrinterPolicy("any", ipp_uri=ipp_printer.uri, raw_uri=raw_printer.uri)
    transport = FallbackTransport(policy, timeout_s=0.5, poll_interval_s=0.02)
    with pytest.raises(PrinterUnreachableError) as info:
        transport.deliver(JOB, [b"doc"])
    assert not isinstance(info.value, PrinterConnectError)
    assert raw_printer.connections == 0


def test_no_fallback_when_the_printer_answers_not_ready(ipp_printer, raw_printer):
    ipp_printer.set_printer_state_reasons("media-empty-error")
    policy = PrinterPolicy("any", ipp_uri=ipp_printer.uri, raw_uri=raw_printer.uri)
    with pytest.raises(PrinterNotReadyError, match="Out of paper"):
        fallback(policy).deliver(JOB, [b"doc"])
    with pytest.raises(PrinterNotReadyError, match="Out of paper"):
        fallback(policy).check_ready()
    assert raw_printer.connections == 0


def test_check_ready_and_job_outcome_skip_ways_that_cannot_connect(closed_port, ipp_printer):
    policy = PrinterPolicy(
        "ipps-then-ipp",
        ipps_uri=f"ipps://127.0.0.1:{closed_port}/ipp/print",
        pin=PIN,
        ipp_uri=ipp_printer.uri,
    )
    transport = fallback(policy)
    transport.check_ready()
    assert transport.job_outcome(JOB.job_name) == "absent"
    transport.deliver(JOB, [b"doc"])
    assert transport.job_outcome(JOB.job_name) == "completed"
    transport.close()


def test_raw_only_printer_cannot_be_reconciled(raw_printer):
    transport = fallback(PrinterPolicy("any", raw_uri=raw_printer.uri))
    transport.check_ready()  # no SNMP: nothing to ask, counts as ready
    with pytest.raises(PrinterError, match="cannot report its jobs"):
        transport.job_outcome(JOB.job_name)


def test_policy_validation():
    with pytest.raises(ValueError, match="pin"):
        PrinterPolicy("ipps-then-ipp", ipps_uri="ipps://p/ipp/print")
    with pytest.raises(ValueError, match="mode"):
        PrinterPolicy("raw-first", raw_uri="socket://p")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no way"):
        PrinterPolicy("any")
    with pytest.raises(ValueError, match="base64"):
        PrinterPolicy("ipps-only", ipps_uri="ipps://p/ipp/print", pin="sha256:nope")
    policy = PrinterPolicy.for_host("printer.local", mode="any", pin=PIN)
    assert policy.uris() == [
        "ipps://printer.local:631/ipp/print",
        "ipp://printer.local:631/ipp/print",
        "socket://printer.local:9100",
    ]
