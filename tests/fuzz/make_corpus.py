"""Write the regression corpus: malformed IPP requests modelled on the 2023-2024 advisories.

Run `python -m tests.fuzz.make_corpus` to regenerate `tests/fuzz/corpus/` (the files are checked
in: they seed the fuzzer and `tests/cloud/ipp/test_ipp_corpus.py` posts each to /ipp/print).
`EXPECTED` lists the IPP status-code the endpoint must answer each with.

Where they come from:

* CVE-2024-47076 (libcupsfilters, GHSA-w63j-6g73-wmg5): IPP attributes used without checking
  their syntax; and the 2026 audit finding OCU-01-003 (wrong-tag attributes crash string code):
  `charset-wrong-tag`, `bad-integer-length`, `bad-boolean`, `bad-utf8-name`, `date-time-invalid`.
* CVE-2024-47175 (libppd, GHSA-7xfx-47qg-grp6): attribute text with newlines copied into a PPD:
  `newline-in-format` (refused as an unsupported format, never interpreted).
* CVE-2024-47176 (cups-browsed, GHSA-rj88-6mr5-rcw8): trusting whatever a peer sends; and
  CVE-2023-32324 / CVE-2023-34241 (cupsd heap overflow / use-after-free on odd requests): lengths
  that lie, truncation, collection structure abuse, and resource exhaustion: the rest.
"""

from __future__ import annotations

import struct
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"

OK, BAD = 0x0000, 0x0400
NOT_FOUND, TOO_LARGE, FORMAT, CHARSET = 0x0406, 0x0408, 0x040A, 0x040D
OP_NOT_SUPPORTED, VERSION = 0x0501, 0x0503


def header(operation: int = 0x000B, request_id: int = 1, version: bytes = b"\x02\x00") -> bytes:
    return version + struct.pack(">Hi", operation, request_id)


def field(tag: int, name: bytes, value: bytes) -> bytes:
    return (
        bytes([tag]) + struct.pack(">h", len(name)) + name + struct.pack(">h", len(value)) + value
    )


def raw_field(tag: int, name: bytes, length: int, value: bytes) -> bytes:
    """A field whose value-length is `length`, whatever the value is."""
    return bytes([tag]) + struct.pack(">h", len(name)) + name + struct.pack(">H", length) + value


def op_group(*extra: bytes, uri: bytes = b"ipp://127.0.0.1/ipp/print") -> bytes:
    return (
        b"\x01"
        + field(0x47, b"attributes-charset", b"utf-8")
        + field(0x48, b"attributes-natural-language", b"en")
        + field(0x45, b"printer-uri", uri)
        + b"".join(extra)
    )


END = b"\x03"


def nested(depth: int) -> bytes:
    """A collection nested `depth` levels deep."""
    out = field(0x34, b"media-col", b"")
    for _ in range(depth - 1):
        out += field(0x4A, b"", b"m") + field(0x34, b"", b"")
    out += field(0x4A, b"", b"x") + field(0x21, b"", b"\x00\x00\x00\x01")
    out += field(0x37, b"", b"") * depth
    return out


def entries() -> dict[str, tuple[bytes, int]]:
    """File name -> (request bytes, expected status-code)."""
    gpa = header()
    many_attrs = b"".join(field(0x44, b"a%05d" % i, b"k") for i in range(5000))
    many_values = field(0x44, b"requested-attributes", b"all") + field(0x44, b"", b"x") * 70_000
    big_values = b"".join(field(0x41, b"t%03d" % i, b"v" * 30_000) for i in range(40))
    return {
        "baseline-get-printer-attributes": (gpa + op_group() + END, OK),
        "value-length-negative": (gpa + op_group(raw_field(0x44, b"k", 0xFFFF, b"")) + END, BAD),
        "value-length-overrun": (gpa + op_group(raw_field(0x44, b"k", 0x7FFF, b"abc")), BAD),
        "name-length-overrun": (gpa + b"\x01\x47\x7f\xffabc", BAD),
        "truncated-header": (gpa[:5], BAD),
        "truncated-in-value": (gpa + op_group()[:-7], BAD),
        "no-end-of-attributes": (gpa + op_group(), BAD),
        "member-outside-collection": (gpa + op_group(field(0x4A, b"", b"x")) + END, BAD),
        "end-collection-outside": (gpa + op_group(field(0x37, b"", b"")) + END, BAD),
        "collection-too-deep": (gpa + op_group(nested(40)) + END, BAD),
        "collection-unterminated": (
            gpa + op_group(field(0x34, b"media-col", b""), field(0x4A, b"", b"x")) + END,
            BAD,
        ),
        "collection-value-before-member": (
            gpa
            + op_group(field(0x34, b"media-col", b""), field(0x21, b"", b"\x00\x00\x00\x01"))
            + END,
            BAD,
        ),
        "collection-member-with-name": (
            gpa + op_group(field(0x34, b"media-col", b""), field(0x4A, b"bad", b"x")) + END,
            BAD,
        ),
        "too-many-attributes": (gpa + op_group(many_attrs) + END, BAD),
        "too-many-values": (gpa + op_group(many_values) + END, BAD),
        "header-too-large": (gpa + op_group(big_values) + END, TOO_LARGE),
        "additional-value-first": (gpa + b"\x01" + field(0x44, b"", b"x") + END, BAD),
        "reserved-delimiter-00": (gpa + b"\x00" + END, BAD),
        "attribute-before-group": (gpa + field(0x47, b"attributes-charset", b"utf-8") + END, BAD),
        "bad-integer-length": (gpa + op_group(field(0x21, b"limit", b"\x00\x01")) + END, BAD),
        "bad-boolean": (gpa + op_group(field(0x22, b"my-jobs", b"\x02")) + END, BAD),
        "bad-utf8-name": (gpa + op_group(field(0x44, b"\xff\xfe", b"x")) + END, BAD),
        "bad-utf8-value": (gpa + op_group(field(0x41, b"job-name", b"\xc3\x28")) + END, BAD),
        "text-with-language-lengths": (
            gpa + op_group(field(0x35, b"t", b"\x00\x02en\x00\x09abc")) + END,
            BAD,
        ),
        "date-time-invalid": (
            gpa + op_group(field(0x31, b"d", b"\x07\xe8\x0d\x01\x00\x00\x00\x00+\x00\x00")) + END,
            BAD,
        ),
        "charset-wrong-tag": (
            gpa
            + b"\x01"
            + field(0x21, b"attributes-charset", b"\x00\x00\x00\x01")
            + field(0x48, b"attributes-natural-language", b"en")
            + END,
            CHARSET,
        ),
        "charset-missing": (
            gpa + b"\x01" + field(0x48, b"attributes-natural-language", b"en") + END,
            BAD,
        ),
        "version-0-0": (header(version=b"\x00\x00") + op_group() + END, VERSION),
        "request-id-zero": (header(request_id=0) + op_group() + END, BAD),
        "request-id-negative": (header(request_id=-5) + op_group() + END, BAD),
        "unknown-operation": (header(operation=0x4242) + op_group() + END, OP_NOT_SUPPORTED),
        "extension-tag": (gpa + op_group(field(0x7F, b"x", b"\x40\x00\x00\x01abc")) + END, OK),
        "newline-in-format": (
            header(operation=0x0004)
            + op_group(
                field(0x42, b"job-name", b'x\n*FoomaticRIPCommandLine: "touch /tmp/pwned"'),
                field(0x49, b"document-format", b"application/vnd.cups-ppd\n*Evil: 1"),
            )
            + END,
            FORMAT,
        ),
        "print-job-without-document": (header(operation=0x0002) + op_group() + END, BAD),
        "send-document-unknown-job": (
            header(operation=0x0006)
            + op_group(
                field(0x21, b"job-id", struct.pack(">i", 999_999)),
                field(0x22, b"last-document", b"\x01"),
            )
            + END
            + b"%PDF-1.4\n",
            NOT_FOUND,
        ),
        "job-id-negative": (
            header(operation=0x0009) + op_group(field(0x21, b"job-id", b"\xff\xff\xff\xff")) + END,
            NOT_FOUND,
        ),
    }


MAX_FILE_BYTES = 64 * 1024  # bigger inputs are only generated (by the corpus test), not stored


def main() -> None:
    """(Re)write the corpus files and EXPECTED."""
    CORPUS.mkdir(exist_ok=True)
    for old in CORPUS.glob("*.ipp"):
        old.unlink()
    lines = ["# corpus file -> IPP status-code the endpoint answers (tests/fuzz/make_corpus.py)"]
    for name, (data, status) in sorted(entries().items()):
        if len(data) > MAX_FILE_BYTES:
            lines.append(f"# {name}: {len(data)} bytes, generated by the test only")
            continue
        (CORPUS / f"{name}.ipp").write_bytes(data)
        lines.append(f"{name}.ipp 0x{status:04x}")
    (CORPUS / "EXPECTED").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
