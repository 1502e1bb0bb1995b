"""IppPrinterTransport against a real IPP Everywhere printer: Debian's ippeveprinter."""

from __future__ import annotations

import io
import threading

import pytest
from PIL import Image

from hardware.printers.ipp import IppPrinterTransport
from hardware.printers.transport import PrintJob

pytestmark = pytest.mark.ippeveprinter


def make_pdf() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (200, 280), "white").save(out, format="PDF")
    return out.getvalue()


def client(uri: str) -> IppPrinterTransport:
    return IppPrinterTransport(uri, timeout_s=10, poll_interval_s=0.1, busy_backoff_s=0.2)


def test_document_arrives_byte_identical_under_the_release_id(ippeveprinter):
    document = make_pdf()
    job = PrintJob("release-7f3a", "alice", "application/pdf")
    transport = client(ippeveprinter.uri)
    chunks = (document[i : i + 1000] for i in range(0, len(document), 1000))
    result = transport.deliver(job, chunks)

    [kept] = ippeveprinter.documents()
    assert kept.read_bytes() == document
    assert kept.name == f"{result.printer_job_id}-release-7f3a.pdf"  # job-name reached it
    assert result.bytes_sent == len(document)
    assert transport.find_job("release-7f3a") == result.printer_job_id
    assert transport.find_job("release-unknown") is None
    attrs = transport.printer_attributes("printer-name", "document-format-supported")
    assert "application/pdf" in attrs.get_strs("document-format-supported")
    transport.close()


def test_concurrent_deliveries_wait_out_the_busy_printer(ippeveprinter):
    """ippeveprinter prints one job at a time and answers server-error-busy to the others."""
    results: dict[str, int | None] = {}
    errors: list[BaseException] = []

    def deliver(n: int) -> None:
        try:
            result = client(ippeveprinter.uri).deliver(
                PrintJob(f"release-{n}", "bob", "text/plain"), [f"job {n}\n".encode()]
            )
            results[f"release-{n}"] = result.printer_job_id
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    kept = {p.name.split("-", 1)[1].rsplit(".", 1)[0]: p for p in ippeveprinter.documents()}
    assert sorted(kept) == ["release-0", "release-1", "release-2"]
    for n in range(3):
        assert kept[f"release-{n}"].read_bytes() == f"job {n}\n".encode()
