"""The canonical credential, card formats and the simulated reader."""

import threading

import pytest

from hardware.readers.base import Credential
from hardware.readers.formats import CardFormatError, h10301, parse_h10301
from hardware.readers.simulated import SimulatedCardReader


def test_h10301_matches_the_published_example() -> None:
    credential = h10301(90, 324)
    bits = int.from_bytes(credential.raw, "big")
    assert format(bits, "026b") == "00101101000000001010001000"
    assert parse_h10301(bits) == (90, 324)
    assert credential.canonical() == "h10301/26/" + credential.raw.hex()


@pytest.mark.parametrize("flip", [0, 1, 12, 25])
def test_h10301_parity_errors_are_caught(flip: int) -> None:
    bits = int.from_bytes(h10301(90, 324).raw, "big") ^ (1 << flip)
    with pytest.raises(CardFormatError):
        parse_h10301(bits)


@pytest.mark.parametrize(("facility", "number"), [(256, 1), (-1, 1), (1, 65536)])
def test_h10301_refuses_out_of_range(facility: int, number: int) -> None:
    with pytest.raises(CardFormatError):
        h10301(facility, number)


def test_credential_validates_its_bits() -> None:
    with pytest.raises(ValueError, match="exactly"):
        Credential("mifare", 32, b"\x01\x02")
    with pytest.raises(ValueError, match="above"):
        Credential("h10301", 26, b"\xff\xff\xff\xff")
    with pytest.raises(ValueError, match="technology"):
        Credential("a|b", 8, b"\x01")


def test_credential_repr_never_shows_the_number() -> None:
    credential = Credential("mifare", 32, bytes.fromhex("deadbeef"))
    assert "deadbeef" not in repr(credential)
    assert "de ad" not in repr(credential)


def test_same_badge_same_canonical_form_across_case() -> None:
    assert (
        Credential("MIFARE", 32, b"\x04\x05\x06\x07").canonical()
        == Credential("mifare", 32, b"\x04\x05\x06\x07").canonical()
    )


def test_simulated_reader_delivers_taps_in_order_and_times_out() -> None:
    reader = SimulatedCardReader()
    assert reader.read(timeout_s=0.01) is None
    first, second = h10301(1, 1), h10301(1, 2)
    threading.Timer(0.05, reader.present, args=(first,)).start()
    assert reader.read(timeout_s=5) == first
    reader.present(second)
    assert reader.read(timeout_s=0) == second
    reader.close()
    assert reader.closed
