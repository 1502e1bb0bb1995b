"""PJL job wrapping and status read-back, sans I/O (HP PJL Technical Reference Manual).

A RAW (port 9100) job is wrapped so the printer can tell us when it has printed it:

    <UEL>@PJL<CR><LF>                              UEL: ESC %-12345X, starts PJL (ch. 4)
    @PJL USTATUS JOB=ON<CR><LF>                    unsolicited job status (ch. 10, USTATUS)
    @PJL ECHO PULLPRINT <name><CR><LF>             answered at once: "this printer speaks PJL"
    @PJL JOB NAME="<name>"<CR><LF>                 the release id (ch. 6, JOB)
    @PJL SET QTY=<copies><CR><LF>                  collated copies, when more than one (ch. 7)
    @PJL ENTER LANGUAGE=<PDL><CR><LF>              when the document format names one (ch. 5)
    <document>
    <UEL>@PJL<CR><LF>@PJL EOJ NAME="<name>"<CR><LF><UEL>

A printer speaking PJL then answers on the same connection with messages, each ending in a form
feed, among them `@PJL ECHO ...` and, once the last page of our job is in the output bin,

    @PJL USTATUS JOB<CR><LF>END<CR><LF>NAME="<name>"<CR><LF>PAGES=<n><CR><LF><FF>

`PjlReadback` turns the bytes read back into `PjlStatus` values; it keeps at most
`MAX_MESSAGE_BYTES` of an unfinished message, so a chatty or hostile peer cannot grow it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

UEL = b"\x1b%-12345X"  # Universal Exit Language (PJL Technical Reference, ch. 4)
MAX_NAME_CHARS = 80  # the longest JOB NAME string PJL guarantees (ch. 6)
MAX_MESSAGE_BYTES = 4096

# ENTER LANGUAGE values for formats whose interpreter has a PJL name; others are auto-sensed.
LANGUAGES = {
    "application/pdf": "PDF",
    "application/postscript": "POSTSCRIPT",
    "application/vnd.hp-pcl": "PCL",
    "application/vnd.hp-pclxl": "PCLXL",
}
_UNSAFE = re.compile(r'[^\x20-\x7e]|"')


def pjl_name(job_name: str) -> str:
    """`job_name` made safe inside a PJL quoted string: printable ASCII, no quotes, 80 chars."""
    return _UNSAFE.sub("_", job_name)[:MAX_NAME_CHARS]


def echo_token(job_name: str) -> str:
    """The ECHO text for a job (PJL ECHO words: printable, no spaces needed)."""
    return f"PULLPRINT {pjl_name(job_name).replace(' ', '_')}"


def job_header(job_name: str, *, document_format: str | None = None, copies: int = 1) -> bytes:
    """The PJL that starts a job (see the module docstring)."""
    name = pjl_name(job_name)
    lines = [
        "@PJL",
        "@PJL USTATUS JOB=ON",
        f"@PJL ECHO {echo_token(job_name)}",
        f'@PJL JOB NAME="{name}"',
    ]
    if copies > 1:
        lines.append(f"@PJL SET QTY={copies}")
    language = LANGUAGES.get(document_format or "")
    if language is not None:
        lines.append(f"@PJL ENTER LANGUAGE={language}")
    return UEL + "".join(line + "\r\n" for line in lines).encode("ascii")


def job_trailer(job_name: str) -> bytes:
    """The PJL that ends a job: the printer echoes END with this name once it has printed."""
    return UEL + f'@PJL\r\n@PJL EOJ NAME="{pjl_name(job_name)}"\r\n'.encode("ascii") + UEL


@dataclass(frozen=True, slots=True)
class PjlStatus:
    """One message read back: its command line ("@PJL USTATUS JOB") and the lines after it."""

    command: str
    lines: tuple[str, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)  # KEY=value lines, quotes removed

    @property
    def is_echo(self) -> bool:
        """An answer to `@PJL ECHO`."""
        return self.command.upper().startswith("@PJL ECHO")

    @property
    def job_event(self) -> str | None:
        """START, END, CANCELED... for a USTATUS JOB message, else None."""
        if not self.command.upper().startswith("@PJL USTATUS JOB"):
            return None
        bare = [line.upper() for line in self.lines if "=" not in line]
        return bare[0] if bare else None

    @property
    def name(self) -> str | None:
        """The NAME= of a job message, or None."""
        return self.fields.get("NAME")

    @property
    def pages(self) -> int | None:
        """The PAGES= of a job END message, or None."""
        value = self.fields.get("PAGES", "")
        return int(value) if value.isdigit() else None


class PjlReadback:
    """Splits the back-channel byte stream into `PjlStatus` messages (form-feed separated)."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[PjlStatus]:
        """Add bytes read from the printer; return the messages they completed."""
        self._pending += data
        messages = []
        while (end := self._pending.find(b"\x0c")) >= 0:
            raw = bytes(self._pending[:end])
            del self._pending[: end + 1]
            message = _parse(raw)
            if message is not None:
                messages.append(message)
        if len(self._pending) > MAX_MESSAGE_BYTES:
            del self._pending[:-MAX_MESSAGE_BYTES]  # keep the tail: a message may still end
        return messages


def _parse(raw: bytes) -> PjlStatus | None:
    text = raw.decode("ascii", "replace")
    lines = [line.strip() for line in text.replace("\r", "").split("\n") if line.strip()]
    # Anything before the first @PJL line is PDL noise (a PostScript interpreter may talk too).
    start = next((i for i, line in enumerate(lines) if line.upper().startswith("@PJL")), None)
    if start is None:
        return None
    rest = tuple(lines[start + 1 :])
    fields = {}
    for line in rest:
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip().upper()] = value.strip().strip('"')
    return PjlStatus(lines[start], rest, fields)
