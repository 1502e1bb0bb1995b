"""`pullprint labels`: pages and paper size, one QR per label decoding to only its id, text fit."""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.tools.disk_images import require
from tools.cli import CliError, main
from tools.labels import (
    LAYOUTS,
    QR_PREFIX,
    LabelLayout,
    PrinterLabel,
    fit_lines,
    load_printers,
    render_labels,
    sample_printers,
)

DPI = 200


def _render(pdf: Path, dpi: int = DPI) -> list[Image.Image]:
    """Every page as a grey PNG, by ghostscript."""
    require("gs")
    out = pdf.with_name(pdf.stem + "-%d.png")
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pnggray", f"-r{dpi}",
         f"-sOutputFile={out}", str(pdf)],
        check=True, capture_output=True,
    )  # fmt: skip
    pages = sorted(pdf.parent.glob(pdf.stem + "-*.png"), key=lambda p: int(p.stem.split("-")[-1]))
    return [Image.open(p).convert("L") for p in pages]


def _cell(page: Image.Image, layout: LabelLayout, index: int, dpi: int = DPI) -> Image.Image:
    x, y = layout.origin(index)
    scale = dpi / 72
    top = (layout.page_height - y - layout.label_height) * scale
    return page.crop(
        (
            round(x * scale),
            round(top),
            round((x + layout.label_width) * scale),
            round(top + layout.label_height * scale),
        )
    )


def _decode(cells: list[Image.Image], tmp_path: Path) -> list[list[str]]:
    """What zbarimg reads in each cell image: a list of symbols per cell."""
    require("zbarimg")
    paths = []
    for n, cell in enumerate(cells):
        path = tmp_path / f"cell-{n:03d}.png"
        cell.save(path)
        paths.append(str(path))
    done = subprocess.run(
        ["zbarimg", "--xml", "-q", *paths], capture_output=True, text=True, check=False
    )
    assert done.returncode in (0, 4), done.stderr  # 4: some cell had no symbol (checked below)
    found: dict[str, list[str]] = {p: [] for p in paths}
    ns = {"z": "http://zbar.sourceforge.net/2008/barcode"}
    for source in ET.fromstring(done.stdout).iterfind("z:source", ns):
        found[source.get("href", "")] = [
            (s.findtext("z:data", "", ns)) for s in source.iterfind(".//z:symbol", ns)
        ]
    return [found[p] for p in paths]


@pytest.mark.parametrize(
    ("paper", "count", "pages", "size_pt"),
    [("a4", 25, 2, (595, 842)), ("letter", 31, 2, (612, 792))],
)
def test_pages_and_paper_size(tmp_path: Path, paper: str, count: int, pages: int, size_pt) -> None:
    pdf = tmp_path / "labels.pdf"
    assert main(["labels", "--out", str(pdf), "--sample", str(count), "--paper", paper]) == 0
    raw = pdf.read_bytes()
    assert len(re.findall(rb"/Type /Page\b", raw)) == pages
    boxes = {
        tuple(round(float(v)) for v in m)
        for m in re.findall(rb"/MediaBox \[ *0 0 ([\d.]+) ([\d.]+)", raw)
    }
    assert boxes == {size_pt}
    rendered = _render(pdf, dpi=72)
    assert [im.size for im in rendered] == [size_pt] * pages


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
def test_every_label_decodes_to_exactly_its_id(tmp_path: Path, layout_name: str) -> None:
    layout = LAYOUTS[layout_name]
    printers = sample_printers(layout.per_page + 3)  # a full sheet and a bit of the next
    printers[1] = PrinterLabel("x" * 64, "Longest id allowed", "still scannable")
    pdf = tmp_path / "labels.pdf"
    assert render_labels(printers, layout, pdf) == 2
    pages = _render(pdf)
    cells = [_cell(pages[n // layout.per_page], layout, n) for n in range(len(printers))]
    decoded = _decode(cells, tmp_path)
    assert decoded == [[QR_PREFIX + p.id] for p in printers]
    # The rest of the second sheet stays blank.
    for n in range(len(printers), 2 * layout.per_page):
        assert _cell(pages[1], layout, n).getextrema() == (255, 255)


def test_skip_leaves_the_first_labels_blank(tmp_path: Path) -> None:
    layout = LAYOUTS["l7160"]
    pdf = tmp_path / "labels.pdf"
    printers = sample_printers(2)
    render_labels(printers, layout, pdf, skip=4)
    (page,) = _render(pdf)
    assert all(_cell(page, layout, n).getextrema() == (255, 255) for n in range(4))
    assert _decode([_cell(page, layout, 4), _cell(page, layout, 5)], tmp_path) == [
        [QR_PREFIX + p.id] for p in printers
    ]


def test_ink_stays_inside_each_label(tmp_path: Path) -> None:
    layout = LAYOUTS["5160"]
    long = "Colour laser A3 duplex stapler finisher " * 4
    printers = [PrinterLabel(f"printer-{n:03d}", long + "W" * 40, long) for n in range(6)]
    pdf = tmp_path / "labels.pdf"
    render_labels(printers, layout, pdf)
    (page,) = _render(pdf)
    scale = DPI / 72
    inked = page.point(lambda v: 255 if v < 200 else 0)
    for n in range(6):  # nothing drawn in the gutters between labels or below them
        x, _ = layout.origin(n)
        right = round((x + layout.label_width) * scale) + 1
        gutter = inked.crop((right, 0, round((x + layout.pitch_x) * scale) - 1, page.height))
        assert gutter.getbbox() is None or n % layout.columns == layout.columns - 1
    below = round((layout.page_height - layout.origin(5)[1]) * scale) + 2
    assert inked.crop((0, below, page.width, page.height)).getbbox() is None


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=200), st.integers(1, 3), st.floats(20, 200))
def test_fit_lines_never_overflows(text: str, max_lines: int, width: float) -> None:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines = fit_lines(text, "Helvetica", 9, width, max_lines)
    assert len(lines) <= max_lines
    assert all(stringWidth(line, "Helvetica", 9) <= width for line in lines)
    if len(" ".join(text.split())) > 0 and lines and not lines[-1].endswith("…"):
        assert "".join(lines).replace(" ", "") == "".join(text.split())


def test_printers_from_csv_and_json(tmp_path: Path) -> None:
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("\ufeffid,name,location,ip\nabc123,Lobby,Ground floor,10.0.0.9\n")
    assert load_printers(csv_path) == [PrinterLabel("abc123", "Lobby", "Ground floor")]
    json_path = tmp_path / "p.json"
    json_path.write_text(json.dumps({"printers": [{"id": "def456", "name": "Lab"}]}))
    assert load_printers(json_path) == [PrinterLabel("def456", "Lab", "")]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("id,name\n192.168.1.20,Lobby\n", "not an opaque id"),
        ("id,name\nHP-LaserJet:M404,Lobby\n", "not an opaque id"),
        ("id,name\nabc123,A\nabc123,B\n", "appears twice"),
        ("name,location\nLobby,here\n", "id,name,location"),
    ],
)
def test_device_details_and_bad_rows_are_refused(tmp_path: Path, rows: str, message: str) -> None:
    path = tmp_path / "p.csv"
    path.write_text(rows)
    with pytest.raises(CliError, match=message):
        load_printers(path)


def test_layout_must_match_paper(tmp_path: Path, capsys) -> None:
    argv = ["labels", "--out", str(tmp_path / "l.pdf"), "--sample", "1"]
    assert main([*argv, "--paper", "a4", "--layout", "5160"]) == 1
    assert "for letter paper" in capsys.readouterr().err
