"""`python -m tools.printer_sim`: the virtual IPP printer in a process of its own.

Prints its URI on the first line of stdout, then one line per finished job
(`job N state=completed bytes=B sha256=H name=NAME`), so a benchmark can measure a station without
the printer sharing its memory.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from hardware.printers.virtual import VirtualPrinter


def main(argv: Sequence[str] | None = None) -> int:
    """Run a virtual printer on 127.0.0.1 until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m tools.printer_sim", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--processing-s", type=float, default=0.0)
    parser.add_argument(
        "--discard",
        action="store_true",
        help="keep only each document's size and SHA-256, not its bytes",
    )
    args = parser.parse_args(argv)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with VirtualPrinter(
        port=args.port, processing_s=args.processing_s, keep_documents=not args.discard
    ) as printer:
        print(printer.uri, flush=True)
        reported = 0
        try:
            while not stopping.wait(0.05):
                done = printer.received + printer.aborted
                for doc in sorted(done, key=lambda d: d.completed_at)[reported:]:
                    state = "aborted" if doc in printer.aborted else "completed"
                    print(
                        f"job {doc.printer_job_id} state={state} bytes={doc.size} "
                        f"sha256={doc.sha256} name={doc.job_name}",
                        flush=True,
                    )
                reported = len(done)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
