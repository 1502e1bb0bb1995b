"""Sample documents for ipptool's conformance files, generated on the spot (never checked in).

ipptool's files name documents that Debian does not ship (IPP-NOTES.md): PDF and PostScript on A4
and US Letter, colour and grey JPEGs, and PWG raster renderings at several resolutions and colour
spaces. They are made here from our own one-page PDF (`tools.samples.make_pdf`) with Ghostscript
(`pdfwrite`, `ps2write`, `pwgraster`) and Pillow.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw

from tools.samples import make_pdf

# PWG raster colour spaces as Ghostscript's cups-style parameters (cupsColorSpace, bits).
RASTER_TYPES = {
    "black-1": (3, 1),
    "sgray-8": (18, 8),
    "srgb-8": (19, 8),
    "cmyk-8": (6, 8),
    "srgb-16": (19, 16),
}
# Page sizes in points for the three source pages the raster samples are rendered from.
_PAGES = {"a4": (595, 842), "letter": (612, 792), "4x6": (288, 432)}
# ipptool file name stem -> source page.
RASTER_DOCUMENTS = {
    "document-a4": "a4",
    "onepage-a4": "a4",
    "document-letter": "letter",
    "onepage-letter": "letter",
    "color.jpg-4x6": "4x6",
    "gray.jpg-4x6": "4x6",
}


def _gs(*args: str | Path) -> None:
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", *map(str, args)],
        check=True,
        capture_output=True,
    )


def _sized_pdf(source: Path, out: Path, size: tuple[int, int]) -> None:
    width, height = size
    _gs(
        "-sDEVICE=pdfwrite",
        f"-dDEVICEWIDTHPOINTS={width}",
        f"-dDEVICEHEIGHTPOINTS={height}",
        "-dFIXEDMEDIA",
        "-dPDFFitPage",
        f"-sOutputFile={out}",
        source,
    )


def _jpeg(path: Path, mode: str) -> None:
    image = Image.new("RGB", (600, 400), (240, 240, 255))
    draw = ImageDraw.Draw(image)
    for i, colour in enumerate([(200, 30, 30), (30, 160, 30), (30, 30, 200)]):
        draw.rectangle((40 + i * 180, 60, 180 + i * 180, 340), fill=colour)
    draw.text((40, 20), "PullPrint ipptool sample", fill=(0, 0, 0))
    (image.convert("L") if mode == "L" else image).save(path, "JPEG", quality=80)


def make_basic_documents(directory: Path) -> None:
    """What ipp-1.1.test (and so ipp-2.0 and ipp-everywhere) print, plus `testfile.pdf`."""
    a4 = directory / "document-a4.pdf"
    a4.write_bytes(make_pdf(["PullPrint ipptool sample", "A4 page"], title="document-a4"))
    _sized_pdf(a4, directory / "document-letter.pdf", _PAGES["letter"])
    for name in ("a4", "letter"):
        pdf, ps = directory / f"document-{name}.pdf", directory / f"document-{name}.ps"
        _gs("-sDEVICE=ps2write", f"-sOutputFile={ps}", pdf)
    _jpeg(directory / "color.jpg", "RGB")
    _jpeg(directory / "gray.jpg", "L")
    shutil.copy(a4, directory / "testfile.pdf")


def make_raster_documents(
    directory: Path, resolutions: tuple[int, ...], types: tuple[str, ...]
) -> list[Path]:
    """PWG raster samples as ipp-everywhere.test names them, for the given dpi and types.

    One Ghostscript run per (resolution, type, page size); returns the files.
    """
    sources = []
    for page, size in _PAGES.items():
        source = directory / f"source-{page}.pdf"
        if not source.exists():
            _sized_pdf(directory / "document-a4.pdf", source, size)
        sources.append((page, source))
    made: list[Path] = []
    for dpi in resolutions:
        for kind in types:
            space, bits = RASTER_TYPES[kind]
            folder = directory / f"pwg-raster-samples-{dpi}dpi" / kind
            folder.mkdir(parents=True, exist_ok=True)
            pages = {page: folder / f"page-{page}.pwg" for page, _ in sources}
            for page, source in sources:
                _gs(
                    "-sDEVICE=pwgraster",
                    f"-r{dpi}",
                    f"-dcupsColorSpace={space}",
                    f"-dcupsBitsPerColor={bits}",
                    f"-sOutputFile={pages[page]}",
                    source,
                )
            for stem, page in RASTER_DOCUMENTS.items():
                target = folder / f"{stem}-{kind}-{dpi}dpi.pwg"
                shutil.copy(pages[page], target)
                made.append(target)
            for page_file in pages.values():
                page_file.unlink()
    return made


def add_placeholders(directory: Path, test_file: Path) -> list[Path]:
    """Empty files for every other PWG raster sample the test file names.

    ipptool refuses to load a file that names an unreadable FILE, even in a test it would skip
    (SKIP-IF-MISSING does not help: the check runs while parsing). The queue does not advertise
    these resolutions and types, so the file skips those tests and never sends these files;
    `test_ipptool` checks that every one of them was reported [SKIP].
    """
    made = []
    for line in test_file.read_text().splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "FILE" and words[1].startswith("pwg-raster-samples"):
            path = directory / words[1]
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
                made.append(path)
    return made
