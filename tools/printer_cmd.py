"""`pullprint printer inspect`: ask one printer over SNMP what it is and how it is doing.

Only loopback addresses are accepted unless `--allow-network` is given, so that a developer or a
test here never sends SNMP to a real network by mistake. Secrets can come from the environment
(`PULLPRINT_SNMP_COMMUNITY`, `PULLPRINT_SNMP_AUTH_KEY`, `PULLPRINT_SNMP_PRIV_KEY`) instead of the
command line, where other users of the machine could read them in the process list.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
from typing import TYPE_CHECKING

from hardware.snmp.credentials import (
    AuthProtocol,
    CommunityCredentials,
    Credentials,
    PrivProtocol,
    SnmpVersion,
    UsmCredentials,
)
from tools.cli import CliError

if TYPE_CHECKING:
    from hardware.snmp.report import PrinterReport

DEFAULT_PORT = 161


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `printer inspect` to the `pullprint` command tree."""
    printer = sub.add_parser("printer", help="talk to one printer").add_subparsers(
        dest="printer_cmd", required=True
    )
    inspect = printer.add_parser(
        "inspect", help="what a printer reports over SNMP: model, serial, status, supplies"
    )
    inspect.add_argument("host", metavar="HOST[:PORT]", help="the printer (IPv6 as [addr]:port)")
    inspect.add_argument("--version", choices=("1", "2c", "3"), help="SNMP version")
    inspect.add_argument("--community", help="v1/v2c community (or env PULLPRINT_SNMP_COMMUNITY)")
    inspect.add_argument("--user", help="SNMPv3 user name")
    inspect.add_argument("--auth-key", help="SNMPv3 auth pass phrase (or PULLPRINT_SNMP_AUTH_KEY)")
    inspect.add_argument("--priv-key", help="SNMPv3 priv pass phrase (or PULLPRINT_SNMP_PRIV_KEY)")
    inspect.add_argument(
        "--auth-proto",
        default="SHA",
        choices=("MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"),
    )
    inspect.add_argument("--priv-proto", default="AES", choices=("DES", "AES", "AES192", "AES256"))
    inspect.add_argument("--context", default="", help="SNMPv3 context name")
    inspect.add_argument("--timeout", type=float, default=2.0, help="seconds per try")
    inspect.add_argument("--retries", type=int, default=1)
    inspect.add_argument("--json", action="store_true", help="print the report as one JSON object")
    inspect.add_argument(
        "--allow-network",
        action="store_true",
        help="allow a host that is not a loopback address",
    )
    inspect.set_defaults(func=_cmd_inspect)


def parse_host(text: str, *, allow_network: bool) -> tuple[str, int]:
    """`HOST[:PORT]` -> (address, port); refuses non-loopback hosts unless allowed.

    Host names other than `localhost` are refused without `--allow-network` because resolving
    them may already send a packet to the network.
    """
    host, port = text, DEFAULT_PORT
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise CliError(f"bad host {text!r}: missing ']'")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise CliError(f"bad host {text!r}")
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, text)
    if not host:
        raise CliError(f"bad host {text!r}")
    if host.lower() == "localhost":
        return "127.0.0.1", port
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if allow_network:
            return host, port
        raise CliError(
            f"refusing {host!r}: only loopback addresses without --allow-network "
            "(a host name may resolve to anything)"
        ) from None
    if not address.is_loopback and not allow_network:
        raise CliError(
            f"refusing {host}: not a loopback address; add --allow-network to query a real printer"
        )
    return str(address), port


def _port(text: str, whole: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise CliError(f"bad port in {whole!r}") from None
    if not 0 < port < 65536:
        raise CliError(f"bad port in {whole!r}")
    return port


def credentials_from_args(args: argparse.Namespace) -> Credentials:
    """The credentials the options (and environment) ask for."""
    version = args.version or ("3" if args.user else "2c")
    try:
        if version == "3":
            if not args.user:
                raise CliError("SNMPv3 needs --user (and --auth-key, --priv-key for authPriv)")
            return UsmCredentials(
                user=args.user,
                auth_key=args.auth_key or os.environ.get("PULLPRINT_SNMP_AUTH_KEY", ""),
                priv_key=args.priv_key or os.environ.get("PULLPRINT_SNMP_PRIV_KEY", ""),
                auth_protocol=AuthProtocol(args.auth_proto),
                priv_protocol=PrivProtocol(args.priv_proto),
                context_name=args.context,
            )
        if args.user:
            raise CliError("--user is for SNMPv3: drop --version or say --version 3")
        community = args.community or os.environ.get("PULLPRINT_SNMP_COMMUNITY", "")
        if not community:
            raise CliError(
                "say which credentials: --community NAME (v1/v2c) or --user NAME with keys (v3)"
            )
        return CommunityCredentials(community, SnmpVersion(version))
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def _cmd_inspect(args: argparse.Namespace) -> int:
    # pysnmp is imported only when a printer is asked (station extra; slow to import).
    from hardware.snmp.client import SnmpTarget  # noqa: PLC0415
    from hardware.snmp.errors import SnmpAuthError, SnmpError, SnmpTimeoutError  # noqa: PLC0415
    from hardware.snmp.session import SnmpSession  # noqa: PLC0415

    host, port = parse_host(args.host, allow_network=args.allow_network)
    credentials = credentials_from_args(args)
    target = SnmpTarget(host, credentials, port)
    # A report is about 20 requests, mostly concurrent: give it a few tries' worth of time.
    call_timeout_s = max(10.0, args.timeout * (args.retries + 1) * 4)
    try:
        with SnmpSession(
            timeout_s=args.timeout, retries=args.retries, call_timeout_s=call_timeout_s
        ) as session:
            report = session.read_printer(target)
    except SnmpTimeoutError as exc:
        hint = "" if credentials.version.value == "3" else ", and is the community right"
        raise CliError(
            f"{host}:{port} did not answer SNMP within {args.timeout:g} s x "
            f"{args.retries + 1} tries (is it on, is the port right{hint}?)"
        ) from exc
    except SnmpAuthError as exc:
        raise CliError(f"{host}:{port} refused the SNMPv3 credentials: {exc}") from exc
    except SnmpError as exc:
        raise CliError(f"{host}:{port}: SNMP error: {exc}") from exc
    if args.json:
        print(json.dumps({"host": host, "port": port, **report.to_json()}, ensure_ascii=False))
    else:
        print(format_report(f"{host}:{port}", report))
    return 0


def format_report(where: str, report: PrinterReport) -> str:
    """The report as lines for a person."""
    model = report.model or "unknown model"
    if report.make and not model.lower().startswith(report.make.lower()):
        model = f"{report.make} {model}"
    status = report.status_words
    detail = ", ".join(
        f"{name} {value.name.lower()}"
        for name, value in (("device", report.device_status), ("printer", report.printer_status))
        if value is not None
    )
    pages = "-"
    if report.page_count is not None:
        pages = f"{report.page_count} ({report.page_count_source})"
    lines = [
        f"Printer {where}",
        f"  Model        {model}",
        f"  Serial       {report.serial_number or '-'}",
        f"  MAC          {report.mac_address or '-'}",
        f"  Firmware     {report.firmware or '-'}",
        f"  Location     {report.location or '-'}",
        f"  Status       {status}" + (f" ({detail})" if detail else ""),
        f"  Errors       {', '.join(report.error_words) or 'none'}",
        f"  Pages        {pages}",
    ]
    if report.console_lines:
        lines.append(f"  Display      {' | '.join(report.console_lines)}")
    if report.supplies:
        lines.append("  Supplies")
        width = max(len(s.description) for s in report.supplies)
        for supply in report.supplies:
            lines.append(f"    {supply.description:<{width}}  {supply.level_words}")
    if report.alerts:
        lines.append("  Alerts")
        for alert in report.alerts:
            lines.append(f"    {alert.severity:<8}  {alert.words}")
    if report.unreadable:
        lines.append(f"  Unreadable   {', '.join(report.unreadable)} (timed out)")
    return "\n".join(lines)
