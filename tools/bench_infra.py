"""Benchmark printer pull (IPP INFRA): `python -m tools.bench_infra [--jobs N] [--mb M]`.

Everything on 127.0.0.1: the cloud app under uvicorn, a paired station's INFRA proxy (signed
requests), and the virtual printer (documents counted, not kept). Prints two figures:

* small jobs pulled per second: N jobs of ~10 KB released at once, then one `poll()` fetches,
  acknowledges, prints and reports each of them (nine IPP requests to the cloud per job plus the
  printer's own conversation);
* MB/s for one large job, from Fetch-Job to the printer's "completed" (the cloud authenticates the
  whole container before the first byte, then decrypts it again while streaming; the proxy
  re-encrypts into its spool, then decrypts to the printer).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud.app import create_app
from cloud.config import generate_secrets, load_config
from cloud.identity import StationPrincipal
from cloud.ipp.infra_store import Infra
from cloud.server import start_in_thread
from cloud.service import CloudService
from hardware.printers.ipp import IppPrinterTransport
from hardware.printers.virtual import VirtualPrinter
from station.infra_proxy import InfraClient, InfraProxy
from station.signing import SignatureAuth, StationIdentity


def _pieces(size: int, chunk: int = 1 << 20) -> list[bytes]:
    block = b"%PDF-1.4 bench " * (chunk // 15 + 1)
    out, left = [], size
    while left > 0:
        out.append(block[: min(chunk, left)])
        left -= chunk
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50, help="small jobs (default 50)")
    parser.add_argument("--mb", type=int, default=64, help="size of the large job in MB")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-infra-") as tmp:
        data = Path(tmp) / "cloud"
        data.mkdir()
        generate_secrets(data / "secrets.toml")
        app = create_app(load_config(None, {"PULLPRINT_DATA_DIR": str(data)}), run_sweeper=False)
        server = start_in_thread(app, host="127.0.0.1", port=0)
        service: CloudService = app.state.service
        infra: Infra = app.state.infra.infra
        with VirtualPrinter(processing_s=0.0, keep_documents=False) as printer:
            identity = StationIdentity(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
            issued = service.pairing.request(
                identity.signing_public, identity.exchange_public, "127.0.0.1"
            )
            approved = service.pairing.approve(
                issued.user_code,
                site_key=b"k" * 32,
                printer_name="bench",
                printer_uri=printer.uri,
            )
            station = StationPrincipal(approved.station_id, approved.site, "bench", printer.uri)
            user = service.identity.create_user("bench@example.org", "Bench")
            principal = service.identity.authenticate_user(user.api_token)
            tag = uuid.uuid4().hex * 2
            service.identity.add_card(user.id, tag, "badge")
            client = InfraClient(
                f"ipp://127.0.0.1:{server.port}/ipp/infra",
                auth=SignatureAuth(identity, str(station.id)),
            )
            spool = Path(tmp) / "spool"
            spool.mkdir()
            transport = IppPrinterTransport(printer.uri, poll_interval_s=0.01)
            proxy = InfraProxy(client, transport, spool, f"urn:uuid:{uuid.uuid4()}")
            proxy.register()

            for i in range(args.jobs):
                service.uploads.submit(principal, f"small-{i}.pdf", iter(_pieces(10_000)))
            session = service.sessions.open(station, tag)
            infra.release(station, session.id, None)
            started = time.perf_counter()
            report = proxy.poll()
            small_s = time.perf_counter() - started
            assert len(report.printed) == args.jobs, report

            size = args.mb << 20
            service.uploads.submit(principal, "large.pdf", iter(_pieces(size)))
            session = service.sessions.open(station, tag)
            infra.release(station, session.id, None)
            started = time.perf_counter()
            report = proxy.poll()
            large_s = time.perf_counter() - started
            assert len(report.printed) == 1, report
            client.close()
        server.stop()
    print(f"small jobs pulled: {args.jobs} in {small_s:.2f} s = {args.jobs / small_s:.1f} jobs/s")
    print(f"large job pulled: {args.mb} MB in {large_s:.2f} s = {args.mb / large_s:.1f} MB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
