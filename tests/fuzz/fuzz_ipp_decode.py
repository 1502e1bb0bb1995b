"""Atheris fuzz target: the IPP decoder and request checks on untrusted bytes.

Any exception other than `IppError` (and its subclasses) is a bug: the endpoint turns IppError
into an IPP status, but anything else would escape as a server error. A message that decodes
must also encode again and decode to the same length (the codec is symmetric).

Run: `python tests/fuzz/fuzz_ipp_decode.py -atheris_runs=20000 -max_len=4096 CORPUS_COPY_DIR`
(libFuzzer adds new inputs to the first directory given: pass a copy of tests/fuzz/corpus).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports():
    from hardware.ipp.codec import (
        DecodeLimits,
        IppError,
        decode_message,
        encode_message,
        validate_request,
    )

# Smaller than the endpoint's limits so that the fuzzer reaches them within -max_len.
LIMITS = DecodeLimits(
    max_header_bytes=4096, max_attributes=64, max_values=256, max_collection_depth=4
)


def test_one_input(data: bytes) -> None:
    """Decode, validate and re-encode one input."""
    try:
        message, used = decode_message(data, limits=LIMITS)
    except IppError:
        return
    assert 9 <= used <= len(data), used
    with contextlib.suppress(IppError):
        validate_request(message)
    try:
        encoded = encode_message(message)
    except IppError:
        return  # e.g. an out-of-band value that carried octets: not re-encodable as received
    again, length = decode_message(encoded)
    assert length == len(encoded)
    assert len(again.groups) == len(message.groups)


def main() -> None:
    """libFuzzer entry point."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
