"""Running the cloud under uvicorn: `serve()` for production, `start_in_thread()` for the demo
and tests (a real socket on 127.0.0.1, an ephemeral port by default).
"""

from __future__ import annotations

import logging
import socket
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

    The socket is bound here, before the thread starts, so port 0 yields the real port at once
    and no other process can take it in between.

    Raises:
        RuntimeError: the server did not start within `timeout_s`.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port: int = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{bound_port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the server on {host}:{bound_port} did not start")
        time.sleep(0.01)
    return RunningServer(app, host, bound_port, server, thread)
