"""Counting the pages of a document as it streams in (sans-I/O: bytes in, a page count out).

A counter is fed the plaintext chunk by chunk during the upload and keeps memory bounded: it never
holds the document, only a small window, a page header, or (for PDF) the numbers of the page
objects it has seen. `close()` returns the page count, or None when the format is unknown or the
document does not parse (the count is metadata: a document we cannot count is still parked, just
without a page count).

* PWG raster (PWG 5102.4) and Apple raster (URF): every page is a page header followed by its
  compressed lines; the compression (a line-repeat byte, then PackBits-like pixel runs, 128
  filling the rest of the line with white) is walked to find where each page ends, so the count
  is exact and a document cut inside a page is reported as unparseable. (URF's file header also
  declares a page count; the walked count is what we keep, and a disagreement makes it None.)
* JPEG: one page (the SOI marker is checked).
* PDF: no maintained Python PDF library parses from a stream (pypdf and pikepdf need a seekable
  file), so this is a small hand-written scanner. It follows `N G obj ... endobj` objects, skips
  stream data by its `/Length` (or up to `endstream` when the length is indirect), and inflates
  `/Type /ObjStm` object streams (PDF 1.5+ files keep their page objects compressed there). The
  latest definition of each object number wins (incremental updates), and the answer is the
  `/Count` of the page-tree root (a `/Type /Pages` object without `/Parent`), falling back to the
  number of `/Type /Page` objects. Encrypted object streams and exotic filters give None.
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import Protocol

PDF_FORMAT = "application/pdf"
PWG_FORMAT = "image/pwg-raster"
URF_FORMAT = "image/urf"
JPEG_FORMAT = "image/jpeg"
COUNTED_FORMATS = frozenset({PDF_FORMAT, PWG_FORMAT, URF_FORMAT, JPEG_FORMAT})

_SNIFF_BYTES = 8
_MAX_DICT_BYTES = 64 * 1024  # a page dictionary is small; a larger object is classified by its head
_MAX_OBJSTM_INFLATED = 64 * 1024 * 1024  # stop inflating one object stream past this (zip bombs)
_MAX_OBJSTM_HEADER = 1024 * 1024


class PageCounter(Protocol):
    """Fed a document chunk by chunk; `close()` gives its pages (None: unknown)."""

    def feed(self, data: bytes) -> None: ...

    def close(self) -> int | None: ...


def page_counter_for(document_format: str) -> PageCounter:
    """A counter for this media type; any other type is sniffed from its first bytes."""
    media = document_format.split(";", 1)[0].strip().lower()
    if media == PDF_FORMAT:
        return PdfPageCounter()
    if media == PWG_FORMAT:
        return RasterPageCounter(urf=False)
    if media == URF_FORMAT:
        return RasterPageCounter(urf=True)
    if media == JPEG_FORMAT:
        return JpegPageCounter()
    return SniffingPageCounter()


def sniff_format(head: bytes) -> str | None:
    """The media type the first bytes announce, if one of the counted formats."""
    if head.startswith(b"%PDF-"):
        return PDF_FORMAT
    if head.startswith(b"RaS2"):
        return PWG_FORMAT
    if head.startswith(b"UNIRAST\x00"):
        return URF_FORMAT
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG_FORMAT
    return None


class SniffingPageCounter:
    """For an untyped document: looks at the first bytes, then counts as that format."""

    def __init__(self) -> None:
        self._head = bytearray()
        self._inner: PageCounter | None = None
        self._unknown = False

    def feed(self, data: bytes) -> None:
        """Buffer the first bytes until the format is known, then pass everything on."""
        if self._unknown:
            return
        if self._inner is not None:
            self._inner.feed(data)
            return
        self._head += data
        if len(self._head) >= _SNIFF_BYTES:
            self._decide()

    def _decide(self) -> None:
        media = sniff_format(bytes(self._head))
        if media is None:
            self._unknown = True
        else:
            self._inner = page_counter_for(media)
            self._inner.feed(bytes(self._head))
        self._head.clear()

    def close(self) -> int | None:
        """The inner counter's answer; None if the format was not recognised."""
        if self._inner is None and not self._unknown and self._head:
            self._decide()
        return self._inner.close() if self._inner is not None else None


class JpegPageCounter:
    """A JPEG image is one page."""

    def __init__(self) -> None:
        self._head = b""

    def feed(self, data: bytes) -> None:
        """Keep the first bytes, for the magic check."""
        if len(self._head) < 3:
            self._head = (self._head + data)[:3]

    def close(self) -> int | None:
        """1 for a JPEG (SOI marker), None otherwise."""
        return 1 if self._head == b"\xff\xd8\xff" else None


# -- PWG raster and URF ---------------------------------------------------------------------

_PWG_SYNC = b"RaS2"
_PWG_HEADER_BYTES = 1796
_URF_FILE_HEADER = struct.Struct(">8sI")
_URF_PAGE_HEADER_BYTES = 32


class RasterPageCounter:
    """Exact page count of PWG raster (`RaS2`) or URF (`UNIRAST`), walking each page's lines.

    States: the file header, then per page: its header, then its lines (each a repeat byte and
    pixel runs covering the line's width). Only the current page header and a few bytes are kept.
    """

    def __init__(self, *, urf: bool) -> None:
        self._urf = urf
        self._buf = bytearray()
        self._phase = "file"
        self._pages = 0
        self._declared: int | None = None
        self._failed = False
        # per page
        self._unit = 1  # bytes per pixel (1 for fewer than 8 bits per pixel)
        self._units_per_line = 0
        self._lines_left = 0
        # per line
        self._units_left = 0
        self._in_line = False

    def feed(self, data: bytes) -> None:
        """Consume what can be parsed; keep only an incomplete header or run."""
        if self._failed:
            return
        self._buf += data
        try:
            self._run()
        except ValueError:
            self._failed = True
            self._buf.clear()

    def close(self) -> int | None:
        """The pages, or None if the stream was malformed or ended inside a page."""
        if self._failed or self._phase not in ("page", "file") or self._buf:
            return None
        if self._phase == "file":
            return None  # not even a file header
        if self._declared is not None and self._declared not in (0, self._pages):
            return None
        return self._pages

    def _run(self) -> None:
        buf = self._buf
        pos = 0
        while True:
            if self._phase == "file":
                size = _URF_FILE_HEADER.size if self._urf else len(_PWG_SYNC)
                if len(buf) - pos < size:
                    break
                if self._urf:
                    magic, declared = _URF_FILE_HEADER.unpack_from(buf, pos)
                    if magic != b"UNIRAST\x00":
                        raise ValueError("not URF")
                    self._declared = declared
                elif bytes(buf[pos : pos + 4]) != _PWG_SYNC:
                    raise ValueError("not PWG raster")
                pos += size
                self._phase = "page"
            elif self._phase == "page":
                size = _URF_PAGE_HEADER_BYTES if self._urf else _PWG_HEADER_BYTES
                if len(buf) - pos < size:
                    break
                self._start_page(bytes(buf[pos : pos + size]))
                pos += size
                self._phase = "lines" if self._lines_left else "page"
                if not self._lines_left:
                    self._pages += 1
            else:
                pos = self._lines(buf, pos)
                if self._lines_left:
                    break  # need more bytes
                self._pages += 1
                self._phase = "page"
        del buf[:pos]

    def _start_page(self, header: bytes) -> None:
        if self._urf:
            bpp = header[0]
            width, height = struct.unpack_from(">II", header, 12)
            self._unit = max(1, bpp // 8)
            self._units_per_line = width
        else:
            width, height = struct.unpack_from(">II", header, 372)
            bpp, bytes_per_line = struct.unpack_from(">II", header, 388)
            if bpp == 0 or bytes_per_line == 0:
                raise ValueError("bad page header")
            self._unit = max(1, bpp // 8)
            if bytes_per_line % self._unit:
                raise ValueError("bad line length")
            self._units_per_line = bytes_per_line // self._unit
            if bpp >= 8 and self._units_per_line != width:
                raise ValueError("line length does not match the width")
        if self._units_per_line == 0 and height:
            raise ValueError("empty lines")
        self._lines_left = height
        self._in_line = False

    def _lines(self, buf: bytearray, pos: int) -> int:
        """Walk compressed lines from `pos`; return where it stopped (line data may be split)."""
        end = len(buf)
        unit = self._unit
        while self._lines_left:
            if not self._in_line:
                if pos >= end:
                    return pos
                repeat = buf[pos] + 1
                if repeat > self._lines_left:
                    raise ValueError("line repeat past the end of the page")
                pos += 1
                self._in_line = True
                self._units_left = self._units_per_line
                self._repeat = repeat
            while self._units_left:
                if pos >= end:
                    return pos
                op = buf[pos]
                if op == 128:  # the rest of the line is white
                    pos += 1
                    self._units_left = 0
                    break
                if op < 128:
                    count, need = op + 1, 1 + unit
                else:
                    count = 257 - op
                    need = 1 + count * unit
                if count > self._units_left:
                    raise ValueError("pixel run past the end of the line")
                if end - pos < need:
                    return pos
                pos += need
                self._units_left -= count
            self._in_line = False
            self._lines_left -= self._repeat
        return pos


# -- PDF ------------------------------------------------------------------------------------

_OBJ_RE = re.compile(rb"(\d{1,10})\s+\d{1,5}\s+obj\b")
_BODY_END_RE = re.compile(rb"\bstream\r?\n|\bstream\b|\bendobj\b")
_TYPE_PAGE_RE = re.compile(rb"/Type\s*/Page(?![A-Za-z0-9#])")
_TYPE_PAGES_RE = re.compile(rb"/Type\s*/Pages(?![A-Za-z0-9#])")
_TYPE_OBJSTM_RE = re.compile(rb"/Type\s*/ObjStm(?![A-Za-z0-9#])")
_COUNT_RE = re.compile(rb"/Count\s+(\d{1,10})")
_PARENT_RE = re.compile(rb"/Parent\s")
_LENGTH_RE = re.compile(rb"/Length\s+(\d{1,12})(?!\s+\d+\s+R)")
_FIRST_RE = re.compile(rb"/First\s+(\d{1,10})")
_N_RE = re.compile(rb"/N\s+(\d{1,10})")
_FILTER_RE = re.compile(rb"/Filter\s*(\[?)\s*/(\w+)\s*(\]?)")
_ENDSTREAM = b"endstream"
_KEEP_TAIL = 64


class PdfPageCounter:
    """Counts pages of a PDF streamed in pieces (see the module docstring)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._mode = "outside"
        self._obj = 0
        self._body = bytearray()
        self._stream_left: int | None = None
        self._objstm: _ObjStmParser | None = None
        self._seq = 0
        # object number -> (sequence, kind, count, has_parent) for page-tree objects only
        self._tree: dict[int, tuple[int, str, int, bool]] = {}
        self._head_checked = False
        self._failed = False

    def feed(self, data: bytes) -> None:
        """Scan what has arrived; keep at most a small tail (or one dictionary) buffered."""
        if self._failed:
            return
        self._buf += data
        if not self._head_checked:
            if len(self._buf) < 5:
                return
            if not self._buf.startswith(b"%PDF-"):
                self._failed = True
                return
            self._head_checked = True
        self._run()

    def close(self) -> int | None:
        """The root's /Count, else the number of page objects; None if no page was found."""
        if self._failed:
            return None
        if self._objstm is not None:
            self._finish_objstm()
        roots = [
            (seq, count)
            for (seq, kind, count, parent) in self._tree.values()
            if kind == "pages" and not parent
        ]
        if roots:
            return max(roots)[1]
        pages = sum(1 for _, kind, _, _ in self._tree.values() if kind == "page")
        return pages or None

    # -- the scanner ---------------------------------------------------------------------

    def _run(self) -> None:
        buf = self._buf
        pos = 0
        while True:
            if self._mode == "outside":
                match = _OBJ_RE.search(buf, pos)
                if match is None:
                    pos = max(pos, len(buf) - _KEEP_TAIL)
                    break
                self._obj = int(match.group(1))
                self._body.clear()
                pos = match.end()
                self._mode = "body"
            elif self._mode == "body":
                match = _BODY_END_RE.search(buf, pos)
                if match is None:
                    keep_from = max(pos, len(buf) - 16)
                    self._add_body(buf[pos:keep_from])
                    pos = keep_from
                    break
                self._add_body(buf[pos : match.start()])
                keyword = match.group(0)
                pos = match.end()
                self._classify(self._obj, bytes(self._body))
                if keyword.startswith(b"endobj"):
                    self._mode = "outside"
                    continue
                if keyword == b"stream" and pos < len(buf) and buf[pos : pos + 1] == b"\r":
                    pos += 1  # "stream\r" then (maybe) "\n" is handled next round
                self._start_stream(bytes(self._body))
            else:
                pos = self._stream(buf, pos)
                if self._mode == "stream":
                    break
        del buf[:pos]

    def _add_body(self, data: bytes | bytearray) -> None:
        room = _MAX_DICT_BYTES - len(self._body)
        if room > 0:
            self._body += data[:room]

    def _start_stream(self, body: bytes) -> None:
        length = _LENGTH_RE.search(body)
        self._stream_left = int(length.group(1)) if length else None
        self._objstm = None
        if _TYPE_OBJSTM_RE.search(body):
            filters = _FILTER_RE.search(body)
            first = _FIRST_RE.search(body)
            count = _N_RE.search(body)
            flate = filters is not None and filters.group(2) == b"FlateDecode"
            # One filter: a bare name, or an array holding just that name.
            single = filters is not None and (not filters.group(1) or filters.group(3) == b"]")
            if flate and single and first and count:
                self._objstm = _ObjStmParser(int(count.group(1)), int(first.group(1)), self)
        self._mode = "stream"
        self._stream_started = False

    def _stream(self, buf: bytearray, pos: int) -> int:
        if not self._stream_started:
            if pos >= len(buf):
                return pos
            if buf[pos : pos + 1] == b"\n":
                pos += 1
            self._stream_started = True
        if self._stream_left is not None:
            take = min(len(buf) - pos, self._stream_left)
            self._stream_data(bytes(buf[pos : pos + take]))
            pos += take
            self._stream_left -= take
            if self._stream_left == 0:
                self._end_stream()
            return pos
        found = buf.find(_ENDSTREAM, pos)
        if found < 0:
            keep_from = max(pos, len(buf) - len(_ENDSTREAM))
            self._stream_data(bytes(buf[pos:keep_from]))
            return keep_from
        self._stream_data(bytes(buf[pos:found]))
        self._end_stream()
        return found + len(_ENDSTREAM)

    def _stream_data(self, data: bytes) -> None:
        if self._objstm is not None and data and not self._objstm.feed(data):
            self._objstm = None

    def _end_stream(self) -> None:
        if self._objstm is not None:
            self._finish_objstm()
        self._mode = "outside"

    def _finish_objstm(self) -> None:
        assert self._objstm is not None
        self._objstm.close()
        self._objstm = None

    def _classify(self, number: int, body: bytes) -> None:
        """Remember an object if it is part of the page tree; forget an older definition."""
        self._seq += 1
        if _TYPE_PAGES_RE.search(body):
            count = _COUNT_RE.search(body)
            parent = _PARENT_RE.search(body) is not None
            self._tree[number] = (self._seq, "pages", int(count.group(1)) if count else 0, parent)
        elif _TYPE_PAGE_RE.search(body):
            self._tree[number] = (self._seq, "page", 0, True)
        else:
            self._tree.pop(number, None)


class _ObjStmParser:
    """The inflated content of one object stream: `N` pairs (number offset), then the objects.

    Objects are classified as their bytes go by; only the head of the current one is kept.
    """

    def __init__(self, count: int, first: int, owner: PdfPageCounter) -> None:
        self._inflate = zlib.decompressobj()
        self._count = count
        self._first = first
        self._owner = owner
        self._header = bytearray()
        self._offsets: list[tuple[int, int]] | None = None
        self._index = 0
        self._at = 0  # offset (after /First) of the next inflated byte
        self._current = bytearray()
        self._inflated = 0
        self._ok = first <= _MAX_OBJSTM_HEADER

    def feed(self, compressed: bytes) -> bool:
        """Inflate and parse; False once the stream cannot be read (then it is ignored)."""
        if not self._ok:
            return False
        try:
            data = self._inflate.decompress(compressed)
        except zlib.error:
            self._ok = False
            return False
        self._take(data)
        return self._ok

    def close(self) -> None:
        """Classify the last object."""
        if not self._ok:
            return
        try:
            self._take(self._inflate.flush())
        except zlib.error:
            return
        if self._ok and self._offsets is not None and self._index < len(self._offsets):
            self._owner._classify(self._offsets[self._index][1], bytes(self._current))

    def _take(self, data: bytes) -> None:
        self._inflated += len(data)
        if self._inflated > _MAX_OBJSTM_INFLATED:
            self._ok = False
            return
        if self._offsets is None:
            need = self._first - len(self._header)
            self._header += data[:need]
            data = data[need:]
            if len(self._header) < self._first:
                return
            numbers = [int(x) for x in bytes(self._header).split()[: 2 * self._count]]
            if len(numbers) < 2 * self._count:
                self._ok = False
                return
            self._offsets = sorted(zip(numbers[1::2], numbers[0::2], strict=True))
        offsets = self._offsets
        view = memoryview(data)
        while view and self._index < len(offsets):
            start = offsets[self._index][0]
            if self._at < start:  # bytes between objects (whitespace)
                skip = min(len(view), start - self._at)
                view, self._at = view[skip:], self._at + skip
                continue
            nxt = offsets[self._index + 1][0] if self._index + 1 < len(offsets) else None
            take = len(view) if nxt is None else min(len(view), nxt - self._at)
            room = _MAX_DICT_BYTES - len(self._current)
            if room > 0:
                self._current += view[: min(take, room)]
            view, self._at = view[take:], self._at + take
            if nxt is not None and self._at >= nxt:
                self._owner._classify(offsets[self._index][1], bytes(self._current))
                self._current.clear()
                self._index += 1
