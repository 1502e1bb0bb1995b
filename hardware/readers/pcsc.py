"""PC/SC contactless readers (ACR122U class, HID Omnikey, Identiv) through pcscd and pyscard.

The UID comes from the PC/SC part 3 pseudo-APDU GET DATA `FF CA 00 00 00`, which the reader
answers itself for any ISO 14443 card: 4 or 7 bytes become a MIFARE credential, 8 bytes an
iCLASS CSN (what Omnikey readers return for iCLASS), anything else is refused with a
`CardFormatError`.

Behaviour:

* **One tap, one credential.** A card is read once when it arrives and not again until it has
  left the reader: pcsc-lite counts card insertions and removals in the upper 16 bits of a
  reader's event state, so a card that is lifted and put back between two polls is still a new
  tap, while a card left lying on the reader is read once.
* **Readers come and go.** With no reader (or none whose name contains `reader_name`),
  `read()` waits on pcscd's plug-and-play notification and raises `ReaderDisconnectedError`
  when its timeout passes; a reader unplugged mid-wait is dropped and looked for again.
* **pcscd comes and goes.** A stopped service invalidates the PC/SC context: it is
  re-established with back-off (`Reconnector`), and `ReaderDisconnectedError` says so meanwhile.

Errors (all `ReaderError`): `ReaderDisconnectedError` (no service, no reader), `CardReadError`
(the card left mid-read, did not answer, or the reader refused GET DATA: the status word is
named), `CardFormatError` (a UID that cannot identify anyone, e.g. a random 4-byte UID). No
message or log line contains a UID.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from smartcard import scard

from hardware.readers.base import Credential
from hardware.readers.errors import CardFormatError, CardReadError, ReaderDisconnectedError
from hardware.readers.formats import iclass_csn, mifare_uid
from hardware.readers.reconnect import Reconnector

__all__ = ["GET_UID_APDU", "PcscCardReader", "credential_from_uid"]

logger = logging.getLogger(__name__)

GET_UID_APDU = (0xFF, 0xCA, 0x00, 0x00, 0x00)
PNP_READER = "\\\\?PnP?\\Notification"  # pcsc-lite's pseudo reader for reader hotplug
_SW_OK = (0x90, 0x00)
# pyscard returns HRESULTs as signed or unsigned ints depending on the platform.
_MASK = 0xFFFFFFFF
_SERVICE_GONE = {
    scard.SCARD_E_NO_SERVICE & _MASK,
    scard.SCARD_E_SERVICE_STOPPED & _MASK,
    scard.SCARD_E_INVALID_HANDLE & _MASK,
    scard.SCARD_F_COMM_ERROR & _MASK,
}
_READER_GONE = {
    scard.SCARD_E_UNKNOWN_READER & _MASK,
    scard.SCARD_E_READER_UNAVAILABLE & _MASK,
    scard.SCARD_E_NO_READERS_AVAILABLE & _MASK,
}
_CARD_GONE = {
    scard.SCARD_W_REMOVED_CARD & _MASK,
    scard.SCARD_E_NO_SMARTCARD & _MASK,
    scard.SCARD_W_RESET_CARD & _MASK,
}
_NOT_TRANSACTED = scard.SCARD_E_NOT_TRANSACTED & _MASK
_TIMEOUT = scard.SCARD_E_TIMEOUT & _MASK
_CANCELLED = scard.SCARD_E_CANCELLED & _MASK
_READER_LOST_STATES = scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE


def credential_from_uid(uid: bytes) -> Credential:
    """The credential for a UID read with GET DATA.

    Raises:
        CardFormatError: not 4, 7 or 8 bytes, or a UID that is not an identity (random UID).
    """
    if len(uid) in (4, 7):
        return mifare_uid(uid)
    if len(uid) == 8:
        return iclass_csn(uid)
    raise CardFormatError(f"a {len(uid)}-byte card UID is not a supported badge", "unsupported")


def _rc(result: int) -> int:
    return result & _MASK


def _message(result: int) -> str:
    return str(scard.SCardGetErrorMessage(result)).rstrip(". ")


@dataclass
class _Watch:
    """The reader being watched, and what we know of it."""

    name: str
    state: int = scard.SCARD_STATE_UNAWARE
    read_events: int | None = None  # the event count when the card now on it was read


class PcscCardReader:
    """A `CardReader` for a PC/SC contactless reader.

    Args:
        reader_name: a part of the reader's name ("ACR122U"); None takes the first reader.
        poll_s: the longest single wait inside pcscd, so `close()` and timeouts are prompt even
            if a cancel is lost.
        reopen_min_s, reopen_max_s: the back-off between attempts to reach pcscd.
    """

    def __init__(
        self,
        reader_name: str | None = None,
        *,
        poll_s: float = 0.5,
        reopen_min_s: float = 0.25,
        reopen_max_s: float = 5.0,
    ) -> None:
        self.reader_name = reader_name
        self._poll_ms = max(10, int(poll_s * 1000))
        self._context = Reconnector(
            "PC/SC service (pcscd)",
            self._establish,
            self._release,
            min_s=reopen_min_s,
            max_s=reopen_max_s,
        )
        self._watch: _Watch | None = None
        self._pnp_state = scard.SCARD_STATE_UNAWARE
        self._closed = threading.Event()

    # ---- the port ----

    def read(self, timeout_s: float | None = None) -> Credential | None:
        """Wait up to `timeout_s` (None: forever) for a card; None if none came in time.

        Raises:
            ReaderDisconnectedError: pcscd is not running, or no matching reader is plugged in
                (after waiting up to `timeout_s` for one).
            CardReadError: a card was there but its UID could not be read.
            CardFormatError: the UID is not a usable badge.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._closed.is_set():
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            context = self._context.device(remaining)
            if self._watch is None:
                name = self._find_reader(context)
                if name is None:
                    if not self._wait_for_readers(context, remaining):
                        raise ReaderDisconnectedError(self._no_reader_message())
                    continue
                logger.info("PC/SC reader in use: %s", name)
                self._watch = _Watch(name)
            uid = self._wait_for_card(context, self._watch, remaining)
            if uid is not None:
                return credential_from_uid(uid)
            if deadline is not None and time.monotonic() >= deadline:
                return None
        return None

    def close(self) -> None:
        """Stop waiting (wakes a `read()` in progress) and release the PC/SC context."""
        self._closed.set()
        if self._context.connected:
            try:
                context = self._context.device(0)
                scard.SCardCancel(context)
            except ReaderDisconnectedError:
                pass
        self._context.close()

    # ---- context ----

    @staticmethod
    def _establish() -> int:
        result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if result != scard.SCARD_S_SUCCESS:
            # Reconnector retries on OSError, with back-off.
            raise ConnectionRefusedError(_message(result))
        return int(context)

    @staticmethod
    def _release(context: int) -> None:
        scard.SCardReleaseContext(context)

    def _service_lost(self, result: int) -> ReaderDisconnectedError:
        self._watch = None
        self._pnp_state = scard.SCARD_STATE_UNAWARE
        return self._context.lost(ConnectionError(_message(result)))

    # ---- readers ----

    def _no_reader_message(self) -> str:
        if self.reader_name is None:
            return "no PC/SC reader is plugged in"
        return f"no PC/SC reader named like {self.reader_name!r} is plugged in"

    def _find_reader(self, context: int) -> str | None:
        result, readers = scard.SCardListReaders(context, [])
        if _rc(result) in _SERVICE_GONE:
            raise self._service_lost(result)
        if _rc(result) in _READER_GONE or result != scard.SCARD_S_SUCCESS:
            return None
        for name in readers:
            if self.reader_name is None or self.reader_name in name:
                return str(name)
        return None

    def _wait_for_readers(self, context: int, remaining: float | None) -> bool:
        """Wait for pcscd to report a change in its reader list; False if none came in time."""
        wait_ms = self._wait_ms(remaining)
        result, states = scard.SCardGetStatusChange(
            context, wait_ms, [(PNP_READER, self._pnp_state)]
        )
        code = _rc(result)
        if code in _SERVICE_GONE:
            raise self._service_lost(result)
        if code in (_TIMEOUT, _CANCELLED):
            return remaining is None  # keep waiting when there is no deadline
        if result != scard.SCARD_S_SUCCESS or not states:
            # A pcscd without hotplug support: look again after a pause.
            self._closed.wait(min(wait_ms / 1000, 1.0))
            return remaining is None or remaining > wait_ms / 1000
        self._pnp_state = states[0][1] & ~scard.SCARD_STATE_CHANGED
        return True

    # ---- cards ----

    def _wait_ms(self, remaining: float | None) -> int:
        if remaining is None:
            return self._poll_ms
        return max(0, min(self._poll_ms, int(remaining * 1000)))

    def _wait_for_card(self, context: int, watch: _Watch, remaining: float | None) -> bytes | None:
        """One wait for the watched reader's state to change; the UID of a newly arrived card."""
        result, states = scard.SCardGetStatusChange(
            context, self._wait_ms(remaining), [(watch.name, watch.state)]
        )
        code = _rc(result)
        if code in _SERVICE_GONE:
            raise self._service_lost(result)
        if code in _READER_GONE:
            self._reader_lost(watch)
            return None
        if code in (_TIMEOUT, _CANCELLED):
            # No change since the last look; a card that is there unread is read now (the
            # first look at a reader, or a read that failed because the card moved).
            return self._maybe_read(context, watch)
        if result != scard.SCARD_S_SUCCESS:
            raise ReaderDisconnectedError(f"PC/SC reader failed: {_message(result)}")
        event_state = int(states[0][1])
        watch.state = event_state & ~scard.SCARD_STATE_CHANGED
        if event_state & _READER_LOST_STATES:
            self._reader_lost(watch)
            return None
        return self._maybe_read(context, watch)

    def _reader_lost(self, watch: _Watch) -> None:
        logger.warning("PC/SC reader %s was unplugged", watch.name)
        self._watch = None

    def _maybe_read(self, context: int, watch: _Watch) -> bytes | None:
        state = watch.state
        if not state & scard.SCARD_STATE_PRESENT or state & scard.SCARD_STATE_MUTE:
            if state & scard.SCARD_STATE_EMPTY:
                watch.read_events = None
            return None
        events = state >> 16
        if watch.read_events == events:
            return None  # the card already read is still lying on the reader
        watch.read_events = events  # read once, even if the read fails: no error loop
        return self._read_uid(context, watch.name)

    def _read_uid(self, context: int, name: str) -> bytes | None:
        result, card, protocol = scard.SCardConnect(
            context,
            name,
            scard.SCARD_SHARE_SHARED,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
        )
        if _rc(result) in _SERVICE_GONE:
            raise self._service_lost(result)
        if _rc(result) in _CARD_GONE:
            logger.debug("PC/SC: the card left before it could be read")
            return None
        if result != scard.SCARD_S_SUCCESS:
            raise CardReadError(f"the card did not answer the reader: {_message(result)}")
        try:
            result, response = scard.SCardTransmit(card, protocol, list(GET_UID_APDU))
        finally:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        if _rc(result) in _CARD_GONE or _rc(result) == _NOT_TRANSACTED:
            # Taken away mid-read (readers report it either way): not an error to show, the
            # person simply taps again, which is a new card event.
            logger.info("PC/SC: the card was taken away while it was being read")
            return None
        if result != scard.SCARD_S_SUCCESS:
            raise CardReadError(f"reading the card's UID failed: {_message(result)}")
        data = bytes(response)
        if len(data) < 2:
            raise CardReadError("the reader's answer to GET DATA has no status word")
        if tuple(data[-2:]) != _SW_OK:
            # Status words are not secret: 6A81 = this reader cannot do GET DATA.
            raise CardReadError(f"the reader refused GET DATA (status {data[-2:].hex().upper()})")
        return data[:-2]
