"""The updater's side of the cloud API: the signed update poll, the bundle, the status report.

An `UpdateSource` over `station.cloud_client.CloudClient` (same signing, timeouts, retries and
problem translation). The cloud's answers are not trusted for anything that matters: the bundle
carries its own signature, and the offer's size and sha256 only let a cut-off download be told
apart from a tampered one.
"""

from __future__ import annotations

import logging
from typing import Any, BinaryIO
from urllib.parse import quote

from station.cloud_client import CloudClient
from station.cloud_http import finish, json_of
from station.errors import CloudError, CloudUnreachableError
from station.updates import POLICIES, UpdateOffer

log = logging.getLogger(__name__)

OFFER_PATH = "/api/v1/station/update"
REPORT_PATH = "/api/v1/station/update/report"
BUNDLE_PREFIX = "/api/v1/station/update/bundles/"


class UpdateClient(CloudClient):
    """`CloudClient` plus the three update calls."""

    def offer(self, current: str | None) -> UpdateOffer:
        """GET the site's policy and offered version (idempotent: retried)."""
        path = OFFER_PATH + (f"?current={quote(current, safe='')}" if current else "")
        response = self._request("GET", path, expect=200, retry=True)
        try:
            body = json_of(response)
            policy = body["policy"]
            if policy not in POLICIES:
                raise ValueError(policy)
            offered = body.get("offer")
            if offered is None:
                return UpdateOffer(policy=policy)
            bundle_path = str(offered["bundle"])
            if not bundle_path.startswith(BUNDLE_PREFIX):
                raise ValueError("bundle path")  # only ever fetched from this API
            return UpdateOffer(
                policy=policy,
                version=str(offered["version"]),
                min_version=str(offered["min_version"]),
                sha256=str(offered["sha256"]),
                size=int(offered["size"]),
                bundle_path=bundle_path,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CloudError("malformed update offer from the cloud") from exc

    def download(self, offer: UpdateOffer, out: BinaryIO, limit: int) -> None:
        """Stream the bundle into `out`; stops after `limit` bytes (the caller checks sizes)."""
        if offer.bundle_path is None:
            raise CloudError("the offer names no bundle")
        response = self._request("GET", offer.bundle_path, expect=200, stream=True, retry=True)
        written = 0
        try:
            for chunk in self._chunks(response):
                out.write(chunk[: max(0, limit - written)])
                written += len(chunk)
                if written >= limit:
                    break
        except CloudUnreachableError:
            # A cut-off stream: what arrived is kept, and the size check names the truncation.
            log.warning("the bundle download broke off after %d bytes", written)
        finally:
            finish(response)

    def report(self, health: dict[str, Any]) -> None:
        """POST the update section of the health report (idempotent: the latest wins)."""
        steps = health.get("steps") or []
        last = steps[-1] if steps else {}
        payload = {
            "state": str(health.get("state", "unknown"))[:32],
            "current_version": health.get("current_version"),
            "available_version": health.get("available_version"),
            "step": last.get("step"),
            "detail": (str(last.get("detail") or "") or None),
            "last_error": health.get("last_error"),
        }
        self._json("POST", REPORT_PATH, payload, expect=200, retry=True)
