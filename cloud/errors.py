"""The cloud's exception tree: one root, typed leaves, each carrying a problem `code`.

::

    CloudError
    ├── ConfigError (ValueError)                   invalid-config
    │   └── SecretsExistError (FileExistsError)    secrets-exist
    ├── UnauthorizedError (PermissionError)        unauthorized
    │   ├── InvalidSignatureError                  invalid-signature
    │   └── StationRevokedError                    station-revoked
    ├── ForbiddenError (PermissionError)           forbidden
    │   └── UpdatesOffError                        updates-off
    │   ├── PinRequiredError                       pin-required
    │   ├── PinNotSetError                         pin-not-set
    │   └── SelfEnrolmentDisabledError             self-enrolment-disabled
    ├── NotFoundError (LookupError)                not-found
    │   ├── UserNotFoundError                      user-not-found
    │   ├── JobNotFoundError                       job-not-found
    │   ├── SessionNotFoundError                   session-not-found
    │   ├── ReleaseNotFoundError                   release-not-found
    │   ├── StationNotFoundError                   station-not-found
    │   ├── PairingNotFoundError                   pairing-not-found
    │   ├── PrinterNotFoundError                   printer-not-found
    │   ├── DeviceNotFoundError                    device-not-found
    │   ├── UnknownCredentialError                 unknown-credential
    │   └── BundleNotFoundError                    bundle-not-found
    │   ├── UnknownCredentialError                 unknown-credential
    │   │   └── UnknownPasscodeError               unknown-passcode
    │   ├── CredentialNotFoundError                credential-not-found
    │   └── EnrolmentCodeNotFoundError             enrolment-code-not-found
    ├── ConflictError                              conflict
    │   ├── UserExistsError                        user-exists
    │   ├── CredentialExistsError                  credential-exists
    │   ├── SiteExistsError                        site-exists
    │   ├── PrinterExistsError                     printer-exists
    │   ├── PrinterInUseError                      printer-in-use
    │   ├── NoPrinterAssignedError                 no-printer-assigned
    │   ├── JobNotHeldError                        job-not-held
    │   ├── ReleaseNotActiveError                  release-not-active
    │   ├── ReleaseConflictError                   release-conflict
    │   ├── IdempotencyKeyReusedError              idempotency-key-reused
    │   ├── SealedJobRequiredError                 sealed-job-required
    │   └── BundleExistsError                      bundle-exists
    ├── InvalidRequestError (ValueError)           invalid-request
    │   ├── InvalidTagError                        invalid-tag
    │   ├── EmptyDocumentError                     empty-document
    │   ├── TruncatedUploadError (EOFError)        truncated-upload
    │   ├── ContentDigestMismatchError             content-digest-mismatch
    │   ├── InvalidSealedJobError                  invalid-sealed-job
    │   └── InvalidBundleError                     invalid-bundle
    ├── QuotaExceededError                         quota-exceeded
    ├── DeviceGrantError                           (RFC 8628 §3.5 error codes)
    │   ├── AuthorizationPendingError              authorization_pending
    │   ├── SlowDownError                          slow_down
    │   ├── ExpiredTokenError                      expired_token
    │   ├── AccessDeniedError                      access_denied
    │   └── InvalidGrantError                      invalid_grant
    ├── TooManyRequestsError                       rate-limited
    ├── PinLockedError (PermissionError)           pin-locked
    ├── GoneError                                  gone
    │   └── SessionExpiredError                    session-expired
    └── StorageError (OSError)                     storage-error
        ├── BlobNotFoundError (FileNotFoundError)  blob-not-found
        └── DatabaseUnavailableError               database-unavailable

The domain raises these; only the HTTP layer (`cloud.api.problems`) knows status codes. Messages
are safe to show a client: they never contain a tag, token, key or document content.
"""

from __future__ import annotations

from typing import ClassVar


class CloudError(Exception):
    """Root of every error the cloud raises on purpose."""

    code: ClassVar[str] = "cloud-error"
    title: ClassVar[str] = "Cloud error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail if detail is not None else self.title
        super().__init__(self.detail)


class ConfigError(CloudError, ValueError):
    """The configuration is missing a value, or a value is unsafe or malformed."""

    code = "invalid-config"
    title = "Invalid configuration"


class WorkerStartError(CloudError, RuntimeError):
    """`cloud serve --workers N`: the workers keep dying as they start, so the server stops
    rather than fork forever (the log says why each one died)."""

    code = "workers-failing"
    title = "Workers keep failing at start"


class SecretsExistError(ConfigError, FileExistsError):
    """Refusing to overwrite an existing secrets file (it would orphan every parked job)."""

    code = "secrets-exist"
    title = "Secrets file already exists"


class UnauthorizedError(CloudError, PermissionError):
    """Missing, malformed, unknown or revoked bearer credentials."""

    code = "unauthorized"
    title = "Unauthorized"
    # The RFC 9110 §11.6.1 WWW-Authenticate scheme a client should use instead.
    challenge: ClassVar[str] = "Bearer"


class InvalidSignatureError(UnauthorizedError):
    """A station request without a valid RFC 9421 signature: missing, malformed, wrong key,
    stale (`created` outside the allowed skew) or replayed (a nonce seen before)."""

    code = "invalid-signature"
    title = "Invalid request signature"
    challenge = "Signature"


class StationRevokedError(UnauthorizedError):
    """The request was signed by a station an admin has revoked."""

    code = "station-revoked"
    title = "Station revoked"
    challenge = "Signature"


class ForbiddenError(CloudError, PermissionError):
    """Authenticated, but this principal may not do this (e.g. a site admin sweeping all sites)."""

    code = "forbidden"
    title = "Forbidden"


class NotFoundError(CloudError, LookupError):
    """The named thing does not exist, or is not visible to the caller."""

    code = "not-found"
    title = "Not found"


class UserNotFoundError(NotFoundError):
    """No such user in this site."""

    code = "user-not-found"
    title = "User not found"


class JobNotFoundError(NotFoundError):
    """No such job, or it belongs to somebody else."""

    code = "job-not-found"
    title = "Job not found"


class SessionNotFoundError(NotFoundError):
    """No such session at this station."""

    code = "session-not-found"
    title = "Session not found"


class ReleaseNotFoundError(NotFoundError):
    """No such release for this station."""

    code = "release-not-found"
    title = "Release not found"


class StationNotFoundError(NotFoundError):
    """No such station in this site."""

    code = "station-not-found"
    title = "Station not found"


class PairingNotFoundError(NotFoundError):
    """No pending pairing request has this user code (or it expired)."""

    code = "pairing-not-found"
    title = "Pairing request not found"


class UnknownCredentialError(NotFoundError):
    """The presented credential tag is not enrolled (the tag itself is never echoed)."""

    code = "unknown-credential"
    title = "Unknown credential"


class ConflictError(CloudError):
    """The request conflicts with the current state of the resource."""

    code = "conflict"
    title = "Conflict"


class UserExistsError(ConflictError):
    """A user with this email already exists in the site."""

    code = "user-exists"
    title = "User exists"


class CredentialExistsError(ConflictError):
    """This credential tag is already enrolled."""

    code = "credential-exists"
    title = "Credential exists"


class SiteExistsError(ConflictError):
    """A site with this name already exists."""

    code = "site-exists"
    title = "Site exists"


class JobNotHeldError(ConflictError):
    """The job is not waiting in the held list (being released, printed, expired or deleted)."""

    code = "job-not-held"
    title = "Job not held"


class ReleaseNotActiveError(ConflictError):
    """The release has finished; its content can no longer be fetched."""

    code = "release-not-active"
    title = "Release not active"


class ReleaseConflictError(ConflictError):
    """A release outcome conflicts with the outcome already recorded."""

    code = "release-conflict"
    title = "Release conflict"


class IdempotencyKeyReusedError(ConflictError):
    """An `Idempotency-Key` already used for a different request (another body or parameters)."""

    code = "idempotency-key-reused"
    title = "Idempotency key reused"


class SealedJobRequiredError(ConflictError):
    """The site is zero-knowledge: the submitter must encrypt the job to the site's public key."""

    code = "sealed-job-required"
    title = "Sealed job required"


class QuotaExceededError(CloudError):
    """The user's held jobs would exceed the site's per-user quota of held bytes."""

    code = "quota-exceeded"
    title = "Quota exceeded"

    def __init__(self, detail: str | None = None, *, used_bytes: int, quota_bytes: int) -> None:
        super().__init__(detail)
        self.used_bytes = used_bytes
        self.quota_bytes = quota_bytes


class InvalidRequestError(CloudError, ValueError):
    """The request is malformed."""

    code = "invalid-request"
    title = "Invalid request"


class InvalidTagError(InvalidRequestError):
    """A credential tag is not 64 lowercase hex characters."""

    code = "invalid-tag"
    title = "Invalid credential tag"


class EmptyDocumentError(InvalidRequestError):
    """A submitted document has no bytes."""

    code = "empty-document"
    title = "Empty document"


class TruncatedUploadError(InvalidRequestError, EOFError):
    """The upload ended before its declared length, or the client went away."""

    code = "truncated-upload"
    title = "Truncated upload"


class ContentDigestMismatchError(InvalidRequestError):
    """The body does not match its signed `Content-Digest` (RFC 9530)."""

    code = "content-digest-mismatch"
    title = "Content digest mismatch"


class InvalidSealedJobError(InvalidRequestError):
    """A sealed (zero-knowledge) job whose container header or wrapped key does not fit it."""

    code = "invalid-sealed-job"
    title = "Invalid sealed job"


class DeviceGrantError(CloudError):
    """A pairing poll that has no grant to give yet; `code` is the RFC 8628 §3.5 error code."""

    code = "device-grant-error"
    title = "Pairing not complete"


class AuthorizationPendingError(DeviceGrantError):
    """No admin has approved (or denied) the pairing yet: poll again after `interval`."""

    code = "authorization_pending"
    title = "Authorization pending"


class SlowDownError(DeviceGrantError):
    """Polled sooner than `interval`; the interval grows by 5 seconds (RFC 8628 §3.5)."""

    code = "slow_down"
    title = "Slow down"


class ExpiredTokenError(DeviceGrantError):
    """The pairing request expired before an admin approved it: start a new one."""

    code = "expired_token"
    title = "Pairing request expired"


class AccessDeniedError(DeviceGrantError):
    """An admin denied the pairing request."""

    code = "access_denied"
    title = "Pairing denied"


class InvalidGrantError(DeviceGrantError):
    """The device code is unknown (never issued, or swept after expiry)."""

    code = "invalid_grant"
    title = "Unknown device code"


class TooManyRequestsError(CloudError):
    """Too many attempts; retry after `retry_after_s` seconds."""

    code = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after_s: int = 60) -> None:
        super().__init__(detail)
        self.retry_after_s = max(1, int(retry_after_s))


class PinLockedError(CloudError, PermissionError):
    """Too many wrong PINs in a row: the PIN is disabled until an admin resets it."""

    code = "pin-locked"
    title = "PIN locked"


class GoneError(CloudError):
    """The resource existed but is no longer usable."""

    code = "gone"
    title = "Gone"


class SessionExpiredError(GoneError):
    """The station session has expired or was ended."""

    code = "session-expired"
    title = "Session expired"


class StorageError(CloudError, OSError):
    """The job store failed (disk, object store)."""

    code = "storage-error"
    title = "Storage error"


class BlobNotFoundError(StorageError, FileNotFoundError):
    """A blob that should exist does not."""

    code = "blob-not-found"
    title = "Blob not found"


# --- devices ---


class PrinterNotFoundError(NotFoundError):
    """No such registered printer (or discovered device) in this site."""

    code = "printer-not-found"
    title = "Printer not found"


class DeviceNotFoundError(NotFoundError):
    """No such discovered device in this site."""

    code = "device-not-found"
    title = "Discovered device not found"


class PrinterExistsError(ConflictError):
    """The site has a printer of this name already."""

    code = "printer-exists"
    title = "Printer exists"


class PrinterInUseError(ConflictError):
    """Stations are assigned to the printer: assign them elsewhere first."""

    code = "printer-in-use"
    title = "Printer in use"


class NoPrinterAssignedError(ConflictError):
    """The station serves no registered printer (an admin assigns one)."""

    code = "no-printer-assigned"
    title = "No printer assigned"


class UpdatesOffError(ForbiddenError):
    """The site's update policy is off: no bundle is offered or served to its stations."""

    code = "updates-off"
    title = "Updates are off"


class BundleNotFoundError(NotFoundError):
    """No such update bundle in this site."""

    code = "bundle-not-found"
    title = "Update bundle not found"


class BundleExistsError(ConflictError):
    """The site already has a bundle of this version (versions are never replaced)."""

    code = "bundle-exists"
    title = "Update bundle exists"


class InvalidBundleError(InvalidRequestError):
    """The upload is not a signed update bundle (no manifest first, no signature, bad JSON)."""

    code = "invalid-bundle"
    title = "Invalid update bundle"


# --- identity ---


class PinRequiredError(ForbiddenError):
    """The site asks for a PIN after a badge tap; the badge alone opens no session."""

    code = "pin-required"
    title = "PIN required"


class PinNotSetError(ForbiddenError):
    """The site asks for a PIN after the badge, and this badge's owner has none yet."""

    code = "pin-not-set"
    title = "No PIN set"


class SelfEnrolmentDisabledError(ForbiddenError):
    """The site does not let unknown badges be enrolled by their holders."""

    code = "self-enrolment-disabled"
    title = "Self-enrolment disabled"


class UnknownPasscodeError(UnknownCredentialError):
    """No usable release passcode matches (unknown, used, expired or revoked: one answer)."""

    code = "unknown-passcode"
    title = "Unknown passcode"


class CredentialNotFoundError(NotFoundError):
    """No such badge for this user."""

    code = "credential-not-found"
    title = "Badge not found"


class EnrolmentCodeNotFoundError(NotFoundError):
    """No usable enrolment code matches (unknown, used or expired: one answer)."""

    code = "enrolment-code-not-found"
    title = "Enrolment code not found"


class DatabaseUnavailableError(StorageError):
    """The database cannot be reached (restarting, failing over); the client should retry."""

    code = "database-unavailable"
    title = "Database unavailable"
    retry_after_s = 2


# --- station-entry ---


class PrinterNoStationError(ConflictError):
    """The printer has no active (assigned, unrevoked) station to release to."""

    code = "printer-no-station"
    title = "No station at this printer"
