"""Running the cloud under uvicorn: `serve()` for production, `start_in_thread()` for the demo
and tests (a real socket on 127.0.0.1, an ephemeral port by default).

With TLS (`cloud.tls`), the certificate is made ready before the socket opens, and a
`CertificateRotator` thread calls `refresh()` periodically: a managed certificate is renewed
before it expires and a replaced certificate file is picked up, without a restart, never moving
the expiry backwards.

uvicorn picks httptools and uvloop when installed (the `cloud` extra pins them): its pure-Python
HTTP parser and the stock event loop cost about twice the CPU per IPP job.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI

from cloud.app import create_app
from cloud.config import CloudConfig
from cloud.tls import ServerCertificates, TlsSettings

log = logging.getLogger(__name__)

# How often a running server looks at its certificate: renewal is due weeks ahead, and a
# replaced file (or one `pullprint tls renew` wrote) is taken within the hour, no restart needed.
ROTATION_CHECK_S = 3600.0


class CertificateRotator:
    """A daemon thread that calls `certificates.refresh()` every `interval_s`."""

    def __init__(self, certificates: ServerCertificates, interval_s: float = ROTATION_CHECK_S):
        self._certificates = certificates
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tls-rotator", daemon=True)

    def start(self) -> None:
        """Start checking."""
        self._thread.start()

    def stop(self) -> None:
        """Stop checking (waits for a refresh in progress)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._certificates.refresh()
            except Exception:  # keep serving the current certificate; say why
                log.exception("TLS certificate check failed")


def uvicorn_config(
    app: FastAPI, host: str, port: int, certificates: ServerCertificates | None = None
) -> uvicorn.Config:
    """The uvicorn settings shared by `serve` and `start_in_thread`.

    The access log is off: request lines carry document names in query strings, which sites may
    choose not to record.
    """

    def context(_config: uvicorn.Config, _default: object) -> ssl.SSLContext:
        assert certificates is not None
        return certificates.server_context()

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        ssl_context_factory=context if certificates is not None else None,
    )


def prepare_tls(config: CloudConfig) -> ServerCertificates | None:
    """The server's certificates, ready to serve, or None when TLS is off.

    Raises:
        TlsCertificateError / CertificateRollbackError: the certificate cannot be served.
    """
    settings = TlsSettings.from_config(config)
    if settings is None:
        return None
    certificates = ServerCertificates(settings)
    info = certificates.prepare()
    log.info("serving TLS for %s until %s", sorted(info.names), info.not_after.isoformat())
    return certificates


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(config: CloudConfig, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve the cloud until interrupted (blocking), over TLS when the config says so.

    Raises:
        TlsCertificateError: TLS is configured and the certificate cannot be served.
    """
    certificates = prepare_tls(config)
    if certificates is None and not _is_loopback(host):
        # Basic credentials (email + app passcode) would cross the network in the clear.
        log.warning("serving plain HTTP on %s: set tls (ipps://) for anything but loopback", host)
    server = uvicorn.Server(uvicorn_config(create_app(config), host, port, certificates))
    rotator = CertificateRotator(certificates) if certificates is not None else None
    if rotator is not None:
        rotator.start()
    try:
        server.run()
    finally:
        if rotator is not None:
            rotator.stop()


@dataclass
class RunningServer:
    """A uvicorn server in a daemon thread; `stop()` shuts it down (lifespan included)."""

    app: FastAPI
    host: str
    port: int
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    certificates: ServerCertificates | None = field(default=None, repr=False)
    _rotator: CertificateRotator | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:54321` (`https://` with TLS)."""
        scheme = "https" if self.certificates is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread."""
        if self._rotator is not None:
            self._rotator.stop()
        self._server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("server thread did not stop within %ss", timeout_s)


def start_in_thread(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    timeout_s: float = 10.0,
    certificates: ServerCertificates | None = None,
    rotation_check_s: float | None = None,
) -> RunningServer:
    """Start `app` under uvicorn in a daemon thread and wait until it accepts requests.

    uvicorn binds the socket itself (port 0 gives an ephemeral port, read back once it listens).
    Handing it a socket bound here instead costs about 40 ms per keep-alive request: connections
    accepted that way miss TCP_NODELAY, and Nagle meets the client's delayed ACK.

    `certificates` (prepared) serves TLS; `rotation_check_s` also starts a `CertificateRotator`.

    Raises:
        RuntimeError: the server did not start within `timeout_s`.
    """
    server = uvicorn.Server(uvicorn_config(app, host, port, certificates))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the server on {host}:{port} did not start")
        time.sleep(0.01)
    bound_port: int = server.servers[0].sockets[0].getsockname()[1]
    rotator = None
    if certificates is not None and rotation_check_s is not None:
        rotator = CertificateRotator(certificates, rotation_check_s)
        rotator.start()
    return RunningServer(app, host, bound_port, server, thread, certificates, rotator)
