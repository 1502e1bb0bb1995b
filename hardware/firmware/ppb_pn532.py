"""A PN532 driver for the reader bridge: ISO 14443-A UIDs (4, 7 or 10 bytes) with SENS_RES, SEL_RES.

Pure (no `machine`): the bus is a `Link` that `ppb_board` builds (I2C at 0x24, or SPI), so this
module runs under CPython and on the MicroPython webassembly port in CI as well as on the Pico.

Frames, from the NXP PN532 User Manual (UM0701-02, 6.2.1):

    normal information frame   00 | 00 FF | LEN | LCS | TFI | PD0 .. PDn | DCS | 00
                               LEN counts TFI and data; LEN + LCS = 0 and
                               TFI + PD0 + .. + PDn + DCS = 0 (mod 256);
                               TFI D4 host to PN532, D5 PN532 to host
    ACK                        00 00 FF 00 FF 00   (the PN532 took a command; from the host: abort)
    NACK                       00 00 FF FF 00 00   (from the host: send the last response again)
    error frame                00 00 FF 01 FF 7F 81 00   (syntax error at application level)
    extended frame             00 00 FF FF FF LENM LENL LCS ...   (never needed here: refused)

A command is: host writes the frame; waits until the PN532 is ready; reads the ACK; waits again;
reads the response (D5, command + 1, data). A response that fails its checksum is asked for again
with a NACK (up to `nacks` times); a command that fails (no ACK, no answer within `max_polls`
status polls, a bad frame) is aborted with an ACK, so the next command starts clean.

Start-up (`start`): GetFirmwareVersion (0x02) detects the chip (IC 0x32), SAMConfiguration (0x14,
normal mode) takes a C106 out of its low-battery start-up mode, RFConfiguration (0x32, item 5)
bounds InListPassiveTarget's retries so that "no card" is answered at once instead of waited on
for ever (the default). A poll is InListPassiveTarget (0x4A) for one target at 106 kbps type A.

Errors are `PN532Error`, an `OSError` like a bus error: the bridge counts either as "no card on
this poll" and tries again on the next one. Messages name what was wrong, never a UID.
"""

from ppb_bridge import CardSource

HOST_TO_PN532 = 0xD4
PN532_TO_HOST = 0xD5
ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
ERROR_FRAME = b"\x00\x00\xff\x01\xff\x7f\x81\x00"
APPLICATION_ERROR = 0x7F

GET_FIRMWARE_VERSION = 0x02
SAM_CONFIGURATION = 0x14
RF_CONFIGURATION = 0x32
IN_LIST_PASSIVE_TARGET = 0x4A

PN532_IC = 0x32
I2C_ADDRESS = 0x24
# SPI prefix bytes (UM0701-02 6.2.5): the first byte of every SPI transfer says what it is.
SPI_DATA_WRITE = 0x01
SPI_STATUS_READ = 0x02
SPI_DATA_READ = 0x03

_BAUD_106_TYPE_A = 0x00
_MAX_RETRIES_ITEM = 0x05
_UID_SIZES = (4, 7, 10)  # by the UID-size bits of SENS_RES: single, double, triple


class PN532Error(OSError):
    """The PN532 did not answer, or answered with a bad frame; `reason` says which, in a word."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def frame(data: bytes) -> bytes:
    """The normal information frame carrying `data` (TFI, command code, parameters)."""
    length = len(data)
    if not 1 <= length <= 255:
        raise ValueError("a normal frame carries 1-255 bytes")
    checksum = 0
    for byte in data:
        checksum += byte
    return (
        bytes((0x00, 0x00, 0xFF, length, -length & 0xFF)) + data + bytes((-checksum & 0xFF, 0x00))
    )


def parse_frame(raw: bytes) -> bytes:
    """The data (TFI onwards) of the frame at the start of `raw`; b"" for an ACK.

    Leading 0x00 bytes (preamble) are skipped and bytes after the postamble ignored (a bus read
    is longer than the frame). Raises PN532Error: "nack", "extended", "error-frame",
    "length-checksum", "checksum", "framing" (no start code, truncated, no postamble).
    """
    start = 0
    while start < len(raw) and raw[start] == 0x00:
        start += 1
    if start == 0 or start + 2 >= len(raw) or raw[start] != 0xFF:
        raise PN532Error("framing")
    length, lcs = raw[start + 1], raw[start + 2]
    if length == 0x00 and lcs == 0xFF:
        return b""  # ACK
    if length == 0xFF and lcs == 0x00:
        raise PN532Error("nack")
    if length == 0xFF and lcs == 0xFF:
        raise PN532Error("extended")
    if (length + lcs) & 0xFF:
        raise PN532Error("length-checksum")
    body = start + 3
    if body + length + 2 > len(raw):
        raise PN532Error("framing")
    data = raw[body : body + length]
    checksum = raw[body + length]
    for byte in data:
        checksum += byte
    if checksum & 0xFF:
        raise PN532Error("checksum")
    if raw[body + length + 1] != 0x00:
        raise PN532Error("framing")
    if data == bytes((APPLICATION_ERROR,)):
        raise PN532Error("error-frame")
    return data


def _reverse(byte: int) -> int:
    out = 0
    for _ in range(8):
        out = (out << 1) | (byte & 1)
        byte >>= 1
    return out


_REVERSED = bytes(_reverse(b) for b in range(256))


def reverse_bits(data: bytes) -> bytes:
    """Each byte with its bits in the other order (LSB-first SPI on MSB-first hardware)."""
    return bytes(_REVERSED[b] for b in data)


class Link:
    """The bus to the PN532 (`ppb_board.Pn532I2C`, `Pn532SPI`): frames out, readiness, bytes in."""

    def write(self, data: bytes) -> None:
        """Send a frame (ACK and NACK included)."""
        raise NotImplementedError

    def ready(self) -> bool:
        """True when the PN532 has a frame for the host (the status byte's bit 0)."""
        raise NotImplementedError

    def read(self, count: int) -> bytes:
        """`count` bytes of the waiting frame, without the bus's status or prefix byte."""
        raise NotImplementedError


class Target:
    """A card found by InListPassiveTarget: its UID (in the card's order), SENS_RES and SEL_RES."""

    def __init__(self, uid: bytes, sens_res: bytes, sel_res: int) -> None:
        self.uid = uid
        self.sens_res = sens_res  # ATQA, most significant byte first, as the PN532 gives it
        self.sel_res = sel_res  # SAK


class PN532(CardSource):
    """A PN532 on a `Link`; `read_uid` polls for one ISO 14443-A card.

    A chip that is missing or not answering at construction is looked for again on every poll,
    so the bridge keeps answering the station (and a reader plugged in late starts working).
    """

    def __init__(
        self,
        link: Link,
        max_polls: int = 400,
        nacks: int = 2,
        passive_retries: int = 1,
        read_size: int = 64,  # the longest answer: a 10-byte UID and a 20-byte ATS
    ) -> None:
        self.link = link
        self.max_polls = max_polls  # guards every wait: a missing chip must not hang the loop
        self.nacks = nacks
        self.passive_retries = passive_retries
        self.read_size = read_size
        self.firmware: tuple[int, int, int, int] | None = None  # (IC, Ver, Rev, Support)
        try:
            self.start()
        except OSError:
            self.firmware = None

    # ---- commands ----

    def command(self, code: int, params: bytes = b"") -> bytes:
        """Send command `code`; the response's data after D5 and code + 1."""
        self.link.write(frame(bytes((HOST_TO_PN532, code)) + params))
        try:
            return self._exchange(code)
        except PN532Error:
            # Abort whatever the chip may still be doing for this command, so that a late
            # answer is not read as the next command's.
            self.link.write(ACK)
            raise

    def _exchange(self, code: int) -> bytes:
        self._wait()
        if parse_frame(self.link.read(len(ACK))) != b"":
            raise PN532Error("no-ack")
        attempt = 0
        while True:
            self._wait()
            try:
                data = parse_frame(self.link.read(self.read_size))
            except PN532Error as exc:
                if exc.reason != "checksum" or attempt >= self.nacks:
                    raise
                attempt += 1
                self.link.write(NACK)  # the PN532 sends the same response again
                continue
            if len(data) < 2 or data[0] != PN532_TO_HOST or data[1] != code + 1:
                raise PN532Error("framing")
            return data[2:]

    def _wait(self) -> None:
        for _ in range(self.max_polls):
            if self.link.ready():
                return
        raise PN532Error("timeout")

    def start(self) -> None:
        """Detect the chip (GetFirmwareVersion) and configure it; OSError if it is not there."""
        self.firmware = None
        try:
            version = self.command(GET_FIRMWARE_VERSION)
        except PN532Error:
            # The first command after power-up only wakes the chip (I2C, SPI): ask again.
            version = self.command(GET_FIRMWARE_VERSION)
        if len(version) != 4 or version[0] != PN532_IC:
            raise PN532Error("not-pn532")
        self.command(SAM_CONFIGURATION, bytes((0x01, 0x14, 0x01)))  # normal mode, 1 s, IRQ
        # MaxRetries: ATR 0xFF, PSL 1, passive activation bounded (0xFF would wait for ever).
        self.command(RF_CONFIGURATION, bytes((_MAX_RETRIES_ITEM, 0xFF, 0x01, self.passive_retries)))
        self.firmware = (version[0], version[1], version[2], version[3])

    # ---- the card ----

    def read_target(self) -> Target | None:
        """The card in the field (UID, SENS_RES, SEL_RES), or None if there is none."""
        if self.firmware is None:
            self.start()
        data = self.command(IN_LIST_PASSIVE_TARGET, bytes((1, _BAUD_106_TYPE_A)))
        if not data or data[0] == 0:
            return None
        # NbTg 1, then Tg, SENS_RES (2), SEL_RES, NFCIDLength, NFCID1 (then ATS, if any).
        if data[0] != 1 or len(data) < 6:
            raise PN532Error("framing")
        size = data[5]
        uid = bytes(data[6 : 6 + size])
        size_bits = (data[3] >> 6) & 0x03
        if len(uid) != size or size_bits > 2 or _UID_SIZES[size_bits] != size:
            raise PN532Error("uid-size")  # SENS_RES and the UID disagree: a garbled answer
        return Target(uid, bytes(data[2:4]), data[4])

    def read_uid(self) -> bytes | None:
        """The UID of the card in the field, or None (the bridge's `CardSource` port)."""
        target = self.read_target()
        return None if target is None else target.uid
