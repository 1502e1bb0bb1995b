"""Draw a screen model as a Pillow image sized to the fitted display.

One layout for every display: a title bar, then rows. The row height scales with the display
height (12 px on a 128x64 OLED, 26 px on a 320x240 TFT), and the font is Pillow's built-in
FreeType font at a matching size, so no font file has to ship with the station. Text that does not
fit is wrapped (messages) or cut with an ellipsis (job names); the job list scrolls to keep the
cursor row on screen.

Monochrome displays (mode "1") get white on black with inverted bars; colour displays get a
coloured title bar that says at a glance whether things went well.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from hardware.display.base import DisplayMode
from station.screens import (
    CardUnreadableScreen,
    DeliveringScreen,
    DoneScreen,
    EmailEntryScreen,
    ErrorScreen,
    JobListScreen,
    OfflineScreen,
    PinEntryScreen,
    Screen,
    job_details,
)

Color = int | tuple[int, int, int]
Font = ImageFont.FreeTypeFont

ELLIPSIS = "…"
# The built-in font lacks some typographic characters; draw the nearest ASCII instead of a box.
_SUBSTITUTES = str.maketrans(
    {
        "\u2014": "-",  # em dash
        "\u2013": "-",  # en dash
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
    }
)

_BLUE = (0, 102, 204)
_GREEN = (0, 140, 70)
_RED = (190, 30, 45)
_AMBER = (200, 120, 0)
_YELLOW = (255, 230, 0)


@dataclass(frozen=True, slots=True)
class _Style:
    """Sizes and colours for one display."""

    width: int
    height: int
    mode: DisplayMode
    row_px: int
    margin_px: int
    font: Font
    high_contrast: bool = False

    @property
    def space(self) -> str:
        """The gap between words: the font's space is too narrow to read when hinted to 1 bit."""
        return "  " if self.mode == "1" else " "

    def length(self, text: str) -> float:
        """Width of `text` in pixels, measured as it will be drawn (hinting depends on the mode)."""
        return self.font.getlength(text, mode="1" if self.mode == "1" else "L")

    @property
    def background(self) -> Color:
        if self.mode == "1" or self.high_contrast:
            return 0 if self.mode == "1" else (0, 0, 0)
        return (12, 16, 24)

    @property
    def foreground(self) -> Color:
        if self.mode == "1":
            return 1
        return _YELLOW if self.high_contrast else (240, 240, 240)

    @property
    def highlight(self) -> Color:
        if self.mode == "1":
            return 1
        return _YELLOW if self.high_contrast else (60, 70, 90)

    @property
    def highlight_text(self) -> Color:
        if self.mode == "1":
            return 0
        return (0, 0, 0) if self.high_contrast else (255, 255, 255)

    def bar(self, accent: tuple[int, int, int]) -> tuple[Color, Color]:
        """Fill and text colours of a title bar."""
        if self.mode == "1":
            return 1, 0
        if self.high_contrast:  # colour alone must not carry meaning: white bar, black text
            return (255, 255, 255), (0, 0, 0)
        return accent, (255, 255, 255)


@lru_cache(maxsize=8)
def _font(size_px: int) -> Font:
    font = ImageFont.load_default(size=size_px)
    if not isinstance(font, ImageFont.FreeTypeFont):
        # Without FreeType Pillow falls back to a fixed 11 px bitmap font that cannot scale.
        raise RuntimeError("Pillow was built without FreeType; the station needs it")
    return font


def _style(size: tuple[int, int], mode: DisplayMode, high_contrast: bool) -> _Style:
    width, height = size
    # 12 px rows at 64 px high, growing to 26 px at 240 px high (about 9 rows).
    row_px = max(12, min(height // 5, 12 + (height - 64) // 12))
    if high_contrast:
        # Large type: about half as many rows again, never fewer than two text rows.
        row_px = min(row_px * 3 // 2, max(12, height // 3))
    font_px = row_px - 2 if row_px < 16 else row_px * 4 // 5
    return _Style(width, height, mode, row_px, max(2, row_px // 5), _font(font_px), high_contrast)


def render(
    screen: Screen, size: tuple[int, int], mode: DisplayMode, *, high_contrast: bool = False
) -> Image.Image:
    """Draw `screen` for a display of `size` (width, height) and Pillow `mode` ("1" or "RGB").

    `high_contrast` gives large type and black, white and yellow only (an accessibility setting).
    """
    style = _style(size, mode, high_contrast)
    image = Image.new(mode, size, style.background)
    draw = ImageDraw.Draw(image)
    if isinstance(screen, JobListScreen):
        _job_list(draw, style, screen)
    elif isinstance(screen, DeliveringScreen):
        _delivering(draw, style, screen)
    elif isinstance(screen, PinEntryScreen):
        _pin_entry(draw, style, screen)
    elif isinstance(screen, EmailEntryScreen):
        _email_entry(draw, style, screen)
    else:
        lines = screen.lines()
        _title_bar(draw, style, lines[0], _accent(screen))
        _paragraphs(draw, style, lines[1:])
    return image


def _accent(screen: Screen) -> tuple[int, int, int]:
    if isinstance(screen, DoneScreen):
        return _GREEN
    if isinstance(screen, ErrorScreen | CardUnreadableScreen):
        return _RED
    if isinstance(screen, OfflineScreen):
        return _AMBER
    return _BLUE


# ---- layouts ----


def _title_bar(
    draw: ImageDraw.ImageDraw,
    style: _Style,
    title: str,
    accent: tuple[int, int, int],
    right: str = "",
) -> None:
    fill, text = style.bar(accent)
    draw.rectangle((0, 0, style.width - 1, style.row_px - 1), fill=fill)
    _row_text(draw, style, 0, title, right, color=text)


def _paragraphs(draw: ImageDraw.ImageDraw, style: _Style, paragraphs: list[str]) -> None:
    rows = _rows_available(style)
    width = style.width - 2 * style.margin_px
    lines: list[str] = []
    for paragraph in paragraphs:
        lines.extend(_wrap(style, paragraph, width))
    if len(lines) > rows:
        lines = [*lines[: rows - 1], _fit(style, lines[rows - 1] + style.space + ELLIPSIS, width)]
    y = style.row_px + style.margin_px
    for line in lines:
        _draw_text(draw, style, (style.margin_px, y), line, style.foreground)
        y += style.row_px


def _job_list(draw: ImageDraw.ImageDraw, style: _Style, screen: JobListScreen) -> None:
    count = len(screen.jobs)
    position = f"{screen.cursor + 1}/{count}" if count else ""
    _title_bar(draw, style, screen.title, _BLUE, position)
    rows = _rows_available(style)
    start = _scroll_start(screen.cursor, count, rows)
    box = style.row_px // 2
    with_time = style.width >= 200  # a narrow OLED keeps its width for the name
    for row, index in enumerate(range(start, min(count, start + rows))):
        job = screen.jobs[index]
        top = style.row_px * (row + 1) + style.margin_px
        color = style.foreground
        if index == screen.cursor:
            draw.rectangle((0, top, style.width - 1, top + style.row_px - 1), fill=style.highlight)
            color = style.highlight_text
        # The tick box: a square, filled when the job is selected.
        left, box_top = style.margin_px, top + (style.row_px - box) // 2
        ticked = job.job_id in screen.selected
        details = job_details(job, with_time=with_time)
        draw.rectangle(
            (left, box_top, left + box - 1, box_top + box - 1),
            outline=color,
            fill=color if ticked else None,
        )
        _row_text(draw, style, top, job.name, details, color=color, indent=box + style.margin_px)


def _delivering(draw: ImageDraw.ImageDraw, style: _Style, screen: DeliveringScreen) -> None:
    _title_bar(draw, style, screen.title, _BLUE)
    rows = _rows_available(style)
    # Keep the job being sent on screen: start from the first one not yet finished.
    active = next((i for i, it in enumerate(screen.items) if it.state in ("waiting", "sending")), 0)
    start = _scroll_start(active, len(screen.items), rows)
    bar_px = max(1, style.row_px // 10)
    for row, item in enumerate(screen.items[start : start + rows]):
        top = style.row_px * (row + 1) + style.margin_px
        _row_text(draw, style, top, item.name, item.status, color=style.foreground)
        if item.state in ("sending", "printed"):
            # A progress line under the row, as long as the share already sent.
            length = (style.width - 2 * style.margin_px) * item.percent // 100
            y = top + style.row_px - bar_px
            fill: Color = style.foreground if style.mode == "1" else _GREEN
            draw.rectangle(
                (style.margin_px, y, style.margin_px + length, y + bar_px - 1), fill=fill
            )


def _pin_entry(draw: ImageDraw.ImageDraw, style: _Style, screen: PinEntryScreen) -> None:
    _title_bar(draw, style, screen.prompt, _BLUE)
    # One circle per digit, filled once typed: the digits themselves are never drawn.
    slots = max(screen.length, screen.entered)
    gap = style.margin_px
    diameter = min(style.row_px - 2, (style.width - 2 * style.margin_px) // slots - gap)
    total = slots * diameter + (slots - 1) * gap
    x = (style.width - total) // 2
    y = style.row_px + style.margin_px + (style.row_px - diameter) // 2
    for i in range(slots):
        box = (x, y, x + diameter - 1, y + diameter - 1)
        filled = i < screen.entered
        draw.ellipse(box, outline=style.foreground, fill=style.foreground if filled else None)
        x += diameter + gap
    top = 2 * style.row_px + 2 * style.margin_px
    width = style.width - 2 * style.margin_px
    for line in _wrap(style, screen.message, width):
        if top + style.row_px > style.height:
            break
        _draw_text(draw, style, (style.margin_px, top), line, style.foreground)
        top += style.row_px


# --- station-entry: the email address being typed ---

EMAIL_HINT = "Enter: next  Esc: cancel"


def _email_entry(draw: ImageDraw.ImageDraw, style: _Style, screen: EmailEntryScreen) -> None:
    _title_bar(draw, style, screen.prompt, _BLUE)
    width = style.width - 2 * style.margin_px
    top = style.row_px + style.margin_px
    # The end of the address is where the typing happens: keep it (and the cursor) in view.
    text = _tail(style, screen.text + "_", width)
    _draw_text(draw, style, (style.margin_px, top), text, style.foreground)
    # An underline marks the field, so an empty address still shows where it goes.
    line_y = top + style.row_px - 1
    draw.line(
        (style.margin_px, line_y, style.width - style.margin_px, line_y), fill=style.foreground
    )
    rows = [] if top + 2 * style.row_px > style.height else [screen.message or EMAIL_HINT]
    _paragraphs_from(draw, style, top + style.row_px, rows)


def _tail(style: _Style, text: str, width: int) -> str:
    """The end of `text` that fits in `width` pixels, after an ellipsis when cut."""
    if style.length(text) <= width:
        return text
    low, high = 0, len(text)
    while low < high:  # the earliest start whose rest fits after the ellipsis
        mid = (low + high) // 2
        if style.length(ELLIPSIS + text[mid:]) <= width:
            high = mid
        else:
            low = mid + 1
    return ELLIPSIS + text[low:]


def _paragraphs_from(
    draw: ImageDraw.ImageDraw, style: _Style, top: int, paragraphs: list[str]
) -> None:
    """Wrapped paragraphs from `top` down, as many rows as fit."""
    width = style.width - 2 * style.margin_px
    for paragraph in paragraphs:
        for line in _wrap(style, paragraph, width):
            if top + style.row_px > style.height:
                return
            _draw_text(draw, style, (style.margin_px, top), line, style.foreground)
            top += style.row_px


# --- end station-entry ---


# ---- text helpers ----


def _rows_available(style: _Style) -> int:
    return max(1, (style.height - style.row_px - style.margin_px) // style.row_px)


def _scroll_start(focus: int, count: int, rows: int) -> int:
    """First row to draw so that row `focus` is visible, centred where the list allows."""
    if count <= rows:
        return 0
    return max(0, min(focus - rows // 2, count - rows))


def _row_text(
    draw: ImageDraw.ImageDraw,
    style: _Style,
    top: int,
    left_text: str,
    right_text: str,
    *,
    color: Color,
    indent: int = 0,
) -> None:
    """Left text cut to fit, right text (if any) flush right: one row."""
    x = style.margin_px + indent
    available = style.width - x - style.margin_px
    right = _clean(style, right_text)
    if right:
        right_px = int(style.length(right)) + 1
        _draw_text(draw, style, (style.width - style.margin_px - right_px, top), right, color)
        available -= right_px + style.margin_px
    _draw_text(draw, style, (x, top), _fit(style, _clean(style, left_text), available), color)


def _draw_text(
    draw: ImageDraw.ImageDraw, style: _Style, xy: tuple[int, int], text: str, color: Color
) -> None:
    # Centre the font's line box vertically in the row.
    ascent, descent = style.font.getmetrics()
    offset = max(0, (style.row_px - (ascent + descent)) // 2)
    draw.text((xy[0], xy[1] + offset), text, font=style.font, fill=color)


def _clean(style: _Style, text: str) -> str:
    return style.space.join(text.translate(_SUBSTITUTES).split())


def _fit(style: _Style, text: str, width: int) -> str:
    """`text`, cut and ended with an ellipsis if it is wider than `width` pixels."""
    if width <= 0:
        return ""
    if style.length(text) <= width:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with the ellipsis
        mid = (low + high + 1) // 2
        if style.length(text[:mid].rstrip() + ELLIPSIS) <= width:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + ELLIPSIS if low else ""


def _wrap(style: _Style, text: str, width: int) -> list[str]:
    """Greedy word wrap to `width` pixels; a word wider than a line is cut with an ellipsis."""
    lines: list[str] = []
    current = ""
    for word in text.translate(_SUBSTITUTES).split():
        candidate = f"{current}{style.space}{word}" if current else word
        if style.length(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = _fit(style, word, width)
    if current:
        lines.append(current)
    return lines
