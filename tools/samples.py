"""Sample documents made on the spot (never third-party files): a small PDF and a text file.

The PDF writer is hand-written on purpose: the demo needs one page of text and a valid
cross-reference table, and pulling a PDF library onto every install for that is not worth it.
"""

from __future__ import annotations

import zlib


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(lines: list[str], *, title: str = "PullPrint sample") -> bytes:
    """One A4 page with `lines` of Helvetica text, as a valid PDF 1.4 file."""
    text_ops = ["BT", "/F1 14 Tf", "18 TL", "56 780 Td"]
    for line in lines:
        text_ops.append(f"({_escape(line.encode('latin-1', 'replace').decode('latin-1'))}) Tj T*")
    text_ops.append("ET")
    stream = zlib.compress("\n".join(text_ops).encode("latin-1"))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Title ("
        + _escape(title).encode("latin-1", "replace")
        + b") /Producer (PullPrint) >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def make_text(lines: list[str]) -> bytes:
    """A plain UTF-8 text document."""
    return ("\n".join(lines) + "\n").encode()
