"""The pairing rate limit holds exactly under concurrent requests, on SQLite and on PostgreSQL.

Counting the recent requests and then inserting one is a race when two transactions count at
once; on PostgreSQL (writers side by side at READ COMMITTED) the limit was exceeded by a few.
Each test lets a burst of requests start at the same moment (a barrier) and checks that exactly
the budget succeeds and every other request gets the rate-limit answer.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from cloud import pairing
from cloud.db import PairingRequest
from cloud.errors import TooManyRequestsError
from cloud.server import RunningServer
from cloud.service import CloudService
from tests.cloud.conftest import new_identity
from tests.cloud.test_pairing import b64url

BURST = pairing.MAX_REQUESTS_PER_SOURCE + 14


def _requests_stored(service: CloudService) -> int:
    with service.context.read() as db:
        return int(db.scalar(select(func.count()).select_from(PairingRequest)) or 0)


def test_a_burst_from_one_address_gets_exactly_its_budget(server: RunningServer) -> None:
    identity = new_identity()
    body = {
        "signing_key": b64url(identity.signing_public),
        "exchange_key": b64url(identity.exchange_public),
    }
    url = f"http://127.0.0.1:{server.port}/api/v1/pairing/requests"
    start = threading.Barrier(BURST)

    def ask(_: int) -> tuple[int, str | None]:
        with httpx.Client(trust_env=False, timeout=60) as client:
            start.wait()
            response = client.post(url, json=body)
        code = response.json().get("code") if response.status_code != 201 else None
        return response.status_code, code

    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(ask, range(BURST)))
    granted = [a for a in answers if a[0] == 201]
    refused = [a for a in answers if a != (201, None)]
    assert len(granted) == pairing.MAX_REQUESTS_PER_SOURCE, answers
    assert refused == [(429, "rate-limited")] * (BURST - pairing.MAX_REQUESTS_PER_SOURCE)
    assert _requests_stored(server.app.state.service) == pairing.MAX_REQUESTS_PER_SOURCE


def test_a_burst_from_many_addresses_gets_exactly_the_global_budget(
    service: CloudService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small global budget, so that a burst can overrun it with few threads; every request
    # comes from its own address, so the per-source budget never binds.
    budget = 8
    monkeypatch.setattr(pairing, "MAX_REQUESTS_GLOBAL", budget)
    identity = new_identity()
    keys = (identity.signing_public, identity.exchange_public)
    burst = budget + 12
    start = threading.Barrier(burst)

    def ask(n: int) -> str:
        start.wait()
        try:
            service.pairing.request(*keys, f"198.51.100.{n}")
        except TooManyRequestsError as exc:
            return exc.code
        return "granted"

    with ThreadPoolExecutor(burst) as pool:
        answers = list(pool.map(ask, range(burst)))
    assert answers.count("granted") == budget, answers
    assert answers.count("rate-limited") == burst - budget, answers
    assert _requests_stored(service) == budget
