"""The reader errors, all under `hardware.errors.ReaderError`.

ReaderError                              (hardware.errors)
├── CardFormatError          (ValueError) the input is not a valid badge of the configured format
├── ReaderDisconnectedError  (ConnectionError) the device is gone (unplugged); the reader reopens
├── CardReadError                         a card was presented but could not be read (PC/SC)
└── BridgeProtocolError      (ValueError) a reader-bridge line is malformed or fails its checksum
    └── BridgeVersionError                the bridge speaks a protocol version we do not

Invariant: no message raised here contains a card number, UID or the text a reader printed; a
message says what kind of thing was wrong, never what the value was, because error messages end up
in logs and on screens.
"""

from __future__ import annotations

from hardware.errors import ReaderError


class CardFormatError(ReaderError, ValueError):
    """The bits or text are not a valid card of the stated format (wrong length, parity, digits)."""


class ReaderDisconnectedError(ReaderError, ConnectionError):
    """The reader device is not there (unplugged, not enumerated yet); it is reopened later."""


class CardReadError(ReaderError):
    """A card was on the reader but its UID could not be read (it left, or the reader refused)."""


class BridgeProtocolError(ReaderError, ValueError):
    """A line from (or for) the reader bridge is malformed or fails its checksum."""


class BridgeVersionError(BridgeProtocolError):
    """The reader bridge speaks a protocol version this host does not support."""
