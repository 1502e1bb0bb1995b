"""What each way of identifying at a station costs the cloud (a benchmark script, not a test).

    python -m tools.bench_identity [--users N] [--runs N]

Opens an embedded cloud service in a temporary directory, enrols N users (badge, PIN, release
passcode), and times, in process (no HTTP): a badge tap, a badge + PIN under the card + PIN
policy (one Argon2id verification, OWASP parameters), a release passcode, an enrolment code for
an unknown badge. Prints p50/p99 in milliseconds and operations per second for each.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cloud.config import generate_secrets, load_config
from cloud.identity import StationPrincipal
from cloud.pins import pin_tag
from cloud.service import CloudService
from station.signing import StationIdentity

PIN = "402817"


def _station(service: CloudService, site_key: bytes) -> StationPrincipal:
    """A station paired the way `pullprint pair` does, straight through the service."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )
    from cryptography.hazmat.primitives.asymmetric.x25519 import (  # noqa: PLC0415
        X25519PrivateKey,
    )

    keys = StationIdentity(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    issued = service.pairing.request(keys.signing_public, keys.exchange_public, "127.0.0.1")
    uri = "ipp://127.0.0.1:9/ipp/print"
    approved = service.pairing.approve(
        issued.user_code, site_key=site_key, printer_name="bench", printer_uri=uri
    )
    return StationPrincipal(approved.station_id, approved.site, "bench", uri)


def _time(runs: int, action: Callable[[int], object]) -> list[float]:
    took = []
    for i in range(runs):
        start = time.perf_counter()
        action(i)
        took.append((time.perf_counter() - start) * 1000)
    return took


def _line(name: str, took: list[float]) -> str:
    ordered = sorted(took)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    per_s = 1000 * len(took) / sum(took)
    return f"{name:<28} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   {per_s:8.1f}/s"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per way of identifying."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pullprint-bench-identity-") as tmp:
        data = Path(tmp)
        generate_secrets(data / "secrets.toml")
        service = CloudService.open(load_config(None, {"PULLPRINT_DATA_DIR": str(data)}))
        try:
            site_key = os.urandom(32)
            station = _station(service, site_key)
            users = []
            for n in range(args.users):
                issued = service.identity.create_user(f"u{n}@example.org", f"User {n}")
                tag = secrets.token_hex(32)
                service.identity.add_card(issued.id, tag, "badge")
                users.append((issued.email, tag))
            for email, _ in users[: args.runs]:
                service.pins.set_pin(email, PIN, site_key)
            service.identity.set_policy(passcode_mode="long-lived")
            codes = [
                service.release_passcodes.issue(service.passcodes.user_by_email(email).id).passcode
                for email, _ in users[: args.runs]
            ]
            runs = min(args.runs, len(users))
            print(f"{args.users} users, {runs} runs each (embedded SQLite, in process)")
            print(
                _line(
                    "badge tap",
                    _time(runs, lambda i: service.sessions.open_card(station, users[i][1])),
                )
            )
            service.identity.set_policy(card_pin=True)
            print(
                _line(
                    "badge + PIN (Argon2id)",
                    _time(
                        runs,
                        lambda i: service.sessions.open_card(
                            station, users[i][1], pin_tag(site_key, users[i][0], PIN)
                        ),
                    ),
                )
            )
            print(
                _line(
                    "release passcode",
                    _time(runs, lambda i: service.sessions.open_with_passcode(station, codes[i])),
                )
            )
            service.identity.set_policy(self_enrolment=True)
            offers = min(runs, 10)  # a station gets 10 enrolment codes an hour
            print(
                _line(
                    "enrolment code offered",
                    _time(
                        offers, lambda i: service.enrolment.offer(station, secrets.token_hex(32))
                    ),
                )
            )
        finally:
            service.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
