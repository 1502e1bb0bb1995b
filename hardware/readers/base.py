"""The `CardReader` port and the canonical credential every reader emits.

Invariant: whatever format a reader prints a badge in (decimal, hex, facility:number, with or
without parity), it is converted to one `Credential` (technology, bit length, raw bits) before it
leaves the reader, so the same badge gives the same tag on every station and reader type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Credential:
    """A badge as the card itself carries it.

    `technology` names the card family ("h10301", "corp1000", "mifare", "iclass", ...);
    `raw` holds exactly `bit_length` bits, right-aligned, big-endian.
    """

    technology: str
    bit_length: int
    raw: bytes

    def __post_init__(self) -> None:
        if not self.technology or not self.technology.isascii() or "|" in self.technology:
            raise ValueError("technology must be a non-empty ASCII name without '|'")
        if self.bit_length <= 0 or len(self.raw) != (self.bit_length + 7) // 8:
            raise ValueError("raw must hold exactly bit_length bits")
        if int.from_bytes(self.raw, "big") >> self.bit_length:
            raise ValueError("raw has bits set above bit_length")

    def canonical(self) -> str:
        """The stable text form that credential tags are computed over."""
        return f"{self.technology.lower()}/{self.bit_length}/{self.raw.hex()}"

    def __repr__(self) -> str:
        # Never print card numbers: reprs end up in logs and tracebacks.
        return (
            f"Credential(technology={self.technology!r}, bit_length={self.bit_length}, "
            "raw=<hidden>)"
        )


class CardReader(Protocol):
    """A source of credentials.

    `read()` raises `CardUnreadableError` (hardware.readers.errors) for a card that was presented
    but gave no credential (a garbled frame, bad parity, an unsupported card): one per such tap,
    with a `reason` and never the card's data; what the reader sent after it is kept for the next
    `read()`. Any other `ReaderError` is a fault of the reader itself (unplugged, no service).
    """

    def read(self, timeout_s: float | None = None) -> Credential | None:
        """Wait up to `timeout_s` for a badge; None if none was presented in time.

        Raises:
            CardUnreadableError: a card was presented and could not be turned into a credential.
            ReaderError: the reader failed (e.g. ReaderDisconnectedError).
        """
        ...

    def close(self) -> None:
        """Release the device."""
        ...
