"""`pullprint admin printer ...`: the printer registry, device data and discovered devices.

    pullprint admin printer add "Floor 2" --uri ipps://p2.local/ipp/print --mode ipps-then-ipp \\
        --ipp-uri ipp://p2.local/ipp/print --pin BASE64 --location "2nd floor, east"
    pullprint admin printer assign "Floor 2" STATION_ID
    pullprint admin printer show "Floor 2"            # status in words, supplies %, meters
    pullprint admin printer set "Floor 2" --mode any --raw-uri socket://p2.local
    pullprint admin printer discovered                # what `pullprint discover --report` sent
    pullprint admin printer adopt DEVICE_ID --name "Floor 3"

Printers are named by name or id. Every command takes `--json`. Stations get a changed config with
their next heartbeat. The SNMP community is read from `PULLPRINT_SNMP_COMMUNITY` with `--snmp`
(a command line is visible to other users of the machine), and never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tools.table import format_table

if TYPE_CHECKING:
    from cloud.devices import DeviceData, DiscoveredView
    from cloud.registry import PrinterView

MODES = ("ipps-only", "ipps-then-ipp", "any")


def printer_json(view: PrinterView) -> dict[str, Any]:
    """A printer as JSON (never the SNMP community)."""
    return {
        "id": str(view.id),
        "name": view.name,
        "uri": view.uri,
        "mode": view.mode,
        "ipp_uri": view.ipp_uri,
        "raw_uri": view.raw_uri,
        "pin": view.pin,
        "raw_pjl": view.raw_pjl,
        "has_snmp": view.has_snmp,
        "location": view.location,
        "capabilities": view.capabilities,
        "config_version": view.config_version,
        "stations": [str(s) for s in view.stations],
        "created_at": _when(view.created_at),
        "updated_at": _when(view.updated_at),
    }


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else text)


def _spec_fields(args: argparse.Namespace) -> dict[str, Any]:
    from tools.cli import CliError  # noqa: PLC0415 - tools.cli imports the admin modules

    fields: dict[str, Any] = {}
    for name in ("uri", "mode", "ipp_uri", "raw_uri", "pin", "location"):
        value = getattr(args, name, None)
        if value is not None:
            # An empty value removes an optional field (`--pin ""`); a location may be blank.
            fields[name] = value if name == "location" else (value or None)
    if getattr(args, "no_pjl", False):
        fields["raw_pjl"] = False
    if getattr(args, "snmp", False):
        fields["snmp_community"] = os.environ.get("PULLPRINT_SNMP_COMMUNITY") or "public"
    if getattr(args, "no_snmp", False):
        fields["snmp_community"] = None
    capabilities: dict[str, Any] = {}
    for item in getattr(args, "capability", None) or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--capability takes KEY=VALUE, not {item!r}", 2)
        capabilities[key] = _typed(value)
    if capabilities:
        fields["capabilities"] = capabilities
    return fields


def _typed(value: str) -> Any:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(value)
    except ValueError:
        return value


def _cmd_add(args: argparse.Namespace) -> int:
    from cloud.registry import PrinterSpec  # noqa: PLC0415 - the cloud stack loads when used
    from tools.admin import open_service  # noqa: PLC0415 - tools.admin imports this module

    fields = _spec_fields(args)
    with open_service(args) as service:
        view = service.registry.add(PrinterSpec(name=args.name, **fields), args.site)
    _print(args, printer_json(view), f"registered printer {view.id} ({view.name})")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from tools.admin import open_service  # noqa: PLC0415 - tools.admin imports this module

    with open_service(args) as service:
        views = service.registry.list(args.site)
        statuses = {v.id: service.devices.data(v.id, v.site) for v in views}
    rows = [
        (
            v.name,
            str(v.id),
            v.mode or "uri only",
            v.uri,
            str(len(v.stations)),
            _status_line(statuses[v.id]),
        )
        for v in views
    ]
    text = (
        format_table(("NAME", "ID", "MODE", "URI", "STATIONS", "STATUS"), rows, rule=False)
        if rows
        else "No printers."
    )
    data = {"printers": [printer_json(v) for v in views]}
    _print(args, data, text)
    return 0


def _status_line(data: DeviceData) -> str:
    if data.status is None:
        return "-"
    words = str(data.status.get("status_words") or "-")
    if data.alerts:
        words += f" ({len(data.alerts)} alert{'s' if len(data.alerts) > 1 else ''})"
    return words


def _cmd_show(args: argparse.Namespace) -> int:
    from tools.admin import open_service  # noqa: PLC0415 - tools.admin imports this module

    with open_service(args) as service:
        view = service.registry.find(args.printer, args.site)
        data = service.devices.data(view.id, view.site)
        health = {s: service.registry.station_health(s, view.site) for s in view.stations}
    out = printer_json(view)
    out["status"] = data.status
    out["read_at"] = _when(data.read_at)
    out["meters"] = [
        {"read_at": _when(at), "page_count": n, "source": src} for at, n, src in data.meters
    ]
    out["alerts"] = [{"severity": s, "words": w, "since": _when(at)} for s, w, at in data.alerts]
    out["station_health"] = {
        str(s): ({**h, "last_seen_at": _when(h["last_seen_at"])} if h is not None else None)
        for s, h in health.items()
    }
    _print(args, out, show_text(view, data, health))
    return 0


def show_text(
    view: PrinterView, data: DeviceData, health: dict[uuid.UUID, dict[str, Any] | None]
) -> str:
    """`admin printer show` for a person: config, status in words, supplies in %, meters."""
    lines = [
        f"{view.name}  ({view.id})",
        f"  URI:       {view.uri}",
        f"  transport: {view.mode or 'this URI only'}"
        + "".join(f", {u}" for u in (view.ipp_uri, view.raw_uri) if u),
        f"  pin:       {view.pin or '-'}",
        f"  location:  {view.location or '-'}",
        f"  SNMP:      {'yes' if view.has_snmp else 'no'}",
        f"  config:    version {view.config_version}",
    ]
    if view.capabilities:
        caps = ", ".join(f"{k}={v}" for k, v in sorted(view.capabilities.items()))
        lines.append(f"  capabilities: {caps}")
    status = data.status
    if status is None:
        lines.append("  status:    no reading yet")
    else:
        lines.append(f"  status:    {status.get('status_words')}  (read {_when(data.read_at)})")
        for error in status.get("errors") or []:
            lines.append(f"             - {error}")
        supplies = status.get("supplies") or []
        if supplies:
            lines.append("  supplies:")
            for supply in supplies:
                level = (
                    f"{supply['percent']}%"
                    if supply.get("percent") is not None
                    else supply.get("level_words")
                )
                lines.append(f"    {supply.get('description') or supply.get('kind')}: {level}")
        if status.get("console"):
            lines.append(f"  display:   {' / '.join(status['console'])}")
    if data.alerts:
        lines.append("  alerts:")
        lines += [f"    [{s}] {w} (since {_when(at)})" for s, w, at in data.alerts]
    if data.meters:
        lines.append("  meters:")
        lines += [f"    {_when(at)}  {n:>10,} pages" for at, n, _ in data.meters]
    lines.append("  stations:" if view.stations else "  stations:  none assigned")
    for station_id, h in health.items():
        if h is None:
            lines.append(f"    {station_id}  never seen")
            continue
        current = "config current" if h["config_current"] else "config pending"
        state = ", ".join(f"{k}={v}" for k, v in sorted(h["health"].items()))
        lines.append(f"    {station_id}  seen {_when(h['last_seen_at'])}  {current}  {state}")
    return "\n".join(lines)


def _cmd_set(args: argparse.Namespace) -> int:
    from tools.admin import open_service  # noqa: PLC0415 - tools.admin imports this module
    from tools.cli import CliError  # noqa: PLC0415 - tools.cli imports the admin modules

    fields = _spec_fields(args)
    if args.new_name:
        fields["name"] = args.new_name
    if not fields:
        raise CliError("nothing to change: give at least one option", 2)
    with open_service(args) as service:
        printer = service.registry.find(args.printer, args.site)
        view = service.registry.update(printer.id, fields, printer.site)
    _print(
        args,
        printer_json(view),
        f"printer {view.name} changed (config version {view.config_version}); "
        f"{len(view.stations)} station(s) get it with their next heartbeat",
    )
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    from tools.admin import open_service  # noqa: PLC0415 - tools.admin imports this module

    with open_service(args) as service:
        printer = service.registry.find(args.printer, args.site)
        service.registry.remove(printer.id, printer.site)
    _print(args, {"removed": str(printer.id)}, f"removed printer {printer.name}")
    return 0


def _cmd_assign(args: argparse.Namespace) -> int:
    from tools.admin import _station_id, open_service  # noqa: PLC0415 - imports this module

    station_id = _station_id(args.station_id)
    with open_service(args) as service:
        printer = service.registry.find(args.printer, args.site)
        view = service.registry.assign(printer.id, station_id, printer.site)
    _print(
        args,
        printer_json(view),
        f"station {station_id} now serves {view.name}; it gets the config with its next heartbeat",
    )
    return 0


def discovered_json(view: DiscoveredView) -> dict[str, Any]:
    """A discovered device as JSON."""
    return {
        "id": str(view.id),
        "identity": view.identity,
        **view.data,
        "first_seen_at": _when(view.first_seen_at),
        "last_seen_at": _when(view.last_seen_at),
        "printer_id": str(view.printer_id) if view.printer_id else None,
    }


def _cmd_discovered(args: argparse.Namespace) -> int:
    from tools.admin import open_service  # noqa: PLC0415 - tools.admin imports this module

    with open_service(args) as service:
        views = service.devices.list_discovered(args.site)
    rows = []
    for v in views:
        d = v.data
        model = " ".join(str(x) for x in (d.get("make"), d.get("model")) if x)
        rows.append(
            (
                str(v.id),
                ", ".join(d.get("addresses") or []) or "-",
                model or "-",
                str(d.get("serial_number") or "-"),
                str(d.get("status") or "-"),
                (d.get("uris") or ["-"])[0],
                "registered" if v.printer_id else "-",
            )
        )
    header = ("ID", "ADDRESS", "MAKE AND MODEL", "SERIAL", "STATUS", "URI", "PRINTER")
    text = format_table(header, rows, rule=False) if rows else "No discovered devices."
    _print(args, {"devices": [discovered_json(v) for v in views]}, text)
    return 0


def _cmd_adopt(args: argparse.Namespace) -> int:
    from tools.admin import open_service  # noqa: PLC0415 - tools.admin imports this module
    from tools.cli import CliError  # noqa: PLC0415 - tools.cli imports the admin modules

    try:
        device_id = uuid.UUID(args.device_id)
    except ValueError:
        raise CliError("DEVICE_ID is a UUID (see `pullprint admin printer discovered`)") from None
    fields = _spec_fields(args)
    with open_service(args) as service:
        view = service.devices.register_discovered(device_id, args.name, args.site, **fields)
    _print(args, printer_json(view), f"registered printer {view.id} ({view.name}) at {view.uri}")
    return 0


def _policy_options(parser: argparse.ArgumentParser, *, uri_required: bool) -> None:
    parser.add_argument("--uri", required=uri_required, help="ipps://, ipp:// or socket:// URI")
    parser.add_argument("--mode", choices=MODES, help="fallback policy (default: the URI only)")
    parser.add_argument("--ipp-uri", help="ipp:// fallback (ipps-then-ipp, any)")
    parser.add_argument("--raw-uri", help="socket:// fallback (any)")
    parser.add_argument("--pin", help="base64 SHA-256 of the printer's key (ipps://)")
    parser.add_argument("--no-pjl", action="store_true", help="send RAW jobs without PJL")
    parser.add_argument(
        "--snmp", action="store_true", help="stations read SNMP (PULLPRINT_SNMP_COMMUNITY)"
    )
    parser.add_argument("--location", help="where the printer is")
    parser.add_argument(
        "--capability", action="append", metavar="KEY=VALUE", help="e.g. color=true (repeat)"
    )


def register(admin: argparse._SubParsersAction[argparse.ArgumentParser], common: Any) -> None:
    """Add `admin printer add|list|show|set|remove|assign|discovered|adopt`."""
    printer = admin.add_parser("printer", help="registered printers, device data, discovery")
    cmds = printer.add_subparsers(dest="printer_cmd", required=True)

    def command(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        parser = cmds.add_parser(name, help=help_text)
        parser.add_argument("--json", action="store_true", help="print JSON")
        common(parser)
        parser.set_defaults(func=func)
        return parser

    add = command("add", "register a printer", _cmd_add)
    add.add_argument("name")
    _policy_options(add, uri_required=True)
    command("list", "the site's printers", _cmd_list)
    show = command("show", "a printer: config, status, supplies, meters, stations", _cmd_show)
    show.add_argument("printer", help="name or id")
    change = command("set", "change a printer (stations follow at their heartbeat)", _cmd_set)
    change.add_argument("printer", help="name or id")
    change.add_argument("--name", dest="new_name", help="rename")
    change.add_argument("--no-snmp", action="store_true", help="stop reading SNMP")
    _policy_options(change, uri_required=False)
    remove = command("remove", "remove a printer no station serves", _cmd_remove)
    remove.add_argument("printer", help="name or id")
    assign = command("assign", "make a station serve a printer", _cmd_assign)
    assign.add_argument("printer", help="name or id")
    assign.add_argument("station_id")
    command("discovered", "devices found by `pullprint discover --report`", _cmd_discovered)
    adopt = command("adopt", "register a discovered device as a printer", _cmd_adopt)
    adopt.add_argument("device_id")
    adopt.add_argument("--name", required=True, help="the printer's name")
    _policy_options(adopt, uri_required=False)
