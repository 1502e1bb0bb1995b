"""`pullprint bench-heartbeat`: what a station's keep-alive and device data cost on the wire.

The cloud runs under uvicorn with TLS (a throw-away self-signed certificate) on 127.0.0.1; a
paired station's `StationLink` talks to it through a counting TCP proxy, so the figures are the
TCP payload bytes as they would cross the network: TLS records, handshakes and HTTP included.
IP and TCP headers are not visible to a proxy; they are estimated as 52 bytes (IPv4 + TCP with
timestamps) per data segment and one bare ACK each, and shown separately.

Measured: a heartbeat answered `304` on a kept-alive connection (the steady state), one carrying
a changed health report, one bringing a new config, one on a fresh connection (TCP + a full TLS
1.3 handshake: what a load balancer that closed the idle connection costs), and the device-data
uploads (status with supplies, alerts, meters) built from a shared printer recording. Then the
monthly keep-alive total per heartbeat interval against DESIGN.md's budget (1 MB a month), and
device data bytes a day for the default schedule. Last, the opt-in long-poll (`[cloud] long_poll`,
station.long_poll): an idle `GET /station/wait` answered empty on the same kind of connection;
asked with `timeout_s=0` so the bench does not wait 50 s a poll (the bytes differ by the one digit
of the query), and costed per month at one poll every 50 s.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUDGET_BYTES_PER_MONTH = 1_000_000  # DESIGN.md: station keep-alive per month <= 1 MB
MONTH_S = 30 * 86400
HEADER_BYTES = 52  # IPv4 (20) + TCP with timestamps (32) per segment
INTERVALS_S = (60, 300, 900, 1800, 2700, 3600)
LONG_POLL_S = 50  # station.long_poll.LONG_POLL_S: an idle station re-polls this often
HP = "jetdirect_m130nw"


class CountingProxy:
    """A TCP relay on 127.0.0.1 counting payload bytes and segments-ish (recv calls) each way."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.up = self.down = self.up_chunks = self.down_chunks = 0
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        """Zero the counters."""
        with self._lock:
            self.up = self.down = self.up_chunks = self.down_chunks = 0

    def totals(self) -> tuple[int, int, int]:
        """(bytes up, bytes down, data chunks both ways)."""
        with self._lock:
            return self.up, self.down, self.up_chunks + self.down_chunks

    def close(self) -> None:
        """Stop accepting."""
        self._stop = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._upstream))
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    if up:
                        self.up += len(data)
                        self.up_chunks += 1
                    else:
                        self.down += len(data)
                        self.down_chunks += 1
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class WireCost:
    """Bytes of one exchange, averaged."""

    label: str
    up: float
    down: float
    chunks: float

    @property
    def payload(self) -> float:
        """TCP payload both ways."""
        return self.up + self.down

    @property
    def with_headers(self) -> float:
        """Payload plus the IP/TCP header estimate (a data segment and an ACK per chunk)."""
        return self.payload + self.chunks * 2 * HEADER_BYTES


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1 (P-256: a realistically small chain of one)."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloud.pullprint.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        # Its own trust anchor: OpenSSL trusts a self-signed certificate only as a CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def tls_cloud(work: Path) -> Iterator[tuple[Any, int, Path]]:
    """The cloud app under uvicorn with TLS on 127.0.0.1; yields (service, port, cert)."""
    import uvicorn  # noqa: PLC0415

    from cloud.app import create_app  # noqa: PLC0415
    from cloud.config import generate_secrets, load_config  # noqa: PLC0415

    data = work / "cloud"
    data.mkdir()
    generate_secrets(data / "secrets.toml")
    app = create_app(load_config(None, {"PULLPRINT_DATA_DIR": str(data)}), run_sweeper=False)
    cert, key = self_signed(work)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_config=None,
        access_log=False,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        timeout_keep_alive=3600,  # the idle timeout a deployment sets above the interval
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the cloud did not start")
        time.sleep(0.01)
    try:
        yield app.state.service, int(server.servers[0].sockets[0].getsockname()[1]), cert
    finally:
        server.should_exit = True
        thread.join(10)


def measure(proxy: CountingProxy, label: str, times: int, action: Callable[[], object]) -> WireCost:
    """Run `action` `times` times and average what crossed the proxy."""
    proxy.reset()
    for _ in range(times):
        action()
    time.sleep(0.05)  # the last answer's bytes are counted before the pump sees them
    up, down, chunks = proxy.totals()
    return WireCost(label, up / times, down / times, chunks / times)


def _upload(link: Any, payload: Any) -> Callable[[], object]:
    return lambda: link.upload_device_data(payload)


def bench(beats: int) -> dict[str, Any]:
    """Everything measured, as a dict (see the module docstring)."""
    from cloud.registry import PrinterSpec  # noqa: PLC0415
    from hardware.snmp.report import build_report  # noqa: PLC0415
    from station.device_data import alerts_of, status_of  # noqa: PLC0415
    from station.heartbeat import StationLink  # noqa: PLC0415
    from station.signing import SignatureAuth, load_or_create_identity  # noqa: PLC0415
    from tools.snmpsim import SHARED_SNMPREC, fixed_recording, parse_snmprec  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="pullprint-bench-hb-") as tmp:
        work = Path(tmp)
        with tls_cloud(work) as (service, port, cert):
            identity = load_or_create_identity(work / "station.key")
            issued = service.pairing.request(
                identity.signing_public, identity.exchange_public, "127.0.0.1"
            )
            approved = service.pairing.approve(
                issued.user_code,
                site_key=b"k" * 32,
                printer_name="Hall",
                printer_uri="ipp://10.0.0.5/ipp/print",
            )
            printer = service.registry.add(
                PrinterSpec(name="Hall", uri="ipp://10.0.0.5/ipp/print", snmp_community="public")
            )
            service.registry.assign(printer.id, approved.station_id)
            proxy = CountingProxy(port)
            auth = SignatureAuth(identity, str(approved.station_id))

            def link() -> StationLink:
                return StationLink(f"https://127.0.0.1:{proxy.port}", auth, ca_certs=str(cert))

            kept = link()
            first = kept.heartbeat(None, {"started": 1764150000, "version": "0.1.0"})
            etag = first.etag
            results = [
                measure(proxy, "heartbeat, 304", beats, lambda: kept.heartbeat(etag, None)),
                measure(
                    proxy,
                    "heartbeat + health",
                    1,
                    lambda: kept.heartbeat(etag, {"started": 1764150001, "version": "0.1.0"}),
                ),
            ]
            service.registry.update(printer.id, {"location": "2nd floor, east wing"})
            results.append(
                measure(proxy, "heartbeat, new config", 1, lambda: kept.heartbeat(etag, None))
            )
            etag = kept.heartbeat(None, None).etag

            def fresh_beat() -> None:
                one = link()
                try:
                    one.heartbeat(etag, None)
                finally:
                    one.close()

            results.append(measure(proxy, "heartbeat, new TLS conn.", 3, fresh_beat))

            text = fixed_recording(SHARED_SNMPREC / f"{HP}.snmprec")
            report = build_report(parse_snmprec(text))
            status = status_of(report)
            uploads = {
                "status + supplies": {"status": status},
                "alerts (one)": {"alerts": [{"severity": "critical", "words": "Out of paper"}]},
                "meters": {"meters": {"page_count": 123456, "source": "prtMarkerLifeCount"}},
            }
            data_costs = [
                measure(proxy, label, 1, _upload(kept, payload))
                for label, payload in uploads.items()
            ]
            kept.close()
            long_poll = _long_poll_cost(proxy, auth, str(cert), beats)
            proxy.close()
            alerts_seen = alerts_of(report)
    steady = results[0]
    monthly = {
        interval: steady.with_headers * MONTH_S / interval + 2 * results[1].with_headers
        for interval in INTERVALS_S
    }
    status_cost, _alert_cost, meter_cost = data_costs
    daily = {
        "meters daily + status once a day (unchanged)": meter_cost.with_headers
        + status_cost.with_headers,
        "+ status changing every 15 min (worst case)": meter_cost.with_headers
        + 96 * status_cost.with_headers,
    }
    poll_month = long_poll.with_headers * MONTH_S / LONG_POLL_S
    return {
        "long_poll": {
            "interval_s": LONG_POLL_S,
            "bytes_per_month": round(poll_month),
            "with_heartbeat_bytes_per_month": round(poll_month + monthly[2700]),
        },
        "exchanges": [
            {
                "label": c.label,
                "up": round(c.up),
                "down": round(c.down),
                "payload": round(c.payload),
                "with_ip_tcp_estimate": round(c.with_headers),
            }
            for c in [*results, *data_costs, long_poll]
        ],
        "keepalive_bytes_per_month": {str(k): round(v) for k, v in monthly.items()},
        "budget_bytes_per_month": BUDGET_BYTES_PER_MONTH,
        "device_data_bytes_per_day": {k: round(v) for k, v in daily.items()},
        "alerts_in_recording": len(alerts_seen),
    }


def _long_poll_cost(proxy: CountingProxy, auth: Any, cert: str, polls: int) -> WireCost:
    """An idle long-poll exchange on a kept-alive connection (the station's CloudClient)."""
    from station.cloud_client import CloudClient  # noqa: PLC0415

    client = CloudClient(f"https://127.0.0.1:{proxy.port}", auth, timeout_s=10, ca_certs=cert)
    try:
        client.wait(0)  # the connection and its TLS handshake, not counted
        return measure(proxy, "long-poll, idle", polls, lambda: client.wait(0))
    finally:
        client.close()


def _cmd(args: argparse.Namespace) -> int:
    result = bench(args.beats)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print("Wire bytes per exchange (TLS 1.3 on loopback, through a counting proxy)")
    print(f"  {'exchange':<26}{'up':>7}{'down':>7}{'TCP payload':>13}{'+IP/TCP est.':>14}")
    for row in result["exchanges"]:
        print(
            f"  {row['label']:<26}{row['up']:>7}{row['down']:>7}{row['payload']:>13}"
            f"{row['with_ip_tcp_estimate']:>14}"
        )
    print("Keep-alive per month on one kept-alive connection (304s, and two health reports)")
    for interval, total in result["keepalive_bytes_per_month"].items():
        verdict = "within" if total <= BUDGET_BYTES_PER_MONTH else "over"
        print(f"  every {int(interval):>5} s: {total / 1e6:6.2f} MB  ({verdict} the 1 MB budget)")
    poll = result["long_poll"]
    print(
        f"Opt-in long-poll ([cloud] long_poll, one idle poll every {poll['interval_s']} s): "
        f"{poll['bytes_per_month'] / 1e6:.1f} MB a month "
        f"({poll['with_heartbeat_bytes_per_month'] / 1e6:.1f} MB with the 45 min heartbeat)"
    )
    print("Device data per day (default schedule)")
    for label, total in result["device_data_bytes_per_day"].items():
        print(f"  {label}: {total / 1000:.1f} kB")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `bench-heartbeat` to the command tree."""
    cmd = sub.add_parser("bench-heartbeat", help="wire bytes of heartbeats and device data")
    cmd.add_argument("--beats", type=int, default=20, help="heartbeats averaged")
    cmd.add_argument("--json", action="store_true", help="print the figures as JSON")
    cmd.set_defaults(func=_cmd)
