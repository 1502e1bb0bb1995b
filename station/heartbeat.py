"""The station's heartbeat: a signed keep-alive that also fetches a changed printer config.

Every `interval_s` the station POSTs `/api/v1/station/heartbeat` with the ETag of the config it
runs (`If-None-Match`) and, only when its health changed since the last report the cloud took, a
small health report; otherwise the body is empty. While the config is current the cloud answers a
bare `304` with the ETag, so a keep-alive is one small request and one small answer on a reused
connection (DESIGN.md: at most 1 MB a month; `pullprint bench-heartbeat` measures it). When an
admin changed the printer (or moved the station to another), the answer carries the new config:
the station builds the new printer transport, swaps it in between two deliveries (never during
one), and keeps the config and its ETag in `<spool>/printer-config.json` (mode 0600: it may hold
the SNMP community), so a restarted station runs the latest config at once.

The HTTP client here (`StationLink`) sends no header it does not need (no User-Agent, Accept,
Accept-Encoding or Content-Type): each would be paid for on every heartbeat. Requests are signed
like every station request (RFC 9421, `station.signing`). Nothing here logs a key, signature,
community or body.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from hardware.printers.transport import DeliveryResult, PrinterTransport, PrintJob
from hardware.snmp.report import PrinterReport
from station.cloud_http import (
    JSON_HEADERS,
    LEAN_HEADERS,
    CloudHttp,
    Response,
    Signer,
    finish,
    json_of,
    problem_error,
)
from station.config import PRINTER_MODES, PrinterConfig, StationConfig
from station.device_data import (
    DAY_S,
    IPP_ATTRIBUTES,
    DeviceDataLoop,
    DeviceMonitor,
    Reading,
    Schedule,
    reading_of_ipp,
    reading_of_report,
)
from station.errors import CloudError, CloudUnreachableError, ConfigError
from station.journal import ReleaseJournal

logger = logging.getLogger(__name__)

STATE_FILE = "printer-config.json"


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    """The cloud's answer: `changed` False means the config with `etag` is current."""

    changed: bool
    etag: str | None
    config: dict[str, Any] | None = None


class StationLink:
    """The station's small signed requests: heartbeat, device data, discovery reports.

    Args:
        base_url: the cloud.
        auth: `station.signing.SignatureAuth` of the paired station.
        timeout_s: connect and read timeout.
        ca_certs: a CA bundle to verify the cloud against instead of the system's trust store.
    """

    def __init__(
        self,
        base_url: str,
        auth: Signer,
        *,
        timeout_s: float = 10.0,
        ca_certs: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # The HTTP client's defaults (User-Agent, Accept-Encoding: identity) cost ~50 bytes on
        # every heartbeat and tell the cloud nothing it needs; HTTP/1.1 keeps the connection anyway.
        self._http = CloudHttp(
            base_url, timeout_s=timeout_s, signer=auth, headers=LEAN_HEADERS, ca_certs=ca_certs
        )

    def __repr__(self) -> str:
        return f"StationLink({self.base_url!r})"

    def close(self) -> None:
        """Close the pooled connection."""
        self._http.close()

    def heartbeat(self, etag: str | None, health: Mapping[str, Any] | None) -> HeartbeatReply:
        """One heartbeat.

        Raises:
            CloudUnreachableError: no connection, timeout, or a gateway error.
            CloudError: the cloud refused (revoked station, bad signature, ...).
        """
        body = _compact(health) if health is not None else b""
        headers = {"If-None-Match": etag} if etag else {}
        response = self._post("/api/v1/station/heartbeat", body, headers)
        try:
            if response.status == 304:
                return HeartbeatReply(False, response.headers.get("ETag") or etag)
            if response.status != 200:
                raise problem_error(response)
            data = json_of(response)
            return HeartbeatReply(True, str(data["etag"]), dict(data["config"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CloudError("malformed heartbeat answer from the cloud") from exc
        finally:
            finish(response)

    def upload_device_data(self, payload: Mapping[str, Any]) -> int:
        """Upload status, meters and/or alerts; returns the bytes of the body sent.

        Raises:
            CloudUnreachableError, CloudError: as for `heartbeat`.
        """
        body = _compact(payload)
        response = self._post("/api/v1/station/device-data", body, JSON_HEADERS)
        try:
            if response.status != 204:
                raise problem_error(response)
        finally:
            finish(response)
        return len(body)

    def report_discovered(self, devices: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
        """Upload discovery results; returns (new, updated) as the cloud counted them."""
        body = _compact({"devices": list(devices)})
        response = self._post("/api/v1/station/discovered", body, JSON_HEADERS)
        try:
            if response.status != 200:
                raise problem_error(response)
            data = json_of(response)
            return int(data["new"]), int(data["updated"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CloudError("malformed discovery answer from the cloud") from exc
        finally:
            finish(response)

    def _post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Response:
        return self._http.request("POST", path, body=body, headers=headers)


def _compact(data: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(data), separators=(",", ":"), ensure_ascii=False).encode()


# -- the printer config ------------------------------------------------------------------------


def printer_config_from(document: Mapping[str, Any], base: PrinterConfig) -> PrinterConfig:
    """The `PrinterConfig` a cloud config document describes (timeouts kept from `base`).

    Raises:
        ConfigError: the document names no printer or an unusable one.
    """
    printer = document.get("printer")
    if not isinstance(printer, Mapping):
        raise ConfigError("the cloud assigned this station no printer")
    try:
        mode = printer.get("mode")
        if mode is not None and mode not in PRINTER_MODES:
            raise ConfigError(f"unknown printer mode {mode!r}")
        return dataclasses.replace(
            base,
            uri=str(printer["uri"]),
            pin=_opt(printer.get("pin")),
            mode=_opt(mode),
            ipp_uri=_opt(printer.get("ipp_uri")),
            raw_uri=_opt(printer.get("raw_uri")),
            raw_pjl=printer.get("raw_pjl", True) is not False,
            snmp_community=_opt(printer.get("snmp_community")),
        )
    except KeyError as exc:
        raise ConfigError("the printer config has no URI") from exc


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class AppliedConfig:
    """The config a station runs, as the cloud sent it, with its ETag."""

    etag: str
    document: dict[str, Any]


def load_applied(path: Path) -> AppliedConfig | None:
    """The config applied before a restart, or None (none yet, or unreadable: ask again)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return AppliedConfig(str(data["etag"]), dict(data["document"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("ignoring the saved printer config %s: %s", path, type(exc).__name__)
        return None


def save_applied(path: Path, applied: AppliedConfig) -> None:
    """Write the applied config atomically, mode 0600 (it may hold the SNMP community)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"etag": applied.etag, "document": applied.document}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class SwappableTransport:
    """A `PrinterTransport` whose printer can be replaced between deliveries, never during one.

    Everything else (`check_ready`, `job_outcome`, `last_uri`) is the current transport's, so
    `getattr(transport, "job_outcome", None)` still tells what the printer can do.
    """

    def __init__(self, inner: PrinterTransport) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    @property
    def inner(self) -> PrinterTransport:
        """The transport in use."""
        return self._inner

    @property
    def uri(self) -> str:
        """The current printer's URI."""
        return self._inner.uri

    @uri.setter
    def uri(self, value: str) -> None:
        # The port declares `uri` a plain attribute; writing it writes the current transport's.
        self._inner.uri = value

    def deliver(
        self,
        job: PrintJob,
        document: Iterable[bytes],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> DeliveryResult:
        """Deliver through the current transport; a swap waits until this returns."""
        with self._lock:
            return self._inner.deliver(job, document, on_progress=on_progress)

    def swap(self, new: PrinterTransport) -> None:
        """Use `new` from the next delivery on, and close the old transport."""
        with self._lock:
            old, self._inner = self._inner, new
        try:
            old.close()
        except Exception:
            logger.exception("closing the previous printer transport failed")

    def close(self) -> None:
        """Close the current transport."""
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._inner, name)


# -- the loop ----------------------------------------------------------------------------------


class Heartbeat:
    """Sends heartbeats every `interval_s` on its own thread; applies changed configs.

    Args:
        link: the signed client.
        interval_s: seconds between heartbeats.
        state_file: where the applied config is kept.
        apply: builds and swaps in the printer for a new config document; raises ConfigError
            for a config it cannot use (the ETag is then not taken, so it is fetched again).
        health: the current health report (small; sent only when it differs from the last).
        etag: the ETag of the config running now (from `load_applied`), or None.
    """

    def __init__(
        self,
        link: StationLink,
        *,
        interval_s: float,
        state_file: Path,
        apply: Callable[[dict[str, Any]], None],
        health: Callable[[], dict[str, Any]],
        etag: str | None = None,
    ) -> None:
        self.link = link
        self.interval_s = interval_s
        self._state_file = state_file
        self._apply = apply
        self._health = health
        self.etag = etag
        self._reported: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0
        self.applied = 0
        self.last_error: str | None = None
        # Told whether each beat reached the cloud: the station's outage handling uses the
        # heartbeat as its idle-time probe instead of pinging on its own (the keep-alive budget).
        self.on_unreachable: Callable[[BaseException], None] | None = None
        self.on_answered: Callable[[], None] | None = None

    def beat(self) -> bool:
        """One heartbeat now; True when a new config was applied.

        Raises:
            CloudError: the cloud could not be reached or refused.
        """
        health = self._health()
        send = health if health != self._reported else None
        reply = self.link.heartbeat(self.etag, send)
        if send is not None:
            self._reported = health
        if not reply.changed or reply.config is None or reply.etag is None:
            self.beats += 1
            return False
        self._apply(reply.config)
        self.etag = reply.etag
        self.applied += 1
        self.beats += 1  # counted once the config is in use (tests wait on it)
        try:
            save_applied(self._state_file, AppliedConfig(reply.etag, reply.config))
        except OSError as exc:
            logger.warning("cannot keep the printer config in %s: %s", self._state_file, exc)
        logger.info("applied printer config %s from the cloud", reply.etag)
        return True

    def start(self) -> None:
        """Beat at once, then every `interval_s`, until `stop()`."""
        if self._thread is not None:
            raise RuntimeError("heartbeat already started")
        self._thread = threading.Thread(target=self._run, name="station-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and close the link."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.link.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.beat()
                self.last_error = None
                if self.on_answered is not None:
                    self.on_answered()
            except CloudUnreachableError as exc:
                self.last_error = str(exc)
                logger.warning("heartbeat: %s", exc)
                if self.on_unreachable is not None:
                    self.on_unreachable(exc)
            except (CloudError, ConfigError) as exc:
                # The station keeps printing with the config it has; the next beat retries.
                self.last_error = str(exc)
                logger.warning("heartbeat: %s", exc)
            except Exception:
                logger.exception("heartbeat failed")
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))


# -- wiring into a station ---------------------------------------------------------------------


class _Running(Protocol):
    """What `attach` needs of a `station.app.Station` (no import: app imports this module)."""

    transport: PrinterTransport
    spool_dir: Path
    background: list[Any]
    journal: ReleaseJournal


class CloudSync:
    """The heartbeat and the device data of one station, sharing its current printer config."""

    def __init__(self, station: _Running, config: StationConfig, link: StationLink) -> None:
        self.config = config
        self.printer = config.printer
        self.link = link
        self.started = int(time.time())
        self._station = station
        self._snmp: Any = None
        self._ipp: Any = None
        self.monitor: DeviceMonitor | None = None
        state_file = station.spool_dir / STATE_FILE
        applied = load_applied(state_file)
        swappable = SwappableTransport(station.transport)
        station.transport = swappable
        self.transport = swappable
        etag = None
        if applied is not None:
            try:
                self.apply(applied.document)
                etag = applied.etag
            except ConfigError as exc:
                logger.warning("the saved printer config is unusable (%s); asking again", exc)
        self.heartbeat = Heartbeat(
            link,
            interval_s=config.devices.heartbeat_s,
            state_file=state_file,
            apply=self.apply,
            health=self.health,
            etag=etag,
        )
        self.device_loop: DeviceDataLoop | None = None
        if config.devices.poll_s > 0:
            schedule = Schedule(
                poll_s=config.devices.poll_s,
                status_s=config.devices.status_s or DAY_S,
                meters_s=config.devices.meters_s or DAY_S,
            )
            self.monitor = DeviceMonitor(
                self.read_printer, link.upload_device_data, schedule, active=self.readable
            )
            self.device_loop = DeviceDataLoop(self.monitor, close=self._close_snmp)

    def apply(self, document: Mapping[str, Any]) -> None:
        """Build the printer the document describes and use it from the next delivery on."""
        from station.parts import build_transport  # noqa: PLC0415 - parts imports the printer stack

        if document.get("printer") is None:
            # Not (yet) in the registry: the printer of station.toml stays.
            logger.info("no registered printer for this station: keeping station.toml's")
            return
        printer = printer_config_from(document, self.config.printer)
        new = build_transport(dataclasses.replace(self.config, printer=printer))
        self.transport.swap(new)
        self.printer = printer
        self._close_ipp()
        if self.monitor is not None:
            self.monitor.reset()  # perhaps another printer: the cloud gets all of it again

    def health(self) -> dict[str, Any]:
        """The health report: start time, version, printer status, releases not yet settled."""
        report: dict[str, Any] = {"started": self.started, "version": _version()}
        if self.monitor is not None and self.monitor.status_words is not None:
            report["printer"] = self.monitor.status_words[:200]
        unsettled = len(self._station.journal.entries())
        if unsettled:
            report["unsettled"] = unsettled
        return report

    def _ipp_uri(self) -> str | None:
        printer = self.printer
        for uri in (printer.uri, printer.ipp_uri):
            if uri and uri.startswith(("ipp://", "ipps://")):
                return uri
        return None

    def readable(self) -> bool:
        """Whether the printer can be read: SNMP configured, or an IPP way to it."""
        return self.printer.snmp_community is not None or self._ipp_uri() is not None

    def read_printer(self) -> Reading:
        """Read the current printer: SNMP when it has a community, else IPP printer attributes.

        Raises:
            HardwareError: the printer does not answer (or cannot be read at all).
        """
        from hardware.errors import HardwareError  # noqa: PLC0415

        printer = self.printer
        if printer.snmp_community is not None:
            return reading_of_report(self._read_snmp(printer.snmp_community))
        uri = self._ipp_uri()
        if uri is None:
            raise HardwareError("the printer can be read neither by SNMP nor by IPP")
        if self._ipp is None:
            from hardware.printers.registry import transport_for_uri  # noqa: PLC0415

            # Its own connection: reading never waits for (or disturbs) a delivery.
            self._ipp = transport_for_uri(uri, timeout_s=10.0, pin=printer.pin)
        return reading_of_ipp(self._ipp.printer_attributes(*IPP_ATTRIBUTES))

    def _read_snmp(self, community: str) -> PrinterReport:
        from hardware.errors import HardwareError  # noqa: PLC0415
        from hardware.snmp.client import SnmpTarget  # noqa: PLC0415 - pysnmp loads when used
        from hardware.snmp.credentials import CommunityCredentials  # noqa: PLC0415
        from hardware.snmp.session import SnmpSession  # noqa: PLC0415

        printer = self.printer
        host = urlsplit(printer.raw_uri or printer.ipp_uri or printer.uri).hostname
        if not host:
            raise HardwareError("the printer URI names no host to ask over SNMP")
        if self._snmp is None:
            self._snmp = SnmpSession(timeout_s=2.0, retries=1, max_in_flight=4)
        report: PrinterReport = self._snmp.read_printer(
            SnmpTarget(host, CommunityCredentials(community), self.config.devices.snmp_port)
        )
        return report

    def _close_ipp(self) -> None:
        if self._ipp is not None:
            self._ipp.close()
            self._ipp = None

    def start(self) -> None:
        """Start the heartbeat (it beats at once) and the device data polling (each unless 0)."""
        if self.heartbeat.interval_s > 0:
            self.heartbeat.start()
        if self.device_loop is not None:
            self.device_loop.start()

    def stop(self) -> None:
        """Stop both and close the link."""
        if self.device_loop is not None:
            self.device_loop.stop()
        self.heartbeat.stop()

    def _close_snmp(self) -> None:
        self._close_ipp()
        if self._snmp is not None:
            self._snmp.close()
            self._snmp = None


def attach(station: _Running, config: StationConfig) -> CloudSync:
    """Give a built station its heartbeat and device data (started and stopped with it).

    Raises:
        ConfigError: the station is not paired (no station id or key).
    """
    from station.signing import SignatureAuth, load_identity  # noqa: PLC0415

    if config.cloud.station_id is None or config.cloud.key_file is None:
        raise ConfigError("[cloud] station_id and the station key are set at pairing")
    auth = SignatureAuth(load_identity(config.cloud.key_file), config.cloud.station_id)
    link = StationLink(config.cloud.url, auth, timeout_s=config.cloud.timeout_s)
    sync = CloudSync(station, config, link)
    station.background.append(sync)
    return sync


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("pullprint")
    except PackageNotFoundError:
        return "dev"
