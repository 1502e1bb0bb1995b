"""The root exception of the `station` package and its tree.

    StationError
    ├── ConfigError                     (ValueError) the config is missing, malformed or unsafe
    ├── CloudError                      anything between the station and the cloud
    │   ├── CloudUnreachableError       (ConnectionError) refused, timed out, gateway 502-504
    │   └── CloudRejectedError          an RFC 9457 problem answer (code, status, detail)
    │       ├── UnknownCredentialError  (LookupError) 404 `unknown-credential`, `unknown-passcode`
    │       ├── SessionExpiredError     410 `session-expired`
    │       ├── PinRequiredError        202: the site wants the badge owner's PIN too
    │       ├── RateLimitedError        429 `rate-limited` (with `retry_after_s`)
    │       ├── PinLockedError          423 `pin-locked`
    │       ├── PinNotSetError          403 `pin-not-set`
    │       └── SelfEnrolmentDisabledError  403 `self-enrolment-disabled`
    ├── DeliveryError                   a release could not be delivered (user-safe `reason`)
    │   └── DocumentDamagedError        (ValueError) the job container failed to authenticate
    └── UpdateError                     a station update refused or failed (`step` says where)
        ├── BundleFormatError           (ValueError) not an update bundle, or a malformed one
        ├── TruncatedBundleError        (EOFError) the download is shorter than announced
        ├── BundleSignatureError        the manifest is not signed by a pinned key
        ├── BundleTamperedError         a file differs from its signed sha256/size, or is extra
        ├── DowngradeError              the version is below the station's minimum version
        ├── InstallError                the inactive slot could not be made
        └── UpdateUnhealthyError        the new version failed its health check (rolled back)

Only `station.cloud_client` knows HTTP status codes; everything above it sees these types.
Messages never carry a card tag, token, key or document content.
"""

from __future__ import annotations


class StationError(Exception):
    """Root of every error raised by `station`."""


class ConfigError(StationError, ValueError):
    """The station configuration is missing a value, malformed, or unsafe."""


class CloudError(StationError):
    """Something went wrong between the station and the cloud."""


class CloudUnreachableError(CloudError, ConnectionError):
    """The cloud did not answer: refused, reset, timed out, or a gateway said it is down."""


class CloudRejectedError(CloudError):
    """The cloud answered with a problem (RFC 9457).

    `code` is the problem code from API.md (`session-expired`, `job-not-held`, ...) or None when
    the body was not a problem document; `status` the HTTP status; `detail` the problem detail.
    """

    def __init__(self, message: str, *, status: int, code: str | None, detail: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail


class UnknownCredentialError(CloudRejectedError, LookupError):
    """No user is enrolled with this badge (404 `unknown-credential`)."""


class SessionExpiredError(CloudRejectedError):
    """The station session ended or expired (410 `session-expired`)."""


class DeliveryError(StationError):
    """A release could not be delivered to the printer.

    `reason` is a short message a user understands, safe to show on the screen.
    """

    def __init__(self, reason: str, *, detail: str | None = None) -> None:
        super().__init__(reason if detail is None else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class DocumentDamagedError(DeliveryError, ValueError):
    """The job container failed to authenticate: nothing was sent to the printer."""


class UpdateError(StationError):
    """A station update was refused or failed; `step` is where (download, verify, install, ...)."""

    step = "update"


class BundleFormatError(UpdateError, ValueError):
    """Not an update bundle, or a malformed one (missing manifest, bad JSON, unsafe path)."""

    step = "verify"


class TruncatedBundleError(UpdateError, EOFError):
    """The bundle ends before its announced size (a cut-off download)."""

    step = "download"


class BundleSignatureError(UpdateError):
    """The manifest's Ed25519 signature does not verify with any pinned update key."""

    step = "verify"


class BundleTamperedError(UpdateError):
    """A payload file's sha256 or size differs from the signed manifest, or is not listed."""

    step = "verify"


class DowngradeError(UpdateError):
    """The bundle's version is below the station's minimum version (anti-rollback floor)."""

    step = "verify"


class InstallError(UpdateError):
    """The inactive slot could not be made (venv, pip install --no-index, self-check)."""

    step = "install"


class UpdateUnhealthyError(UpdateError):
    """The new version did not become healthy in time; the station went back to the old one."""

    step = "health"


# --- identity ---


class PinRequiredError(CloudRejectedError):
    """The badge is known but the site asks for its owner's PIN (202 from the session call).

    `pin_email` keys the PIN tag; it is never shown on the screen or logged.
    """

    def __init__(self, pin_email: str, min_pin_digits: int) -> None:
        super().__init__("PIN required", status=202, code="pin-required", detail=None)
        self.pin_email = pin_email
        self.min_pin_digits = min_pin_digits


class RateLimitedError(CloudRejectedError):
    """Too many wrong PINs or passcodes: wait `retry_after_s` seconds (429 `rate-limited`)."""

    def __init__(
        self, message: str, *, status: int, code: str | None, detail: str | None, retry_after_s: int
    ) -> None:
        super().__init__(message, status=status, code=code, detail=detail)
        self.retry_after_s = retry_after_s


class PinLockedError(CloudRejectedError):
    """The PIN is locked after too many failures; an admin must reset it (423 `pin-locked`)."""


class PinNotSetError(CloudRejectedError):
    """The site asks for a PIN after the badge and its owner has none (403 `pin-not-set`)."""


class SelfEnrolmentDisabledError(CloudRejectedError):
    """The site does not let unknown badges be enrolled (403 `self-enrolment-disabled`)."""
