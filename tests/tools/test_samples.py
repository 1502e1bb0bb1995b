"""The sample documents the demo makes are valid."""

import re
import shutil
import subprocess
from pathlib import Path

from tools.samples import make_pdf, make_text


def test_pdf_cross_reference_points_at_every_object() -> None:
    pdf = make_pdf(["Hello (world)", "back\\slash"])
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    startxref = int(re.search(rb"startxref\n(\d+)", pdf).group(1))  # type: ignore[union-attr]
    assert pdf[startxref:].startswith(b"xref")
    offsets = [int(m) for m in re.findall(rb"(\d{10}) 00000 n", pdf)]
    assert len(offsets) == 6
    for number, offset in enumerate(offsets, start=1):
        assert pdf[offset:].startswith(b"%d 0 obj" % number)


def test_pdf_renders_with_ghostscript(tmp_path: Path) -> None:
    gs = shutil.which("gs")
    assert gs, "ghostscript is installed by tools/quickstart.sh test"
    src = tmp_path / "s.pdf"
    src.write_bytes(make_pdf(["PullPrint"]))
    done = subprocess.run(
        [
            gs,
            "-q",
            "-dSAFER",
            "-dNOPAUSE",
            "-dBATCH",
            "-sDEVICE=pnggray",
            "-r30",
            f"-sOutputFile={tmp_path / 'p.png'}",
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "error" not in (done.stdout + done.stderr).lower()
    assert (tmp_path / "p.png").stat().st_size > 0


def test_text_is_utf8_lines() -> None:
    assert make_text(["a", "ü"]) == "a\nü\n".encode()
