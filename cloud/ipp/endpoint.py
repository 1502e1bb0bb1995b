"""HTTP side of the IPP endpoint: `POST /ipp/print` (RFC 8010 §3.1, IPP over HTTP: RFC 8010 §4).

Order of work for each request, and why:

1. Authenticate (HTTP Basic with email + app passcode, or a `ppu_` Bearer token) before reading
   a byte of the body; wrong credentials, and anonymous requests for anything but
   Get-Printer-Attributes, get HTTP 401 with `WWW-Authenticate: Basic realm="PullPrint"`, which
   makes CUPS, macOS and iOS ask or retry. Get-Printer-Attributes is answered anonymously (with
   no job counts) because cupsd builds the queue's PPD for `lpadmin -m everywhere` with one
   anonymous request: it never uses the credentials in the device URI for that. The queue's
   capabilities are no secret; every job operation needs credentials.
2. Read the IPP header incrementally from the body stream, retrying the decoder only when the
   buffer has doubled (linear work), bounded by `DecodeLimits`; whatever follows the
   end-of-attributes tag is the start of the document.
3. Validate (RFC 8011 §4.1) and dispatch; Print-Job and Send-Document stream the rest of the body
   into the encrypted store. Every failure becomes an IPP status in an HTTP 200 response: a
   malformed request never causes an HTTP 500.

Static resources (the printer strings file, the icon, a short "about" page) are served without
credentials: clients such as cupsd fetch them anonymously and they hold nothing private.
"""

from __future__ import annotations

import base64
import binascii
import logging
import struct
import zlib
from collections.abc import AsyncIterator
from datetime import datetime

from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request, Response
from starlette.requests import ClientDisconnect

from cloud.errors import TruncatedUploadError, UnauthorizedError
from cloud.identity import UserPrincipal
from cloud.ipp.documents import DocumentStream, IppDocuments
from cloud.ipp.infra import install_infra
from cloud.ipp.operations import (
    IppCall,
    IppOperations,
    IppStatusError,
    check_request,
    respond_error,
    response,
)
from cloud.ipp.printer import ICON_PATH, MORE_INFO_PATH, STRINGS, STRINGS_PATH, QueueAddress
from cloud.service import CloudService
from hardware.ipp.codec import (
    DEFAULT_LIMITS,
    DecodeLimits,
    IppEncodeError,
    IppError,
    IppMessage,
    IppTruncatedError,
    decode_message,
    encode_message,
)
from hardware.ipp.enums import Operation, StatusCode

log = logging.getLogger(__name__)

IPP_PATH = "/ipp/print"
IPP_MEDIA_TYPE = "application/ipp"
REALM = "PullPrint"
_CHALLENGE = {"WWW-Authenticate": f'Basic realm="{REALM}"'}
_DOCUMENT_OPERATIONS = (Operation.PRINT_JOB, Operation.SEND_DOCUMENT)


def authenticate(service: CloudService, authorization: str) -> UserPrincipal:
    """Resolve an Authorization header (Basic email:passcode, or Bearer ppu_ token).

    Raises:
        UnauthorizedError: missing, malformed or wrong credentials.
    """
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return service.identity.authenticate_user(value)
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise UnauthorizedError("malformed Basic credentials") from None
        email, sep, passcode = decoded.partition(":")
        if sep and email and passcode:
            return service.passcodes.authenticate(email, passcode)
    raise UnauthorizedError("credentials are required")


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect as exc:
        raise TruncatedUploadError("the client went away mid-request") from exc


async def read_header(
    body: AsyncIterator[bytes], limits: DecodeLimits = DEFAULT_LIMITS
) -> tuple[IppMessage, bytes]:
    """Decode the IPP header from the front of `body`; returns it and the bytes after it.

    Raises:
        IppError: malformed, truncated (the body ended first) or over a limit.
    """
    buffer = bytearray()
    next_try = 0
    async for chunk in body:
        buffer += chunk
        if len(buffer) < next_try:
            continue
        try:
            message, used = decode_message(buffer, limits=limits)
        except IppTruncatedError:
            next_try = min(2 * len(buffer), limits.max_header_bytes + 1)
            continue
        return message, bytes(buffer[used:])
    message, used = decode_message(buffer, limits=limits)  # raises if still truncated
    return message, bytes(buffer[used:])


def _bare_request(head: bytes) -> IppMessage:
    """What can be echoed of a request that did not decode: its version and request-id."""
    if len(head) >= 8:
        major, minor, _, request_id = struct.unpack(">BBHi", head[:8])
        return IppMessage(0, request_id, [], (major, minor))
    return IppMessage(0, 0, [])


def _address(request: Request) -> QueueAddress:
    secure = request.url.scheme == "https"
    netloc = request.url.netloc
    return QueueAddress(
        printer_uri=f"{'ipps' if secure else 'ipp'}://{netloc}{IPP_PATH}",
        http_base=f"{'https' if secure else 'http'}://{netloc}",
        secure=secure,
    )


def _ipp_response(message: IppMessage) -> Response:
    try:
        content = encode_message(message)
    except IppEncodeError:
        log.exception("could not encode an IPP response")
        fallback = response(message, StatusCode.SERVER_ERROR_INTERNAL_ERROR, "internal error")
        fallback.operation_id_or_status_code = StatusCode.SERVER_ERROR_INTERNAL_ERROR
        content = encode_message(fallback)
    return Response(content=content, media_type=IPP_MEDIA_TYPE)


def _png_icon(size: int = 128) -> bytes:
    """A plain square PNG (the queue's icon), written by hand: no imaging library needed."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\x00" + bytes((0x1F, 0x4E, 0x79)) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )


class IppEndpoint:
    """The IPP endpoint of one cloud service."""

    def __init__(self, service: CloudService, limits: DecodeLimits = DEFAULT_LIMITS) -> None:
        self._service = service
        self._limits = limits
        self._operations = IppOperations(service)
        self._documents = IppDocuments(service)
        self.started_at: datetime = service.context.now()
        self.icon = _png_icon()

    async def handle(self, request: Request) -> Response:
        """Answer one POST to /ipp/print."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != IPP_MEDIA_TYPE:
            return Response("expected application/ipp\n", status_code=415)
        authorization = request.headers.get("authorization", "")
        user: UserPrincipal | None = None
        if authorization:
            try:
                user = await to_thread.run_sync(authenticate, self._service, authorization)
            except UnauthorizedError:
                return Response(status_code=401, headers=_CHALLENGE)
        body = _body(request)
        head = bytearray()

        async def recorded() -> AsyncIterator[bytes]:
            async for chunk in body:
                if len(head) < 8:
                    head.extend(chunk[:8])
                yield chunk

        stream = recorded()
        try:
            message, rest = await read_header(stream, self._limits)
        except IppError as exc:
            return _ipp_response(respond_error(_bare_request(bytes(head)), exc))
        except TruncatedUploadError:
            return Response(status_code=400)
        if user is None and message.operation_id_or_status_code != Operation.GET_PRINTER_ATTRIBUTES:
            return Response(status_code=401, headers=_CHALLENGE)
        return _ipp_response(await self._dispatch(request, user, message, rest, stream))

    async def _dispatch(
        self,
        request: Request,
        user: UserPrincipal | None,
        message: IppMessage,
        rest: bytes,
        body: AsyncIterator[bytes],
    ) -> IppMessage:
        code = message.operation_id_or_status_code
        try:
            check_request(message)
            call = IppCall(
                message,
                user,
                _address(request),
                self._service.context.now(),
                self.started_at,
            )
            if code in _DOCUMENT_OPERATIONS:
                doc = DocumentStream(rest, body)
                if code == Operation.PRINT_JOB:
                    return await self._documents.print_job(call, doc)
                return await self._documents.send_document(call, doc)
            if not self._operations.handles(code):
                raise IppStatusError(
                    StatusCode.SERVER_ERROR_OPERATION_NOT_SUPPORTED,
                    f"operation 0x{code:04x} is not supported",
                )
            return await to_thread.run_sync(self._operations.handle, call)
        except Exception as exc:
            return respond_error(message, exc)

    def router(self) -> APIRouter:
        """The routes: the IPP endpoint and its anonymous static resources."""
        router = APIRouter(tags=["ipp"])
        router.add_api_route(IPP_PATH, self.handle, methods=["POST"], include_in_schema=False)

        def strings() -> Response:
            return Response(STRINGS, media_type="text/strings; charset=utf-8")

        def icon() -> Response:
            return Response(self.icon, media_type="image/png")

        def about() -> Response:
            text = (
                "<!DOCTYPE html><title>PullPrint secure queue</title>"
                "<p>Jobs printed to this queue are held, encrypted, until you release them "
                "at any printer with your badge.</p>"
            )
            return Response(text, media_type="text/html; charset=utf-8")

        router.add_api_route(STRINGS_PATH, strings, methods=["GET"], include_in_schema=False)
        router.add_api_route(ICON_PATH, icon, methods=["GET"], include_in_schema=False)
        router.add_api_route(MORE_INFO_PATH, about, methods=["GET"], include_in_schema=False)
        return router


def install_ipp(app: FastAPI, service: CloudService) -> IppEndpoint:
    """Mount the IPP endpoint on `app`."""
    endpoint = IppEndpoint(service)
    app.include_router(endpoint.router())
    app.state.ipp = endpoint
    install_infra(app, service, endpoint.started_at)  # PWG 5100.18: /ipp/infra beside the queue
    return endpoint
