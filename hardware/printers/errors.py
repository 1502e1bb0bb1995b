"""Printer errors beyond the base tree of `hardware.errors`, one per rule of delivery.

HardwareError
└── PrinterError
    ├── PrinterUnreachableError (ConnectionError)
    │   └── PrinterConnectError        no connection was made: nothing was sent (may fall back)
    ├── PrinterRejectedError
    │   └── PrinterNotReadyError       the printer's own state says it cannot print now
    ├── PrinterPinMismatchError        the TLS key is not the one pinned at pairing (never retried)
    └── DeliveryUnconfirmedError       the bytes went out but the printer never said it printed

Only `PrinterConnectError` lets a `FallbackTransport` try the next way to the printer: every
other error means the printer was reached (or an impostor was), and a downgrade is not safe.
"""

from __future__ import annotations

from hardware.errors import PrinterError, PrinterRejectedError, PrinterUnreachableError

PIN_MISMATCH_REASON = "Printer identity changed - ask an admin to re-pair it"
UNCONFIRMED_REASON = "Printer did not confirm the job"


class PrinterConnectError(PrinterUnreachableError):
    """Connecting failed (refused, unreachable, connect timeout, unknown name): nothing was sent."""


class PrinterNotReadyError(PrinterRejectedError):
    """The printer reports a state in which it cannot print ("Out of paper in tray 2").

    `status_code` is set only when the printer said so with an IPP status (not accepting jobs).
    """


class PrinterPinMismatchError(PrinterError):
    """The printer's TLS public key differs from the pin recorded when it was paired.

    Raised after the TLS handshake and before a byte of the request is written. Never retried
    and never answered by falling back to plain IPP or RAW: re-pinning needs an admin.
    """

    def __init__(self, *, expected: str, actual: str) -> None:
        super().__init__(PIN_MISMATCH_REASON, detail=f"pinned {expected}, presented {actual}")
        self.expected = expected
        self.actual = actual


class DeliveryUnconfirmedError(PrinterError):
    """The document went out, but neither PJL nor the page counter confirmed it printed.

    The caller must not report the release printed: it keeps the job held and shows `reason`.
    `bytes_sent` says how much reached the printer.
    """

    def __init__(self, reason: str = UNCONFIRMED_REASON, *, bytes_sent: int, detail: str) -> None:
        super().__init__(reason, detail=detail)
        self.bytes_sent = bytes_sent
