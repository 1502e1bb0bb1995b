"""`pullprint labels`: a PDF sheet of QR labels, one per printer, for stock label paper.

Each label shows the printer's name and location as text and a QR code that holds only
`pullprint:p/<id>`, where `<id>` is the printer's opaque id. Nothing about the device (address,
model, serial) goes into the code: a label stuck on a printer is public, and the phone that scans
it learns the rest from the cloud after the user signs in. Ids are therefore restricted to
`[A-Za-z0-9_-]`, which rules out IP addresses, host names and MAC addresses by construction.

Sheet layouts are data (`LAYOUTS`), measured from the manufacturers' templates. Text that does not
fit its box is wrapped, then cut with an ellipsis: it never runs into the next label.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tools.cli import CliError

if TYPE_CHECKING:
    from reportlab.pdfgen.canvas import Canvas

QR_PREFIX = "pullprint:p/"
PRINTER_ID = re.compile(r"[A-Za-z0-9_-]{6,64}")
_MM = 72 / 25.4  # PDF points per millimetre
_INCH = 72.0
_PADDING_MM = 2.0  # inside each label: printers feed label sheets a millimetre or so off
_QR_EDGE_MM = 1.0
_NAME_PT, _LOCATION_PT, _HINT_PT = 9.0, 7.5, 5.5
_HINT = "Scan to print here"
# Fonts with wide coverage are preferred (names like "Drucker Büro 2" or "Принтер 3" must print);
# reportlab's own Vera is always there as the fallback.
_FONT_CANDIDATES = (
    (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    ),
)


@dataclass(frozen=True)
class LabelLayout:
    """A sheet of identical labels in a grid; lengths in points (1/72 inch)."""

    name: str
    paper: str
    page_width: float
    page_height: float
    columns: int
    rows: int
    label_width: float
    label_height: float
    left: float  # page edge to the first label
    top: float
    pitch_x: float  # from one label's left edge to the next one's
    pitch_y: float

    @property
    def per_page(self) -> int:
        """Labels on one sheet."""
        return self.columns * self.rows

    def origin(self, index: int) -> tuple[float, float]:
        """Bottom-left corner of label `index` (0-based, row by row from the top left)."""
        row, column = divmod(index % self.per_page, self.columns)
        x = self.left + column * self.pitch_x
        y = self.page_height - self.top - row * self.pitch_y - self.label_height
        return x, y


_A4 = (210 * _MM, 297 * _MM)
_LETTER = (8.5 * _INCH, 11 * _INCH)
LAYOUTS: dict[str, LabelLayout] = {
    layout.name: layout
    for layout in (
        # Avery L7160 (A4, 21 per sheet, 63.5 x 38.1 mm).
        LabelLayout("l7160", "a4", *_A4, 3, 7, 63.5 * _MM, 38.1 * _MM, 7.21 * _MM, 15.15 * _MM,
                    66.04 * _MM, 38.1 * _MM),
        # Avery L7163 (A4, 14 per sheet, 99.1 x 38.1 mm): room for long names.
        LabelLayout("l7163", "a4", *_A4, 2, 7, 99.1 * _MM, 38.1 * _MM, 4.65 * _MM, 15.15 * _MM,
                    101.6 * _MM, 38.1 * _MM),
        # Avery 5160 (US Letter, 30 per sheet, 2 5/8 x 1 in).
        LabelLayout("5160", "letter", *_LETTER, 3, 10, 2.625 * _INCH, 1.0 * _INCH,
                    0.1875 * _INCH, 0.5 * _INCH, 2.75 * _INCH, 1.0 * _INCH),
        # Avery 5163 (US Letter, 10 per sheet, 4 x 2 in).
        LabelLayout("5163", "letter", *_LETTER, 2, 5, 4.0 * _INCH, 2.0 * _INCH,
                    0.15625 * _INCH, 0.5 * _INCH, 4.1875 * _INCH, 2.0 * _INCH),
    )
}  # fmt: skip
DEFAULT_LAYOUT = {"a4": "l7160", "letter": "5160"}


@dataclass(frozen=True)
class PrinterLabel:
    """What one label shows: the id goes into the QR code, name and location are text."""

    id: str
    name: str
    location: str = ""

    @property
    def qr_value(self) -> str:
        """The QR code's whole content."""
        return QR_PREFIX + self.id


def _check(printers: Sequence[PrinterLabel]) -> list[PrinterLabel]:
    seen: set[str] = set()
    for p in printers:
        if not PRINTER_ID.fullmatch(p.id):
            raise CliError(
                f"printer id {p.id[:70]!r} is not an opaque id: use 6-64 letters, digits, '-' "
                f"or '_' (never an address or a model)"
            )
        if p.id in seen:
            raise CliError(f"printer id {p.id} appears twice")
        if not p.name.strip():
            raise CliError(f"printer {p.id} has no name")
        seen.add(p.id)
    return list(printers)


def load_printers(path: Path) -> list[PrinterLabel]:
    """Printers from a CSV (header `id,name,location`) or JSON (a list of such objects)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel writes CSV with a BOM
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}") from exc
    rows: list[dict[str, str]]
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"{path}: not JSON ({exc})") from exc
        data = data.get("printers") if isinstance(data, dict) else data
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise CliError(f"{path}: expected a list of {{id, name, location}} objects")
        rows = [{str(k): str(v) for k, v in r.items() if v is not None} for r in data]
    else:
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not {"id", "name"} <= set(reader.fieldnames):
            raise CliError(f"{path}: the first line must name the columns id,name,location")
        rows = [{k: v or "" for k, v in r.items() if k is not None} for r in reader]
    try:
        printers = [
            PrinterLabel(r["id"].strip(), r["name"].strip(), r.get("location", "").strip())
            for r in rows
        ]
    except KeyError as exc:
        raise CliError(f"{path}: a printer has no {exc.args[0]}") from None
    return _check(printers)


def sample_printers(count: int) -> list[PrinterLabel]:
    """`count` made-up printers with random ids, to look at a sheet without real data."""
    rooms = ["Reception", "Finance, 2nd floor east wing", "Lab B", "Mail room", "Library"]
    return [
        PrinterLabel(
            secrets.token_urlsafe(9),
            f"Printer {n + 1}" if n % 4 else f"Printer {n + 1} colour A3 duplex near the stairs",
            rooms[n % len(rooms)],
        )
        for n in range(count)
    ]


def fit_lines(text: str, font: str, size: float, width: float, max_lines: int) -> list[str]:
    """Wrap `text` at spaces (words too long are split) into at most `max_lines` lines of at
    most `width` points; the last line ends in an ellipsis when text had to be dropped."""
    from reportlab.pdfbase.pdfmetrics import stringWidth  # noqa: PLC0415 - heavy, only here

    def fits(line: str) -> bool:
        return stringWidth(line, font, size) <= width

    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if fits(candidate):
            current = candidate
            continue
        if current:
            lines.append(current)
        rest = word
        while not fits(rest):  # a word wider than the box: split it, after a - or / if any
            cut = max(i for i in range(1, len(rest) + 1) if i == 1 or fits(rest[:i]))
            breaks = [i + 1 for i in range(cut - 1) if rest[i] in "-/"]
            cut = breaks[-1] if breaks and breaks[-1] > cut // 2 else cut
            lines.append(rest[:cut])
            rest = rest[cut:]
        current = rest
    if current:
        lines.append(current)
    if len(lines) <= max_lines:
        return lines
    last = lines[max_lines - 1]
    while last and not fits(last.rstrip() + "…"):
        last = last[:-1]
    return [*lines[: max_lines - 1], last.rstrip() + "…"]


def _register_fonts() -> tuple[str, str]:
    """Register the label fonts once; returns (regular, bold) names."""
    from reportlab.pdfbase import pdfmetrics  # noqa: PLC0415 - heavy, only here
    from reportlab.pdfbase.ttfonts import TTFont  # noqa: PLC0415

    if "PullPrintSans" not in pdfmetrics.getRegisteredFontNames():
        regular, bold = "Vera.ttf", "VeraBd.ttf"  # found on reportlab's own font path
        for candidate_regular, candidate_bold in _FONT_CANDIDATES:
            if Path(candidate_regular).is_file() and Path(candidate_bold).is_file():
                regular, bold = candidate_regular, candidate_bold
                break
        pdfmetrics.registerFont(TTFont("PullPrintSans", regular))
        pdfmetrics.registerFont(TTFont("PullPrintSans-Bold", bold))
    return "PullPrintSans", "PullPrintSans-Bold"


def qr_side(layout: LabelLayout) -> float:
    """The QR code's square side, quiet zone included.

    The code's own 4-module white border is the quiet zone a scanner needs and also absorbs a
    sheet fed a little off, so only a 1 mm edge is kept outside it.
    """
    return min(layout.label_height, layout.label_width / 2) - 2 * _QR_EDGE_MM * _MM


def _draw_label(
    canvas: Canvas, layout: LabelLayout, index: int, printer: PrinterLabel, *, outline: bool
) -> None:
    """Draw label `index` of its sheet: the QR code on the left, the text to its right."""
    from reportlab.graphics import renderPDF  # noqa: PLC0415 - heavy, only here
    from reportlab.graphics.barcode.qr import QrCodeWidget  # noqa: PLC0415
    from reportlab.graphics.shapes import Drawing  # noqa: PLC0415

    regular, bold = _register_fonts()
    x, y = layout.origin(index)
    pad = _PADDING_MM * _MM
    if outline:
        canvas.setStrokeGray(0.75)
        canvas.setLineWidth(0.3)
        canvas.roundRect(x, y, layout.label_width, layout.label_height, 2 * _MM)
    side = qr_side(layout)
    # Level M survives a scuffed label; the widget's 4-module border is the quiet zone QR needs.
    widget = QrCodeWidget(printer.qr_value, barLevel="M", barWidth=side, barHeight=side)
    drawing = Drawing(side, side)
    drawing.add(widget)
    edge = _QR_EDGE_MM * _MM
    renderPDF.draw(drawing, canvas, x + edge, y + (layout.label_height - side) / 2)

    text_x = x + edge + side  # the code's quiet zone already separates it from the text
    text_width = x + layout.label_width - pad - text_x
    top = y + layout.label_height - pad
    # Bigger labels get bigger text (up to 1.4x, on 2-inch labels), read from further away.
    scale = min(1.4, max(1.0, layout.label_height / (38.1 * _MM)))
    name_pt, location_pt, hint_pt = _NAME_PT * scale, _LOCATION_PT * scale, _HINT_PT * scale
    # A 1-inch label has room for two lines of name above the location; taller ones for three.
    name_lines = fit_lines(printer.name, bold, name_pt, text_width, 3 if side > 70 else 2)
    location_lines = fit_lines(printer.location, regular, location_pt, text_width, 2)
    canvas.setFillGray(0)
    cursor = top - name_pt
    canvas.setFont(bold, name_pt)
    for line in name_lines:
        canvas.drawString(text_x, cursor, line)
        cursor -= name_pt * 1.2
    canvas.setFont(regular, location_pt)
    cursor -= location_pt * 0.3
    for line in location_lines:
        if cursor < y + pad + hint_pt * 1.5:
            break  # a short label: the location yields to the hint below
        canvas.drawString(text_x, cursor, line)
        cursor -= location_pt * 1.2
    canvas.setFont(regular, hint_pt)
    canvas.setFillGray(0.35)
    canvas.drawString(text_x, y + pad, _HINT)


def render_labels(
    printers: Sequence[PrinterLabel],
    layout: LabelLayout,
    out: Path,
    *,
    skip: int = 0,
    outline: bool = False,
) -> int:
    """Write the labels PDF; returns the number of pages.

    `skip` leaves the first labels of the first sheet empty, to reuse a partly used sheet.
    """
    from reportlab.pdfgen.canvas import Canvas  # noqa: PLC0415 - heavy, only here

    # invariant=True: the same printers give the same bytes (no timestamp, no random file id).
    canvas = Canvas(str(out), pagesize=(layout.page_width, layout.page_height), invariant=True)
    canvas.setTitle("PullPrint printer labels")
    canvas.setCreator("pullprint labels")
    for position, printer in enumerate(printers, start=skip):
        if position % layout.per_page == 0 and position > skip:
            canvas.showPage()  # the sheet is full
        _draw_label(canvas, layout, position, printer, outline=outline)
    canvas.showPage()
    canvas.save()
    return max(1, -(-(skip + len(printers)) // layout.per_page))


def _cmd_labels(args: argparse.Namespace) -> int:
    if args.layout and args.paper and LAYOUTS[args.layout].paper != args.paper:
        raise CliError(f"layout {args.layout} is for {LAYOUTS[args.layout].paper} paper")
    layout = LAYOUTS[args.layout or DEFAULT_LAYOUT[args.paper or "a4"]]
    if args.printers and args.sample:
        raise CliError("give --printers FILE or --sample N, not both")
    if args.printers:
        printers = load_printers(Path(args.printers))
    elif args.sample:
        printers = sample_printers(args.sample)
    else:
        raise CliError("give --printers FILE (CSV or JSON: id,name,location) or --sample N")
    if not printers:
        raise CliError("no printers: nothing to print")
    if not 0 <= args.skip < layout.per_page:
        raise CliError(f"--skip must be 0 to {layout.per_page - 1} for layout {layout.name}")
    pages = render_labels(printers, layout, Path(args.out), skip=args.skip, outline=args.outline)
    print(
        f"wrote {args.out}: {len(printers)} labels on {pages} page(s) of {layout.name} "
        f"({layout.paper}, {layout.columns}x{layout.rows})"
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `labels` to the `pullprint` subcommands."""
    labels = sub.add_parser("labels", help="a PDF sheet of QR labels, one per printer")
    labels.add_argument("--out", required=True, help="the PDF to write")
    labels.add_argument("--printers", help="CSV or JSON with id, name, location")
    labels.add_argument("--sample", type=int, help="make N sample printers instead")
    labels.add_argument("--paper", choices=sorted(DEFAULT_LAYOUT), help="a4 (default) or letter")
    labels.add_argument(
        "--layout",
        choices=sorted(LAYOUTS),
        help="label sheet: l7160 (A4 3x7, default), l7163 (A4 2x7), 5160 (Letter 3x10, default "
        "for letter), 5163 (Letter 2x5)",
    )
    labels.add_argument("--skip", type=int, default=0, help="leave the first N labels empty")
    labels.add_argument("--outline", action="store_true", help="draw label edges (plain paper)")
    labels.set_defaults(func=_cmd_labels)
