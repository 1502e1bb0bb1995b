"""The PC/SC reader against a real pcscd with vsmartcard's vpcd reader and a fake card.

pcscd runs privately (its own mount and network namespaces, see tests/support/pcsc.py): the
reader code, pyscard and libpcsclite are the real ones, only the card is ours. Fails (does not
skip) when pcscd or vsmartcard-vpcd is missing: `sh tools/quickstart.sh test` installs them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator

import pytest

from hardware.readers.base import Credential
from hardware.readers.errors import (
    CardFormatError,
    CardReadError,
    CardUnreadableError,
    ReaderDisconnectedError,
)
from hardware.readers.formats import iclass_csn, mifare_uid
from hardware.readers.pcsc import GET_UID_APDU, PcscCardReader, credential_from_uid
from hardware.readers.registry import reader_from_config
from tests.support.pcsc import FakeCard, PrivatePcscd

UID7 = bytes.fromhex("04A1B2C3D4E5F6")
UID4 = bytes.fromhex("1A2B3C4D")
READER = "PullPrint Test Reader 00 00"


@pytest.fixture(scope="module")
def pcscd() -> Iterator[PrivatePcscd]:
    daemon = PrivatePcscd()
    # libpcsclite reads the socket path once per process; the path stays the same across
    # restarts of this daemon.
    previous = os.environ.get("PCSCLITE_CSOCK_NAME")
    os.environ.update(daemon.client_env())
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.close()
        if previous is None:
            os.environ.pop("PCSCLITE_CSOCK_NAME", None)
        else:
            os.environ["PCSCLITE_CSOCK_NAME"] = previous


@pytest.fixture
def card(pcscd: PrivatePcscd) -> Iterator[FakeCard]:
    if not pcscd.running:
        pcscd.start()
    fake = FakeCard(pcscd)
    yield fake
    fake.close()


@pytest.fixture
def reader(pcscd: PrivatePcscd) -> Iterator[PcscCardReader]:
    made = PcscCardReader("00 00", poll_s=0.2, reopen_min_s=0.05, reopen_max_s=0.2)
    yield made
    made.close()


def _read_until(reader: PcscCardReader, timeout_s: float) -> Credential | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        credential = reader.read(timeout_s=deadline - time.monotonic())
        if credential is not None:
            return credential
    return None


def test_uid_lengths_map_to_canonical_credentials() -> None:
    assert credential_from_uid(UID7) == mifare_uid(UID7)
    assert credential_from_uid(UID4) == mifare_uid(UID4)
    csn = bytes.fromhex("0102030405F712E0")
    assert credential_from_uid(csn) == iclass_csn(csn)
    with pytest.raises(CardFormatError, match="10-byte"):
        credential_from_uid(bytes(10))
    with pytest.raises(CardFormatError, match="random UID"):
        credential_from_uid(bytes.fromhex("08112233"))


def test_a_tap_gives_one_credential_until_the_card_is_lifted(
    reader: PcscCardReader, card: FakeCard
) -> None:
    assert reader.read(timeout_s=0.3) is None  # empty reader: nothing, no error
    card.present(UID7)
    assert _read_until(reader, 5) == mifare_uid(UID7)
    assert card.apdus == [bytes(GET_UID_APDU)]
    # The card stays on the reader: no second credential, no second APDU.
    assert reader.read(timeout_s=1.0) is None
    assert card.apdus == [bytes(GET_UID_APDU)]
    card.remove()
    assert reader.read(timeout_s=1.0) is None
    card.present(UID4)
    assert _read_until(reader, 5) == mifare_uid(UID4)
    assert card.apdus == [bytes(GET_UID_APDU)] * 2  # one GET DATA per tap


def test_the_same_badge_gives_the_same_tag_as_the_bridge_reader(
    reader: PcscCardReader, card: FakeCard
) -> None:
    from hardware.readers.bridge_protocol import Card

    card.present(UID7)
    via_pcsc = _read_until(reader, 5)
    via_bridge = Card("mifare", 56, UID7).to_credential()
    assert via_pcsc is not None and via_pcsc.canonical() == via_bridge.canonical()


def test_a_reader_that_refuses_get_data_is_a_specific_error(
    reader: PcscCardReader, card: FakeCard, caplog: pytest.LogCaptureFixture
) -> None:
    card.status = b"\x6a\x81"
    card.present(UID7)
    with (
        caplog.at_level(logging.DEBUG),
        pytest.raises(CardReadError, match="status 6A81") as caught,
    ):
        _read_until(reader, 5)
    # The port's "unreadable card" signal: the station shows it and keeps reading.
    assert isinstance(caught.value, CardUnreadableError) and caught.value.reason == "not-read"
    # Refused once, not again for the same tap: no error loop while the card lies there.
    assert reader.read(timeout_s=0.8) is None
    assert UID7.hex() not in caplog.text.lower()


def test_a_random_uid_card_is_refused_with_the_reason(
    reader: PcscCardReader, card: FakeCard
) -> None:
    card.present(bytes.fromhex("08A1B2C3"))
    with pytest.raises(CardFormatError, match="random UID") as caught:
        _read_until(reader, 5)
    assert isinstance(caught.value, CardUnreadableError) and caught.value.reason == "unsupported"
    assert "a1b2" not in str(caught.value).lower()


def test_no_matching_reader_is_reader_disconnected(pcscd: PrivatePcscd) -> None:
    if not pcscd.running:
        pcscd.start()
    reader = PcscCardReader("ACR122U", poll_s=0.1)
    try:
        started = time.monotonic()
        with pytest.raises(ReaderDisconnectedError, match="ACR122U"):
            reader.read(timeout_s=0.5)
        assert time.monotonic() - started < 3
    finally:
        reader.close()


def test_pcscd_stopping_and_coming_back_is_survived(
    pcscd: PrivatePcscd, reader: PcscCardReader, card: FakeCard
) -> None:
    card.present(UID4)
    assert _read_until(reader, 5) == mifare_uid(UID4)
    card.close()
    pcscd.stop()  # the service and its reader disappear, as on a reader unplug
    errors: list[ReaderDisconnectedError] = []
    for _ in range(5):
        try:
            reader.read(timeout_s=0.3)
        except ReaderDisconnectedError as exc:
            errors.append(exc)
            break
    assert errors and "PC/SC service" in str(errors[0])
    pcscd.start()
    fresh = FakeCard(pcscd)
    try:
        fresh.present(UID7)
        credential = None
        deadline = time.monotonic() + 10
        while credential is None and time.monotonic() < deadline:
            try:
                credential = reader.read(timeout_s=1)
            except ReaderDisconnectedError:
                time.sleep(0.05)
        assert credential == mifare_uid(UID7)
    finally:
        fresh.close()


def test_close_wakes_a_waiting_read(reader: PcscCardReader, card: FakeCard) -> None:
    result: list[object] = []

    def wait() -> None:
        try:
            result.append(reader.read(timeout_s=None))
        except ReaderDisconnectedError as exc:
            result.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    reader.close()
    thread.join(timeout=3)
    assert not thread.is_alive() and time.monotonic() - started < 2
    assert len(result) == 1
    assert result[0] is None or isinstance(result[0], ReaderDisconnectedError)


def test_registry_builds_the_pcsc_reader_and_checks_its_options(pcscd: PrivatePcscd) -> None:
    reader = reader_from_config("pcsc", {"reader": "00 00", "reopen_max_s": 1})
    try:
        assert isinstance(reader, PcscCardReader) and reader.reader_name == "00 00"
    finally:
        reader.close()
    with pytest.raises(ValueError, match="unknown option"):
        reader_from_config("pcsc", {"port": "/dev/ttyACM0"})
    with pytest.raises(ValueError, match="'reader' must be a str"):
        reader_from_config("pcsc", {"reader": 3})
