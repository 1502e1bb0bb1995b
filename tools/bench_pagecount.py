"""Page counting speed: MB/s of `cloud.pagecount` on generated documents (a benchmark, not a test).

    python -m tools.bench_pagecount [--mb 64]

Prints one line per format: the document size, its pages, the seconds and the MB/s, fed in 64 KiB
pieces as an upload feeds it. Compare with the intake's encryption rate (AES-GCM, several hundred
MB/s) to see what counting adds to a submission.
"""

from __future__ import annotations

import argparse
import io
import os
import struct
import time
import zlib

from cloud.pagecount import page_counter_for

PIECE = 64 * 1024


def _pdf(target_bytes: int) -> bytes:
    """A PDF with one page per ~1 MB of (incompressible) image stream, page tree in an ObjStm."""
    pages = max(1, target_bytes // (1024 * 1024))
    out = io.BytesIO()
    out.write(b"%PDF-1.5\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n")
    image = os.urandom(1024 * 1024)
    for n in range(pages):
        out.write(b"%d 0 obj << /Length %d >>\nstream\n" % (1000 + n, len(image)))
        out.write(image + b"\nendstream\nendobj\n")
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages))
    objects = [(2, f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>")]
    objects += [(3 + i, "<< /Type /Page /Parent 2 0 R >>") for i in range(pages)]
    header, body = [], b""
    for number, text in objects:
        header.append(f"{number} {len(body)}")
        body += text.encode() + b"\n"
    head = (" ".join(header) + "\n").encode()
    packed = zlib.compress(head + body)
    out.write(
        b"50 0 obj << /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
        % (len(objects), len(head), len(packed))
    )
    out.write(packed + b"\nendstream\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
    return out.getvalue()


def _pwg(target_bytes: int) -> bytes:
    """600 dpi A4-sized grey pages of literal runs (the costliest common case for the walker)."""
    width, height = 4960, 200
    line = bytearray([0])
    for x in range(0, width, 128):
        run = min(128, width - x)
        line += (bytes([257 - run]) if run > 1 else b"\x00") + os.urandom(run)
    page = bytearray(1796)
    struct.pack_into(">II", page, 372, width, height)
    struct.pack_into(">III", page, 384, 8, 8, width)
    page += bytes(line) * height
    pages = max(1, target_bytes // len(page))
    return b"RaS2" + bytes(page) * pages


def main() -> None:
    """Print the counting rate for each generated format."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64, help="document size in MB")
    args = parser.parse_args()
    target = args.mb * 1024 * 1024
    for fmt, data in (("application/pdf", _pdf(target)), ("image/pwg-raster", _pwg(target))):
        counter = page_counter_for(fmt)
        view = memoryview(data)
        started = time.perf_counter()
        for i in range(0, len(data), PIECE):
            counter.feed(bytes(view[i : i + PIECE]))
        pages = counter.close()
        seconds = time.perf_counter() - started
        mb = len(data) / 1e6
        print(f"{fmt:18} {mb:8.1f} MB {pages!s:>6} pages {seconds:7.2f} s {mb / seconds:8.1f} MB/s")


if __name__ == "__main__":
    main()
