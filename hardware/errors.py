"""The root exception of the `hardware` package and its tree.

HardwareError
├── ReaderError                    a badge reader failed or sent garbage
├── DisplayError                   a display could not show a frame
└── PrinterError                   anything between us and a printer
    ├── PrinterUnreachableError    (also ConnectionError) no answer, refused, timed out
    ├── PrinterRejectedError       the printer refused the job (IPP status carried)
    └── JobFailedError             accepted, then aborted/canceled (reason carried)
"""

from __future__ import annotations


class HardwareError(Exception):
    """Root of every error raised by `hardware`."""


class ReaderError(HardwareError):
    """A badge reader failed or produced input that is not a credential."""


class DisplayError(HardwareError):
    """A display could not show a frame."""


class PrinterError(HardwareError):
    """Something went wrong between us and a printer.

    `reason` is a short message a user understands ("Out of paper"), safe to show on a screen.
    """

    def __init__(self, reason: str, *, detail: str | None = None) -> None:
        super().__init__(reason if detail is None else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class PrinterUnreachableError(PrinterError, ConnectionError):
    """The printer did not answer: connection refused, reset, or timed out."""


class PrinterRejectedError(PrinterError):
    """The printer answered but refused the request (IPP status code in `status_code`)."""

    def __init__(
        self, reason: str, *, status_code: int | None = None, detail: str | None = None
    ) -> None:
        super().__init__(reason, detail=detail)
        self.status_code = status_code


class JobFailedError(PrinterError):
    """The printer accepted the job and then aborted or canceled it."""

    def __init__(
        self, reason: str, *, printer_job_id: int | None = None, detail: str | None = None
    ) -> None:
        super().__init__(reason, detail=detail)
        self.printer_job_id = printer_job_id
