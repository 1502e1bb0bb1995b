"""Running the cloud under uvicorn: `serve()` for production, `start_in_thread()` for the demo
and tests (a real socket on 127.0.0.1, an ephemeral port by default).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI

from cloud.app import create_app
from cloud.config import CloudConfig

log = logging.getLogger(__name__)


def serve(config: CloudConfig, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve the cloud until interrupted (blocking).

    The access log is off: request lines carry document names in query strings, which sites may
    choose not to record.
    """
    uvicorn.run(create_app(config), host=host, port=port, access_log=False)


@dataclass
class RunningServer:
    """A uvicorn server in a daemon thread; `stop()` shuts it down (lifespan included)."""

    app: FastAPI
    host: str
    port: int
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:54321`."""
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("server thread did not stop within %ss", timeout_s)


def start_in_thread(
    app: FastAPI, host: str = "127.0.0.1", port: int = 0, *, timeout_s: float = 10.0
) -> RunningServer:
    """Start `app` under uvicorn in a daemon thread and wait until it accepts requests.

    uvicorn binds the socket itself (port 0 gives an ephemeral port, read back once it listens).
    Handing it a socket bound here instead costs about 40 ms per keep-alive request: connections
    accepted that way miss TCP_NODELAY, and Nagle meets the client's delayed ACK.

    Raises:
        RuntimeError: the server did not start within `timeout_s`.
    """
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the server on {host}:{port} did not start")
        time.sleep(0.01)
    bound_port: int = server.servers[0].sockets[0].getsockname()[1]
    return RunningServer(app, host, bound_port, server, thread)
