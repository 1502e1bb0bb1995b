"""The HTTP/1.1 side of the virtual printer: keep-alive, Content-Length and chunked bodies.

http.server parses request lines and headers but leaves the body to the handler, and does not
decode `Transfer-Encoding: chunked` (which IPP clients use to stream documents), so this module
does. It knows nothing of IPP: it hands the body, chunk by chunk, to a callable.

With an SSL context it serves HTTPS (`ipps://`): the accepted socket is wrapped in the serving
thread without a handshake, and the handshake runs in the connection's own handler thread, so a
slow or hostile client cannot stall the accept loop.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

IPP_PATH = "/ipp/print"


class IppHttpServer(ThreadingHTTPServer):
    """Serves POST /ipp/print by calling `handle(body chunks)`; its bytes are the response body.

    `handle` returning None leaves the request unanswered and drops the connection. On close the
    server shuts every open connection, then joins its handler threads, so none is left behind.
    """

    daemon_threads = False
    block_on_close = True

    def __init__(
        self,
        address: tuple[str, int],
        handle: Callable[[Iterator[bytes]], bytes | None],
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(address, _Handler)
        self.handle = handle
        self.ssl_context = ssl_context  # may be replaced while serving (a new printer key)
        self.requests_started = 0  # request lines read: 0 proves a client sent nothing
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        connection, address = self.socket.accept()
        context = self.ssl_context
        if context is not None:
            connection = context.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        return connection, address

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up during the TLS handshake (a pin mismatch does) is not a fault.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def count_request(self) -> None:
        with self._connections_lock:
            self.requests_started += 1

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):  # already closed by the peer
                    connection.shutdown(socket.SHUT_RDWR)


class _BadBodyError(Exception):
    """The HTTP body framing is broken (bad chunk size, body cut short)."""


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; decodes chunked bodies, which http.server leaves to us."""

    protocol_version = "HTTP/1.1"
    timeout = 30.0  # an idle keep-alive connection is dropped after this
    server: IppHttpServer

    def setup(self) -> None:
        self.server.track(self.request, open_=True)  # so stop() can cut a hanging handshake
        # Headers and body go out as two writes: without TCP_NODELAY the body waits for the
        # client's delayed ACK (about 40 ms per request on Linux), which real printers do not do.
        with contextlib.suppress(OSError):
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.settimeout(self.timeout)
                self.request.do_handshake()
            except BaseException:
                self.server.track(self.request, open_=False)  # finish() is not called
                raise
        super().setup()

    def parse_request(self) -> bool:
        self.server.count_request()
        return super().parse_request()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.request, open_=False)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._reply(404, b"", "text/plain")

    def do_POST(self) -> None:
        if urlsplit(self.path).path != IPP_PATH:
            self.close_connection = True
            self._reply(404, b"", "text/plain")
            return
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/ipp":
            self.close_connection = True
            self._reply(400, b"", "text/plain")
            return
        try:
            answer = self.server.handle(self._body())
        except _BadBodyError:
            self.close_connection = True
            self._reply(400, b"", "text/plain")
            return
        except Exception:
            logger.exception("IPP request handler failed")
            self.close_connection = True
            self._reply(500, b"", "text/plain")
            return
        if answer is None:  # fault "stop-responding": hang up without a word
            self.close_connection = True
            return
        self._reply(200, answer, "application/ipp")

    def _reply(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> Iterator[bytes]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            yield from self._chunked()
            return
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            block = self.rfile.read(min(remaining, 65536))
            if not block:
                raise _BadBodyError("body shorter than Content-Length")
            remaining -= len(block)
            yield block

    def _chunked(self) -> Iterator[bytes]:
        """RFC 9112 §7.1 chunked transfer coding: size line, data, CRLF; size 0 ends it."""
        while True:
            line = self.rfile.readline(1026)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise _BadBodyError("bad chunk size") from exc
            if size == 0:
                while self.rfile.readline(8194) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields, ignored
                return
            data = self.rfile.read(size)
            if len(data) != size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _BadBodyError("chunk cut short")
            yield data
