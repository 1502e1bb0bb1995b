"""`pullprint discover`: find printers by mDNS and SNMP range scans, one row per device.

Nothing leaves the machine unless `--allow-network` is given: without it, mDNS runs on
127.0.0.1 only and SNMP ranges outside 127.0.0.0/8 are refused, so a developer or a test never
scans a real network by mistake. The community can come from `PULLPRINT_SNMP_COMMUNITY` instead
of the command line, where other users of the machine could read it in the process list.
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from tools.cli import CliError

if TYPE_CHECKING:
    from hardware.discovery.merge import DiscoveredDevice
    from hardware.discovery.result import ScanResult
    from hardware.discovery.txt import DiscoveredPrinter

LOOPBACK_INTERFACES = ("127.0.0.1",)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `discover` to the `pullprint` command tree."""
    cmd = sub.add_parser("discover", help="find printers by mDNS and SNMP range scans")
    cmd.add_argument("--mdns", action="store_true", help="browse mDNS (IPP, IPPS, RAW, LPD)")
    cmd.add_argument("--mdns-timeout", type=float, default=3.0, help="seconds to browse mDNS")
    cmd.add_argument(
        "--snmp",
        metavar="RANGE",
        nargs="+",
        action="extend",
        default=[],
        help="scan IPv4 ranges over SNMP: 10.0.0.0/24, 10.0.0.5-10.0.0.20, 10.0.0.5-20, 10.0.0.7",
    )
    cmd.add_argument(
        "--exclude", metavar="RANGE", nargs="+", action="extend", default=[], help="skip these"
    )
    cmd.add_argument("--community", help="SNMP v2c community (or env PULLPRINT_SNMP_COMMUNITY)")
    cmd.add_argument("--port", type=int, default=161, help="SNMP UDP port")
    cmd.add_argument("--timeout", type=float, default=1.0, help="SNMP seconds per try")
    cmd.add_argument("--retries", type=int, default=0, help="SNMP resends per host")
    cmd.add_argument("--concurrency", type=int, default=32, help="hosts asked at once")
    cmd.add_argument("--rate", type=float, default=50.0, help="hosts started per second (0: any)")
    cmd.add_argument("--max-hosts", type=int, default=65_536, help="refuse bigger scans")
    cmd.add_argument("--json", action="store_true", help="print the devices as one JSON object")
    cmd.add_argument(
        "--report",
        action="store_true",
        help="send the devices to the cloud: signed as the station of --station-config, or "
        "straight into the cloud's database with --data-dir (on the cloud host)",
    )
    cmd.add_argument(
        "--station-config",
        help="station.toml of the paired station that reports (default: PULLPRINT_STATION_CONFIG"
        " or /etc/pullprint/station.toml)",
    )
    cmd.add_argument("--data-dir", help="the cloud's data directory (report as its admin)")
    cmd.add_argument("--config", help="the cloud's cloud.toml (with --data-dir)")
    cmd.add_argument("--site", help="the site to report into (with --data-dir)")
    cmd.add_argument(
        "--allow-network",
        action="store_true",
        help="allow real networks: mDNS on every interface, SNMP beyond 127.0.0.0/8",
    )
    cmd.set_defaults(func=_cmd_discover)


def _cmd_discover(args: argparse.Namespace) -> int:
    # zeroconf and pysnmp are imported only when asked (station extra; slow to import).
    from hardware.discovery.errors import DiscoveryError  # noqa: PLC0415
    from hardware.discovery.merge import merge  # noqa: PLC0415
    from hardware.discovery.ranges import plan_scan  # noqa: PLC0415

    if not args.mdns and not args.snmp:
        raise CliError("say where to look: --mdns and/or --snmp RANGE ...", 2)
    if args.concurrency < 1 or not 0 < args.port < 65536:
        raise CliError("--concurrency must be at least 1 and --port in 1..65535", 2)
    if args.snmp:
        try:
            # Checked before mDNS starts, so a refused range fails at once.
            plan_scan(
                args.snmp,
                args.exclude,
                allow_network=args.allow_network,
                max_hosts=args.max_hosts,
            )
        except DiscoveryError as exc:
            hint = " (add --allow-network)" if isinstance(exc, PermissionError) else ""
            raise CliError(f"{exc}{hint}", 2) from exc

    with ThreadPoolExecutor(1) as pool:
        printers_future = pool.submit(_browse, args) if args.mdns else None
        scanned = _scan(args) if args.snmp else []
        printers = printers_future.result() if printers_future is not None else []
    devices = merge(printers, scanned)
    if args.report:
        new, updated = report([d.to_json() for d in devices], args)
        print(f"reported {len(devices)} device(s) to the cloud: {new} new, {updated} seen again")
        if not args.json:
            return 0
    if args.json:
        print(json.dumps({"devices": [d.to_json() for d in devices]}, ensure_ascii=False))
    else:
        print(format_table(devices))
    return 0


def report(devices: list[dict[str, object]], args: argparse.Namespace) -> tuple[int, int]:
    """Send discovery results to the cloud; returns (new, updated)."""
    if args.data_dir or args.config:
        from tools.admin import open_service  # noqa: PLC0415 - the cloud stack loads when used

        with open_service(args) as service:
            site = args.site or service.config.site
            return service.devices.report_discovered(devices, site)
    from station.config import load_config  # noqa: PLC0415 - the station stack loads when used
    from station.errors import StationError  # noqa: PLC0415
    from station.heartbeat import StationLink  # noqa: PLC0415
    from station.signing import SignatureAuth, load_identity  # noqa: PLC0415

    path = (
        args.station_config
        or os.environ.get("PULLPRINT_STATION_CONFIG")
        or "/etc/pullprint/station.toml"
    )
    try:
        config = load_config(path)
        if config.cloud.station_id is None or config.cloud.key_file is None:
            raise CliError(f"{path}: the station is not paired")
        auth = SignatureAuth(load_identity(config.cloud.key_file), config.cloud.station_id)
        link = StationLink(config.cloud.url, auth, timeout_s=config.cloud.timeout_s)
        try:
            return link.report_discovered(devices)
        finally:
            link.close()
    except StationError as exc:
        raise CliError(f"cannot report to the cloud: {exc}") from exc


def _browse(args: argparse.Namespace) -> list[DiscoveredPrinter]:
    from hardware.discovery.mdns import browse  # noqa: PLC0415

    interfaces = None if args.allow_network else list(LOOPBACK_INTERFACES)
    return browse(args.mdns_timeout, interfaces)


def _scan(args: argparse.Namespace) -> list[ScanResult]:
    from hardware.discovery.scan import scan  # noqa: PLC0415
    from hardware.snmp.session import SnmpSession  # noqa: PLC0415

    community = args.community or os.environ.get("PULLPRINT_SNMP_COMMUNITY") or "public"
    with SnmpSession(
        timeout_s=args.timeout,
        retries=args.retries,
        max_in_flight=args.concurrency,
        # A scan may be long: bounded by the plan's size, not by one printer's reply time.
        call_timeout_s=24 * 3600.0,
    ) as session:
        return session.run(
            lambda client: scan(
                client,
                args.snmp,
                args.exclude,
                community=community,
                port=args.port,
                concurrency=args.concurrency,
                rate_per_s=args.rate,
                allow_network=args.allow_network,
                max_hosts=args.max_hosts,
            )
        )


def format_table(devices: list[DiscoveredDevice]) -> str:
    """The devices as a table for a person, one row each."""
    if not devices:
        return "No printers found."
    header = ("ADDRESS", "NAME", "MAKE AND MODEL", "SERIAL", "MAC", "STATUS", "VIA", "URI")
    rows = [header]
    for device in devices:
        model = device.model or ""
        if device.make and not model.lower().startswith(device.make.lower()):
            model = f"{device.make} {model}".strip()
        rows.append(
            (
                ", ".join(device.addresses) or "-",
                device.name or "-",
                model or "-",
                device.serial_number or "-",
                device.mac_address or "-",
                device.status or "-",
                "+".join(device.sources),
                device.uris[0] if device.uris else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)
