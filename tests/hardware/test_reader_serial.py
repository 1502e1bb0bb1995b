"""Serial / CDC-ACM readers: line framing, pyserial's loop://, and a pty pair playing the device.

Bytes written to a pty before pyserial opens it are lost (pyserial flushes input on open), so
every test writes only once the reader is connected.
"""

import logging
import os
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardware.readers.errors import CardUnreadableError, ReaderDisconnectedError
from hardware.readers.formats import h10301, mifare_uid
from hardware.readers.serial_link import LineFramer
from hardware.readers.serial_reader import SerialCardReader
from hardware.readers.text import ReaderFormat

BADGE = h10301(90, 324)
BITS = int.from_bytes(BADGE.raw, "big")
LINE = f"{BITS}\r\n".encode()


# ---- LineFramer (pure) ----


def test_framer_splits_on_cr_lf_and_crlf_and_drops_empty_lines() -> None:
    framer = LineFramer()
    assert framer.feed(b"one\rtwo\nthree\r\n\r\n\nfo") == [b"one", b"two", b"three"]
    assert framer.pending
    assert framer.feed(b"ur\n") == [b"four"]
    assert not framer.pending


def test_framer_keeps_partial_lines_across_chunks() -> None:
    framer = LineFramer()
    chunks = [LINE[:3], LINE[3:5], LINE[5:]]
    assert [framer.feed(c) for c in chunks] == [[], [], [str(BITS).encode()]]


def test_framer_drops_an_overlong_line_whole_and_resyncs() -> None:
    framer = LineFramer(max_line_bytes=16)
    assert framer.feed(b"1" * 10) == []
    assert framer.feed(b"2" * 10) == []  # now over the limit: the whole line goes
    assert framer.feed(b"33" + LINE) == []  # its tail is not taken for a badge
    assert framer.feed(LINE) == [str(BITS).encode()]
    assert framer.overlong_lines == 1


# ---- the reader on loop:// (what is written comes back) ----


@pytest.fixture
def loop_reader() -> Iterator[SerialCardReader]:
    reader = SerialCardReader("loop://", 9600, ReaderFormat())
    yield reader
    reader.close()


def write(reader: SerialCardReader, data: bytes) -> None:
    reader.link.port(0).write(data)


def test_loop_reads_a_badge_line(loop_reader: SerialCardReader) -> None:
    assert loop_reader.read(timeout_s=0.02) is None
    write(loop_reader, LINE)
    assert loop_reader.read(timeout_s=1) == BADGE


def test_loop_partial_line_waits_for_the_rest(loop_reader: SerialCardReader) -> None:
    write(loop_reader, LINE[:4])
    assert loop_reader.read(timeout_s=0.05) is None
    write(loop_reader, LINE[4:])
    assert loop_reader.read(timeout_s=1) == BADGE


def test_loop_noise_and_bad_lines_are_unreadable_taps_and_nothing_after_is_lost(
    loop_reader: SerialCardReader, caplog: pytest.LogCaptureFixture
) -> None:
    noise = b"\xff\xfe\x00\x1b[0m\r\n" + b"READER v1.2 READY\r\n" + b"7" * 500 + b"\n"
    wrong_parity = f"{BITS ^ 1}\n".encode()
    write(loop_reader, noise + wrong_parity + LINE)
    reasons = []
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):  # the overlong line is dropped by the framer, never parsed
            with pytest.raises(CardUnreadableError) as caught:
                loop_reader.read(timeout_s=1)
            reasons.append(caught.value.reason)
            assert str(BITS ^ 1) not in str(caught.value)
        assert loop_reader.read(timeout_s=1) == BADGE
    assert reasons == ["garbled", "garbled", "parity"]
    assert str(BITS ^ 1) not in caplog.text
    assert caplog.text.count("dropped") == 3
    assert loop_reader.link.framer.overlong_lines == 1


def test_loop_hex_uid_reader() -> None:
    reader = SerialCardReader("loop://", fmt=ReaderFormat(technology="mifare", encoding="hex"))
    write(reader, b"04 A1 B2 C3\n")
    assert reader.read(timeout_s=1) == mifare_uid(bytes.fromhex("04a1b2c3"))
    reader.close()


# ---- the reader on a pty pair: a real tty, opened by path, unplugged and plugged back ----


class FakeSerialDevice:
    """The device end of a pty; `link` is a stable symlink to the tty, like /dev/serial/by-id."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tmp = link.with_suffix(".new")
        tmp.symlink_to(os.ttyname(self.slave))
        tmp.replace(link)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def unplug(self) -> None:
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def by_id(tmp_path: Path) -> Path:
    return tmp_path / "usb-Acme_Badge_Reader_0001-if00"


def test_pty_reader_reads_badges(by_id: Path) -> None:
    device = FakeSerialDevice(by_id)
    reader = SerialCardReader(str(by_id), 9600, ReaderFormat())
    assert reader.connected
    device.send(LINE[:2])
    assert reader.read(timeout_s=0.05) is None
    device.send(LINE[2:] + LINE)
    assert reader.read(timeout_s=1) == BADGE
    assert reader.read(timeout_s=1) == BADGE
    reader.close()
    device.unplug()


def test_pty_garbage_is_an_unreadable_tap_and_the_next_badge_still_reads(by_id: Path) -> None:
    device = FakeSerialDevice(by_id)
    reader = SerialCardReader(str(by_id), 9600, ReaderFormat())
    device.send(b"12x45\r\n" + LINE)  # a digit garbled on the wire, then a good tap
    with pytest.raises(CardUnreadableError) as caught:
        reader.read(timeout_s=1)
    assert caught.value.reason == "garbled" and "12x45" not in str(caught.value)
    assert reader.read(timeout_s=1) == BADGE
    reader.close()
    device.unplug()


def test_pty_unplug_is_reported_and_the_port_reopens(by_id: Path) -> None:
    device = FakeSerialDevice(by_id)
    reader = SerialCardReader(
        str(by_id), 9600, ReaderFormat(), reopen_min_s=0.01, reopen_max_s=0.05
    )
    device.unplug()
    with pytest.raises(ReaderDisconnectedError, match="disconnected"):
        reader.read(timeout_s=1)
    by_id.unlink()
    with pytest.raises(ReaderDisconnectedError, match="not connected"):
        reader.read(timeout_s=0.1)
    device = FakeSerialDevice(by_id)  # plugged back in: the same by-id name, a new tty
    assert reader.read(timeout_s=0.2) is None
    assert reader.connected
    device.send(LINE)
    assert reader.read(timeout_s=1) == BADGE
    reader.close()
    device.unplug()


def test_pty_reader_missing_at_start_is_reported_by_read(by_id: Path) -> None:
    reader = SerialCardReader(str(by_id), 9600, ReaderFormat(), reopen_min_s=0.01)
    assert not reader.connected
    with pytest.raises(ReaderDisconnectedError):
        reader.read(timeout_s=0.05)
    reader.close()
