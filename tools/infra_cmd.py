"""`pullprint infra`: printers that pull (IPP INFRA, PWG 5100.18).

On the cloud host, an admin issues the device token a cloud-aware printer (or ipptool) presents
to the Infrastructure Printer at `/ipp/infra`, for the printer of one paired station::

    pullprint infra token STATION_ID --data-dir /var/lib/pullprint
    pullprint infra revoke STATION_ID --data-dir /var/lib/pullprint

On a station, `pullprint infra proxy --config /etc/pullprint/station.toml` runs the station as
the INFRA proxy of its printer (`station.infra_proxy`): it signs its requests with its own key,
so it needs no token. Jobs reach it once their owner releases them at the station in "infra"
delivery mode (`POST /api/v1/station/sessions/{id}/infra-releases`).

Zero-knowledge sites cannot use printer pull: the cloud decrypts the document to serve
Fetch-Document, and in zero-knowledge mode it cannot.
"""

from __future__ import annotations

import argparse
import signal
import threading
import uuid
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from tools.admin import _common, open_service

DEVICE_NAMESPACE = uuid.UUID("7f1d7c1e-3b0a-4c41-9e8e-2a4b5f6d0c11")


def device_uuid_for(station_id: str) -> str:
    """A stable output-device-uuid for a station's printer (the same after every restart)."""
    return f"urn:uuid:{uuid.uuid5(DEVICE_NAMESPACE, station_id)}"


def _station_id(text: str) -> uuid.UUID:
    from tools.cli import CliError  # noqa: PLC0415 - the cloud stack loads only when used

    try:
        return uuid.UUID(text)
    except ValueError:
        raise CliError(f"not a station id: {text!r}") from None


def _cmd_token(args: argparse.Namespace) -> int:
    from cloud.ipp.infra_store import Infra  # noqa: PLC0415 - the cloud stack loads only when used

    station_id = _station_id(args.station_id)
    with open_service(args) as service:
        site = args.site or service.config.site
        issued = Infra(service.context, service.releases).issue_token(site, station_id)
    print(f"output device token for station {issued.station_id}: {issued.token}")
    print("The token is shown only this once; issuing again replaces it.")
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    from cloud.ipp.infra_store import Infra  # noqa: PLC0415 - the cloud stack loads only when used

    station_id = _station_id(args.station_id)
    with open_service(args) as service:
        site = args.site or service.config.site
        Infra(service.context, service.releases).revoke(site, station_id)
    print(f"revoked the output device of station {station_id}")
    return 0


def _cmd_proxy(args: argparse.Namespace) -> int:
    from station.config import load_config  # noqa: PLC0415 - the station stack loads when used
    from station.infra_proxy import InfraClient, InfraProxy  # noqa: PLC0415
    from station.parts import build_transport  # noqa: PLC0415
    from station.signing import SignatureAuth, load_identity  # noqa: PLC0415
    from tools.cli import CliError  # noqa: PLC0415

    config = load_config(Path(args.config) if args.config else None)
    cloud = config.cloud
    if not cloud.station_id or cloud.key_file is None:
        raise CliError("the station is not paired: run `pullprint pair` first")
    parts = urlsplit(cloud.url)
    scheme = "ipps" if parts.scheme == "https" else "ipp"
    client = InfraClient(
        f"{scheme}://{parts.netloc}/ipp/infra",
        auth=SignatureAuth(load_identity(cloud.key_file), cloud.station_id),
        timeout_s=cloud.timeout_s,
    )
    spool = config.spool_dir or Path(args.spool or "/var/spool/pullprint")
    spool.mkdir(mode=0o700, parents=True, exist_ok=True)
    proxy = InfraProxy(
        client,
        build_transport(config),
        spool,
        args.device_uuid or device_uuid_for(cloud.station_id),
    )
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"INFRA proxy for {config.printer.uri} as {proxy.device_uuid}")
    try:
        proxy.run(stop)
    finally:
        client.close()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `infra token|revoke|proxy` to the command tree."""
    infra = sub.add_parser(
        "infra", help="printers that pull (IPP INFRA): device tokens, the station's proxy"
    ).add_subparsers(dest="infra_cmd", required=True)
    token = infra.add_parser("token", help="issue a station printer's device token (shown once)")
    token.add_argument("station_id")
    _common(token)
    token.set_defaults(func=_cmd_token)
    revoke = infra.add_parser("revoke", help="revoke a station printer's output device at once")
    revoke.add_argument("station_id")
    _common(revoke)
    revoke.set_defaults(func=_cmd_revoke)
    proxy = infra.add_parser("proxy", help="run this station as the INFRA proxy of its printer")
    proxy.add_argument("--config", help="station.toml (default: the environment)")
    proxy.add_argument("--spool", help="spool directory when the config names none")
    proxy.add_argument("--device-uuid", help="output-device-uuid (default: from the station id)")
    proxy.set_defaults(func=_cmd_proxy)
