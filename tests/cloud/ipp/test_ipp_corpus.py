"""Every malformed request of the regression corpus gets a clear IPP status, and the endpoint
keeps answering afterwards (tests/fuzz/make_corpus.py says where each input comes from)."""

from __future__ import annotations

import pytest

from hardware.ipp.codec import decode_message
from hardware.ipp.enums import Operation, StatusCode
from tests.cloud.ipp.conftest import IppWorld
from tests.fuzz.make_corpus import CORPUS, entries

ENTRIES = entries()


def test_expected_file_lists_every_stored_input() -> None:
    listed = {
        line.split()[0]: int(line.split()[1], 16)
        for line in (CORPUS / "EXPECTED").read_text().splitlines()
        if line and not line.startswith("#")
    }
    stored = {p.name for p in CORPUS.glob("*.ipp")}
    assert set(listed) == stored
    for name, status in listed.items():
        assert ENTRIES[name.removesuffix(".ipp")][1] == status


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_malformed_request_gets_an_ipp_status(ipp_world: IppWorld, name: str) -> None:
    data, expected = ENTRIES[name]
    reply = ipp_world.post(data)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/ipp"
    message, _ = decode_message(reply.content)
    assert message.operation_id_or_status_code == expected, (
        f"{name}: got 0x{message.operation_id_or_status_code:04x}, expected 0x{expected:04x}"
    )
    # Still answering, and on the same footing.
    after = ipp_world.call(Operation.GET_PRINTER_ATTRIBUTES)
    assert after.status_code == StatusCode.SUCCESSFUL_OK
