"""Printer state in words a user at the printer understands ("Out of paper in tray 2").

Sans-I/O: attribute groups and keywords in, short messages out. The keywords are RFC 8011
§5.3.8 (job-state-reasons), §5.4.12 (printer-state-reasons) and PWG 5100.9; a reason keyword
ending in -warning or -report is not a fault, one ending in -error or bare is (RFC 8011 §5.4.12:
"If the implementation does not add any one of these three suffixes, all parties MUST assume
that the reason is an 'error'"). Tray names come from `printer-input-tray` (PWG 5100.13 §6.5.3),
whose octetString values are the Printer MIB prtInputTable row as `key=value;` pairs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

from hardware.ipp.codec import AttributeGroup
from hardware.ipp.enums import PrinterState, StatusCode

OUT_OF_PAPER = "Out of paper"
NOT_ACCEPTING = "Printer is not accepting jobs"

# Printer and job state reasons in the words a user sees.
REASON_WORDS = {
    "media-empty": OUT_OF_PAPER,
    "media-needed": OUT_OF_PAPER,
    "media-jam": "Paper jam",
    "door-open": "Door open",
    "cover-open": "Door open",
    "interlock-open": "Door open",
    "toner-empty": "Toner empty",
    "marker-supply-empty": "Toner empty",
    "input-tray-missing": "Paper tray missing",
    "output-area-full": "Output tray full",
    "offline": "Printer offline",
    "shutdown": "Printer offline",
    "timed-out": "Printer offline",
    "connecting-to-device": "Printer offline",
    "paused": "Printer paused",
    "spool-area-full": "Printer memory full",
    "document-format-error": "Printer could not read the document",
    "unsupported-document-format": "Printer does not accept this document format",
    "job-canceled-by-user": "Job canceled at the printer",
    "job-canceled-by-operator": "Job canceled at the printer",
    "job-canceled-at-device": "Job canceled at the printer",
}

# Printer conditions that stop a release before it starts (job reasons are not among them).
_PRINTER_FAULTS = frozenset(REASON_WORDS) - {
    "document-format-error",
    "unsupported-document-format",
    "job-canceled-by-user",
    "job-canceled-by-operator",
    "job-canceled-at-device",
}

# Status codes (RFC 8011 Appendix B) that refuse a job, in words.
STATUS_WORDS: dict[int, str] = {
    StatusCode.CLIENT_ERROR_FORBIDDEN: "Printer refused access",
    StatusCode.CLIENT_ERROR_NOT_AUTHENTICATED: "Printer refused access",
    StatusCode.CLIENT_ERROR_NOT_AUTHORIZED: "Printer refused access",
    StatusCode.CLIENT_ERROR_NOT_POSSIBLE: "Printer cannot print this job now",
    StatusCode.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE: "Document too large for the printer",
    StatusCode.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED: (
        "Printer does not accept this document format"
    ),
    StatusCode.CLIENT_ERROR_DOCUMENT_FORMAT_ERROR: "Printer could not read the document",
    StatusCode.CLIENT_ERROR_DOCUMENT_UNPRINTABLE_ERROR: "Printer could not read the document",
    StatusCode.SERVER_ERROR_NOT_ACCEPTING_JOBS: NOT_ACCEPTING,
    StatusCode.SERVER_ERROR_BUSY: "Printer is busy",
    StatusCode.SERVER_ERROR_DEVICE_ERROR: "Printer reported a fault",
    StatusCode.SERVER_ERROR_SERVICE_UNAVAILABLE: NOT_ACCEPTING,
    StatusCode.SERVER_ERROR_TEMPORARY_ERROR: "Printer reported a fault",
}

# The attributes `printer_problem` reads, for Get-Printer-Attributes requested-attributes.
READINESS_ATTRIBUTES = (
    "printer-state",
    "printer-state-reasons",
    "printer-is-accepting-jobs",
    "printer-input-tray",
)

_TRAY_NUMBER = re.compile(r"(?:tray|cassette|drawer)[\s_-]*(\d+)", re.IGNORECASE)
_MANUAL_TRAY_TYPES = ("sheetFeedManual", "envelope", "other")


def _fault_keyword(keyword: str) -> str | None:
    """The base keyword of a fault reason, or None for -warning/-report (not faults)."""
    if keyword.endswith(("-warning", "-report")):
        return None
    return keyword.removesuffix("-error")


def reason_in_words(job_reasons: Iterable[str], printer_reasons: Iterable[str]) -> str | None:
    """The first job reason, then printer reason, that a user would understand, or None."""
    for keyword in itertools.chain(job_reasons, printer_reasons):
        base = _fault_keyword(keyword)
        words = REASON_WORDS.get(base) if base is not None else None
        if words is not None:
            return words
    return None


def status_in_words(status: int) -> str:
    """Words for a refusing status-code."""
    return STATUS_WORDS.get(status, "Printer refused the job")


def printer_problem(attributes: AttributeGroup) -> str | None:
    """Why the printer cannot take a job now, in words, or None when it is ready.

    A printer is not ready when a printer-state-reason is a known fault, or when printer-state is
    stopped (RFC 8011 §5.4.11) whatever the reasons say. "Out of paper" names the tray when
    `printer-input-tray` shows exactly which trays are empty. Not accepting jobs is reported by
    the caller, which knows it as an IPP status.
    """
    for keyword in attributes.get_strs("printer-state-reasons"):
        base = _fault_keyword(keyword)
        if base in _PRINTER_FAULTS:
            words = REASON_WORDS[base]
            if words == OUT_OF_PAPER:
                trays = empty_trays(attributes)
                if trays:
                    return f"{OUT_OF_PAPER} in {' and '.join(trays[:2])}"
            return words
    if attributes.get_int("printer-state") == PrinterState.STOPPED:
        return "Printer stopped"
    return None


def empty_trays(attributes: AttributeGroup) -> list[str]:
    """Names of the paper trays whose level is 0 (empty), manual feeds left out."""
    attribute = attributes.get("printer-input-tray")
    if attribute is None:
        return []
    names = []
    for value in attribute.values:
        data = value.data
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        fields = dict(part.split("=", 1) for part in text.strip().split(";") if "=" in part)
        if fields.get("level") != "0" or fields.get("type", "").startswith(_MANUAL_TRAY_TYPES):
            continue
        name = fields.get("name", "").strip()
        number = _TRAY_NUMBER.search(name)
        names.append(f"tray {number.group(1)}" if number else name or "a tray")
    return names
