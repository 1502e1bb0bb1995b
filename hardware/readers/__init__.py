"""Badge readers behind one `CardReader` port.

`reader_from_config(kind, options)` builds one by name ("simulated", "wedge", "serial",
"bridge", "pcsc"); the formats and `parse_reader_text` are pure and importable without evdev,
pyserial or pyscard (the device modules are imported only when their reader is built).
"""

from hardware.readers.base import CardReader, Credential
from hardware.readers.errors import (
    UNREADABLE_REASONS,
    BridgeProtocolError,
    BridgeVersionError,
    CardFormatError,
    CardReadError,
    CardUnreadableError,
    ReaderDisconnectedError,
    UnreadableReason,
)
from hardware.readers.formats import corp1000, h10301, iclass_csn, mifare_uid, wiegand
from hardware.readers.registry import READER_KINDS, reader_from_config
from hardware.readers.simulated import SimulatedCardReader
from hardware.readers.text import ReaderFormat, parse_reader_text

__all__ = [
    "READER_KINDS",
    "UNREADABLE_REASONS",
    "BridgeProtocolError",
    "BridgeVersionError",
    "CardFormatError",
    "CardReadError",
    "CardReader",
    "CardUnreadableError",
    "Credential",
    "ReaderDisconnectedError",
    "ReaderFormat",
    "SimulatedCardReader",
    "UnreadableReason",
    "corp1000",
    "h10301",
    "iclass_csn",
    "mifare_uid",
    "parse_reader_text",
    "reader_from_config",
    "wiegand",
]
