"""Pairing a new station with the cloud: the device side of RFC 8628, ending in a sealed grant.

    identity = load_or_create_identity(key_file)         # Ed25519 + X25519, made on first start
    grant = pair_station(cloud_url, identity, on_code=show)   # show(code) draws
                                                          # PairingScreen(code.user_code,
                                                          #               code.fingerprint)
    write_paired_files(grant, site_key_file=...)          # the site key, mode 0600

`pair_station` asks for a user code, hands it to `on_code` to show, then polls every `interval`
seconds: `authorization_pending` waits, `slow_down` adds 5 s (RFC 8628 §3.5), `expired_token` or
`invalid_grant` starts over with a new code (shown again), and `access_denied` stops with
`PairingDeniedError`. The grant is sealed to the station's X25519 key (see `open_grant`, the
inverse of `cloud.sealing.seal`), bound to the request id, and carries the station id, the site,
the printer (name, URI), the site key for credential tags, and for a zero-knowledge site the site's
X25519 private key, which unwraps job keys.

Neither codes nor keys are logged; the user code is shown on the station's own screen only.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from station.cloud_http import JSON_HEADERS, CloudHttp, json_bytes, json_of, problem_error
from station.errors import CloudError, CloudRejectedError
from station.signing import StationIdentity

logger = logging.getLogger(__name__)

SLOW_DOWN_STEP_S = 5
_INFO = b"pullprint/pairing-grant/v1"
_AAD_PREFIX = b"pullprint/pairing/v1|"
_ENC_BYTES = 32
_KEY_BYTES = 32
_NONCE_BYTES = 12
_RESTART_CODES = ("expired_token", "invalid_grant")


class PairingDeniedError(CloudRejectedError):
    """An admin denied the pairing (perhaps the fingerprint did not match)."""


@dataclass(frozen=True, slots=True)
class PairingCode:
    """What the station shows while it waits (`PairingScreen(user_code, fingerprint)`)."""

    request_id: str
    user_code: str
    fingerprint: str
    interval_s: float
    expires_in_s: float
    device_code: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class PairingGrant:
    """What the station receives once approved."""

    station_id: str
    site: str
    printer_name: str
    printer_uri: str
    site_key: bytes = field(repr=False)
    # Zero-knowledge sites only: the site's X25519 private key, which unwraps job keys.
    site_private_key: bytes | None = field(default=None, repr=False)


class PairingClient:
    """The two unauthenticated pairing calls.

    Args:
        base_url: the cloud, e.g. "https://print.example.org".
        identity: the station's keys.
        timeout_s: connect and read timeout of each call.
        ca_certs: a CA bundle to verify the cloud against instead of the system's trust store.
    """

    def __init__(
        self,
        base_url: str,
        identity: StationIdentity,
        *,
        timeout_s: float = 10.0,
        ca_certs: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._identity = identity
        # Unsigned: the station has no id yet; the grant is sealed to its key instead.
        self._http = CloudHttp(base_url, timeout_s=timeout_s, ca_certs=ca_certs)

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    def start(self) -> PairingCode:
        """Ask for a user code (RFC 8628 §3.1)."""
        body = self._post(
            "/api/v1/pairing/requests",
            {
                "signing_key": _b64url(self._identity.signing_public),
                "exchange_key": _b64url(self._identity.exchange_public),
            },
            expect=201,
        )
        try:
            return PairingCode(
                request_id=str(body["request_id"]),
                user_code=str(body["user_code"]),
                fingerprint=self._identity.fingerprint,
                interval_s=float(body["interval"]),
                expires_in_s=float(body["expires_in"]),
                device_code=str(body["device_code"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CloudError("malformed pairing answer from the cloud") from exc

    def poll(self, code: PairingCode) -> PairingGrant:
        """Poll once (RFC 8628 §3.4): the grant, or the cloud's refusal as a CloudRejectedError
        whose `code` is the RFC 8628 §3.5 error (`authorization_pending`, `slow_down`, ...)."""
        body = self._post("/api/v1/pairing/grant", {"device_code": code.device_code}, expect=200)
        try:
            if str(body["request_id"]) != code.request_id:
                raise ValueError("grant for another request")
            sealed = base64.urlsafe_b64decode(_padded(str(body["sealed_grant"])))
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise CloudError("malformed pairing grant from the cloud") from exc
        return open_grant(self._identity, code.request_id, sealed)

    def _post(self, path: str, payload: object, *, expect: int) -> Any:
        """POST JSON; raises CloudUnreachableError, or the problem as a CloudError."""
        response = self._http.request("POST", path, body=json_bytes(payload), headers=JSON_HEADERS)
        if response.status != expect:
            raise problem_error(response)
        try:
            return json_of(response)
        except ValueError as exc:
            raise CloudError("the cloud's pairing answer is not JSON") from exc


def pair_station(
    base_url: str,
    identity: StationIdentity,
    *,
    on_code: Callable[[PairingCode], None],
    timeout_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    should_stop: Callable[[], bool] = lambda: False,
) -> PairingGrant:
    """Pair: get a code, show it, poll until an admin approves; start over if the code expires.

    Args:
        base_url: the cloud.
        identity: the station's keys (`load_or_create_identity`).
        on_code: called with each new code, to show it (e.g. as a `PairingScreen`).
        timeout_s: per-call network timeout.
        sleep: how to wait between polls (tests pass a fake).
        should_stop: polled between attempts; True ends pairing with `CloudError`.

    Raises:
        PairingDeniedError: an admin denied the request.
        CloudUnreachableError: the cloud cannot be reached (the caller retries later).
        CloudError: stopped, or the cloud answered something unexpected.
    """
    client = PairingClient(base_url, identity, timeout_s=timeout_s)
    try:
        while True:
            code = client.start()
            on_code(code)
            logger.info("waiting for an admin to approve pairing request %s", code.request_id)
            interval_s = code.interval_s
            while True:
                sleep(interval_s)
                if should_stop():
                    raise CloudError("pairing stopped")
                try:
                    grant = client.poll(code)
                except CloudRejectedError as exc:
                    if exc.code == "authorization_pending":
                        continue
                    if exc.code == "slow_down":
                        interval_s += SLOW_DOWN_STEP_S
                        continue
                    if exc.code in _RESTART_CODES:
                        logger.info("pairing code expired; asking for a new one")
                        break
                    if exc.code == "access_denied":
                        raise PairingDeniedError(
                            "an admin denied the pairing",
                            status=exc.status,
                            code=exc.code,
                            detail=exc.detail,
                        ) from exc
                    raise
                logger.info("paired as station %s", grant.station_id)
                return grant
    finally:
        client.close()


def open_grant(identity: StationIdentity, request_id: str, sealed: bytes) -> PairingGrant:
    """Open a grant sealed by `cloud.sealing.seal` to this station's X25519 key.

    Raises:
        CloudError: the grant does not open (wrong key, wrong request, tampered) or is malformed.
    """
    if len(sealed) <= _ENC_BYTES:
        raise CloudError("the pairing grant is truncated")
    enc, ciphertext = sealed[:_ENC_BYTES], sealed[_ENC_BYTES:]
    shared = identity.exchange_key.exchange(X25519PublicKey.from_public_bytes(enc))
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=_KEY_BYTES + _NONCE_BYTES,
        salt=enc + identity.exchange_public,
        info=_INFO,
    ).derive(shared)
    try:
        plaintext = AESGCM(okm[:_KEY_BYTES]).decrypt(
            okm[_KEY_BYTES:], ciphertext, _AAD_PREFIX + request_id.encode("ascii")
        )
    except InvalidTag:
        raise CloudError("the pairing grant does not open with this station's key") from None
    try:
        data = json.loads(plaintext)
        site_key = bytes.fromhex(data["site_key"])
        if data.get("version") != 1 or len(site_key) != _KEY_BYTES:
            raise ValueError("unsupported grant")
        private = data.get("site_private_key")
        site_private_key = bytes.fromhex(private) if private is not None else None
        if site_private_key is not None and len(site_private_key) != _KEY_BYTES:
            raise ValueError("unsupported grant")
        return PairingGrant(
            station_id=str(data["station_id"]),
            site=str(data["site"]),
            printer_name=str(data["printer"]["name"]),
            printer_uri=str(data["printer"]["uri"]),
            site_key=site_key,
            site_private_key=site_private_key,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CloudError("malformed pairing grant") from exc


def write_site_key(site_key: bytes, path: Path) -> None:
    """Write the site key as 64 hex characters, mode 0600 (replacing an older one atomically)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(site_key.hex() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)
