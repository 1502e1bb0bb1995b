"""The reader errors, all under `hardware.errors.ReaderError`.

ReaderError                              (hardware.errors)
├── CardUnreadableError                   a card was presented but gave no credential: `reason`
│   ├── CardFormatError      (ValueError) the input is not a valid badge of the configured format
│   └── CardReadError                     a card was presented but could not be read (PC/SC)
├── ReaderDisconnectedError  (ConnectionError) the device is gone (unplugged); the reader reopens
└── BridgeProtocolError      (ValueError) a reader-bridge line is malformed or fails its checksum
    └── BridgeVersionError                the bridge speaks a protocol version we do not

`CardUnreadableError` is the "unreadable card" signal of the `CardReader` port: `read()` raises it
for one unusable tap (the station shows it and goes on reading; what the reader sent after it is
still there for the next `read()`); every other `ReaderError` is a fault of the reader itself.

Invariant: no message raised here contains a card number, UID or the text a reader printed; a
message says what kind of thing was wrong, never what the value was, because error messages end up
in logs and on screens.
"""

from __future__ import annotations

from typing import Literal

from hardware.errors import ReaderError

# Why a tap gave no credential, in a word the station turns into words on its screen:
# garbled: noise, a frame that fails its checksum, text that is not a badge in this format;
# parity: a Wiegand frame whose parity bits are wrong (a misread, usually a card moved too fast);
# unsupported: a real card of a kind that cannot identify anyone here (random UID, unknown type);
# not-read: the card did not answer the reader (it left, or the reader refused).
UnreadableReason = Literal["garbled", "parity", "unsupported", "not-read"]
UNREADABLE_REASONS: tuple[UnreadableReason, ...] = ("garbled", "parity", "unsupported", "not-read")


class CardUnreadableError(ReaderError):
    """A card was presented but gave no usable credential; `reason` says why, in a word."""

    default_reason: UnreadableReason = "garbled"

    def __init__(self, message: str, reason: UnreadableReason | None = None) -> None:
        super().__init__(message)
        self.reason: UnreadableReason = reason or self.default_reason


class CardFormatError(CardUnreadableError, ValueError):
    """The bits or text are not a valid card of the stated format (wrong length, parity, digits)."""


class ReaderDisconnectedError(ReaderError, ConnectionError):
    """The reader device is not there (unplugged, not enumerated yet); it is reopened later."""


class CardReadError(CardUnreadableError):
    """A card was on the reader but its UID could not be read (it left, or the reader refused)."""

    default_reason: UnreadableReason = "not-read"


class BridgeProtocolError(ReaderError, ValueError):
    """A line from (or for) the reader bridge is malformed or fails its checksum."""


class BridgeVersionError(BridgeProtocolError):
    """The reader bridge speaks a protocol version this host does not support."""
