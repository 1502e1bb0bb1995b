"""The streaming page counter: exact for PWG raster and URF, robust for PDF, fed in any pieces."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from reportlab.pdfgen import canvas

from cloud.pagecount import (
    PdfPageCounter,
    RasterPageCounter,
    page_counter_for,
    sniff_format,
)


def count(data: bytes, fmt: str, piece: int = 4096) -> int | None:
    counter = page_counter_for(fmt)
    for i in range(0, len(data), piece):
        counter.feed(data[i : i + piece])
    return counter.close()


# -- documents made here ---------------------------------------------------------------------


def reportlab_pdf(pages: int) -> bytes:
    out = io.BytesIO()
    c = canvas.Canvas(out)
    for i in range(pages):
        c.drawString(100, 700, f"page {i + 1}")
        c.showPage()
    c.save()
    return out.getvalue()


def pillow_pdf(pages: int) -> bytes:
    out = io.BytesIO()
    images = [Image.new("RGB", (60, 80), (255, 20 * i, 0)) for i in range(pages)]
    images[0].save(out, "PDF", save_all=True, append_images=images[1:])
    return out.getvalue()


def objstm_pdf(pages: int, *, decoy_text: bool = True) -> bytes:
    """A PDF 1.5 whose page tree lives only inside a compressed object stream (as most modern
    writers do), plus an uncompressed content stream that mentions "/Type /Page" as text and a
    binary stream with "obj" inside, which must not be counted."""
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages))
    objects = [(2, f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>")]
    objects += [
        (3 + i, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >>") for i in range(pages)
    ]
    header, body = [], b""
    for number, text in objects:
        header.append(f"{number} {len(body)}")
        body += text.encode() + b"\n"
    head = (" ".join(header) + "\n").encode()
    packed = zlib.compress(head + body)
    out = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n"
    out += b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    if decoy_text:
        text = b"BT (/Type /Page 5 0 obj fake) Tj ET"
        out += b"90 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (len(text), text)
        binary = b"\x00\xff 7 0 obj << /Type /Page >> endobj \x10" * 3
        out += b"91 0 obj\n<< /Length %d >>\nstream\r\n%s\nendstream\nendobj\n" % (
            len(binary),
            binary,
        )
    out += b"50 0 obj\n<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\n" % (
        len(objects),
        len(head),
        len(packed),
    )
    out += b"stream\n" + packed + b"\nendstream\nendobj\n"
    out += b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    return out


def with_page_deleted(pdf: bytes) -> bytes:
    """An incremental update that redefines the page tree with one page fewer (the old page
    objects stay in the file, as in real edited PDFs)."""
    update = (
        b"\n2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
        b"4 0 obj\n<< /Type /XObject >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )
    return pdf + update


def pack_line(pixels: list[bytes]) -> bytes:
    """PWG/URF compression of one line: literal runs of up to 128 pixels, repeats of equal ones."""
    out = bytearray()
    i = 0
    while i < len(pixels):
        run = 1
        while i + run < len(pixels) and run < 128 and pixels[i + run] == pixels[i]:
            run += 1
        if run > 1:
            out += bytes([run - 1]) + pixels[i]
            i += run
            continue
        literal = [pixels[i]]
        i += 1
        while (
            i < len(pixels)
            and len(literal) < 128
            and (i + 1 >= len(pixels) or pixels[i + 1] != pixels[i])
        ):
            literal.append(pixels[i])
            i += 1
        # A lone pixel is a "run" of one (op 0); literals hold 2-128 pixels (ops 255-129).
        op = 0 if len(literal) == 1 else 257 - len(literal)
        out += bytes([op]) + b"".join(literal)
    return bytes(out)


def raster_page(width: int, height: int, bpp: int, seed: int) -> bytes:
    """Compressed lines of one page: line groups with repeats, runs, literals and 128 fills."""
    unit = bpp // 8
    out = bytearray()
    y = 0
    while y < height:
        repeat = min(height - y, 1 + (y + seed) % 3)
        out.append(repeat - 1)
        if (y + seed) % 4 == 0:
            out.append(128)  # the whole line is white
        else:
            pixels = [bytes([(x * 7 + y + seed) % 256 // (1 + x % 3)] * unit) for x in range(width)]
            out += pack_line(pixels)
        y += repeat
    return bytes(out)


def pwg(pages: int, width: int = 37, height: int = 11, bpp: int = 24) -> bytes:
    out = bytearray(b"RaS2")
    for page in range(pages):
        header = bytearray(1796)
        struct.pack_into(">II", header, 372, width, height)
        struct.pack_into(">III", header, 384, 8, bpp, width * bpp // 8)
        out += header + raster_page(width, height, bpp, page)
    return bytes(out)


def urf(
    pages: int, width: int = 29, height: int = 9, bpp: int = 8, declared: int | None = None
) -> bytes:
    out = bytearray(b"UNIRAST\x00" + struct.pack(">I", pages if declared is None else declared))
    for page in range(pages):
        header = struct.pack(">BBBBII", bpp, 1, 1, 4, 0, 0) + struct.pack(
            ">III", width, height, 300
        )
        out += header + b"\x00" * 8 + raster_page(width, height, bpp, page)
    return bytes(out)


# -- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("pages", [1, 3, 12])
def test_pdfs_from_two_writers(pages: int) -> None:
    assert count(reportlab_pdf(pages), "application/pdf") == pages
    assert count(pillow_pdf(pages), "application/pdf") == pages


def test_page_tree_inside_a_compressed_object_stream() -> None:
    assert count(objstm_pdf(4), "application/pdf") == 4


def test_the_latest_definition_wins_in_an_incremental_update() -> None:
    assert count(with_page_deleted(objstm_pdf(3, decoy_text=False)), "application/pdf") == 1


def test_page_objects_are_counted_when_there_is_no_page_tree_root() -> None:
    pdf = b"%PDF-1.4\n" + b"".join(
        b"%d 0 obj << /Type /Page /Parent 99 0 R >> endobj\n" % n for n in range(3, 8)
    )
    assert count(pdf, "application/pdf") == 5


def test_unreadable_pdfs_give_no_count() -> None:
    assert count(b"not a pdf at all", "application/pdf") is None
    broken = objstm_pdf(2, decoy_text=False).replace(b"/FlateDecode", b"/LZWDecode")
    assert count(broken, "application/pdf") is None  # the tree hid in a stream we cannot read


@pytest.mark.parametrize(("pages", "bpp"), [(1, 24), (3, 8), (2, 32), (5, 16)])
def test_pwg_raster_pages_are_counted_exactly(pages: int, bpp: int) -> None:
    assert count(pwg(pages, bpp=bpp), "image/pwg-raster") == pages


def test_urf_pages_are_counted_and_checked_against_the_file_header() -> None:
    assert count(urf(4), "image/urf") == 4
    assert count(urf(3, bpp=24), "image/urf") == 3
    assert count(urf(3, declared=5), "image/urf") is None  # the header lies: do not guess


def test_a_raster_cut_inside_a_page_or_malformed_gives_no_count() -> None:
    whole = pwg(2)
    assert count(whole[:-3], "image/pwg-raster") is None
    assert count(whole + b"\x00", "image/pwg-raster") is None  # a page header cut short
    bad_run = bytearray(pwg(1, width=4, height=1))
    bad_run[4 + 1796 + 1] = 10  # a repeat of 11 pixels on a 4-pixel line
    assert count(bytes(bad_run), "image/pwg-raster") is None
    assert count(b"RaS3" + whole[4:], "image/pwg-raster") is None


def test_jpeg_is_one_page_and_unknown_types_are_sniffed() -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG")
    jpeg = out.getvalue()
    assert count(jpeg, "image/jpeg") == 1
    assert count(b"GIF89a...", "image/jpeg") is None
    assert count(jpeg, "application/octet-stream") == 1
    assert count(pwg(2), "application/octet-stream") == 2
    assert count(urf(3), "application/octet-stream") == 3
    assert count(reportlab_pdf(2), "application/octet-stream; charset=binary") == 2
    assert count(b"plain text, not counted", "text/plain") is None
    assert sniff_format(b"%PDF-1.7") == "application/pdf"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=40))
def test_any_split_into_pieces_gives_the_same_count(cuts: list[int]) -> None:
    for data, fmt, expected in (
        (objstm_pdf(3), "application/pdf", 3),
        (pwg(2, width=20, height=5), "image/pwg-raster", 2),
        (urf(2, width=20, height=5), "image/urf", 2),
    ):
        counter = page_counter_for(fmt)
        pos = 0
        for cut in cuts:
            counter.feed(data[pos : pos + cut])
            pos += cut
        counter.feed(data[pos:])
        assert counter.close() == expected


def test_memory_stays_bounded_for_a_large_document() -> None:
    """A 12 MB stream is skipped by its /Length; a tall raster page is walked line by line."""
    big = b"\x00" * (12 * 1024 * 1024)
    original = reportlab_pdf(2)
    assert original.startswith(b"%PDF-1.3")
    stream = b"\n77 0 obj << /Length " + str(len(big)).encode() + b" >>\nstream\n" + big
    pdf = b"%PDF-1.3" + stream + b"\nendstream\nendobj" + original[len(b"%PDF-1.3") :]
    counter = PdfPageCounter()
    peak = 0
    for i in range(0, len(pdf), 65536):
        counter.feed(pdf[i : i + 65536])
        peak = max(peak, len(counter._buf), len(counter._body))
    assert counter.close() == 2
    assert peak < 200_000
    raster = RasterPageCounter(urf=False)
    data = pwg(1, width=64, height=4000, bpp=8)
    for i in range(0, len(data), 65536):
        raster.feed(data[i : i + 65536])
        peak = max(peak, len(raster._buf))
    assert raster.close() == 1 and peak < 200_000


def test_ghostscript_output_counts(tmp_path: Path) -> None:
    """Cross-check with a real producer: Ghostscript's PWG raster and object-stream PDFs."""
    # The test command installs ghostscript (tools/quickstart.sh): missing must fail, not skip.
    assert shutil.which("gs") is not None, "missing gs: apt-get install ghostscript"
    source = tmp_path / "in.pdf"
    source.write_bytes(reportlab_pdf(3))
    made = {}
    for device, name, extra in (
        ("pwgraster", "out.pwg", ["-r30"]),
        ("pdfwrite", "out.pdf", ["-dWriteObjStms=true", "-dWriteXRefStm=true"]),
    ):
        target = tmp_path / name
        subprocess.run(
            ["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", f"-sDEVICE={device}", *extra,
             f"-sOutputFile={target}", str(source)],
            check=True, timeout=60, capture_output=True,
        )  # fmt: skip
        made[name] = target.read_bytes()
    assert count(made["out.pwg"], "image/pwg-raster", piece=1000) == 3
    assert count(made["out.pdf"], "application/pdf", piece=999) == 3
