"""The station's updater: learn of a version, download, verify, install, switch, watch, roll back.

Run by `pullprint-update.service` (as root, from a timer and at boot; `pullprint update run`),
never by the station service itself, which cannot write /opt. One run::

    resume    a trial interrupted by a power cut or a kill is watched again (at most
              `max_trials` times: a boot counter), then kept or rolled back
    poll      GET /api/v1/station/update (signed): the site's policy and offered version
    policy    off: nothing; notify: "available" in the health report; automatic: go on
    download  into the state folder, bounded by the offered size; a short one is refused
    verify    signature by a pinned key, every file's sha256 and size, the minimum version
    install   a venv in the inactive slot from the verified wheels only, self-checked
    switch    `current` -> the new slot (atomic), the service restarted
    health    READY=1 within `ready_timeout_s`, then `settle_s` without `max_crashes` restarts;
              otherwise `current` goes back, the service is restarted on the old version, and
              the version is remembered as failed here (not tried again until a newer one)

Every step lands in `status.json` in the state folder (0644: the station's health report reads
it, `station.updates.read_health`) and is reported to the cloud. The trial is written to
`state.json` before the switch, so whatever stops the updater, the next run (started from the
previous slot by `pullprint-update`, see images/) finishes it.

Invariants: nothing from a bundle runs before the whole bundle verified; the active slot is
never written; a version below the floor (the highest `min_version` installed so far) is
refused; no key, token or signature is logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from station.errors import (
    BundleFormatError,
    BundleTamperedError,
    CloudError,
    DowngradeError,
    InstallError,
    TruncatedBundleError,
    UpdateError,
    UpdateUnhealthyError,
)
from station.service_manager import ServiceManager
from station.slots import SlotLayout
from station.update_bundle import Manifest, parse_version, read_public_keys, verify_bundle

log = logging.getLogger(__name__)

Policy = Literal["off", "notify", "automatic"]
POLICIES: tuple[Policy, ...] = ("off", "notify", "automatic")
STATUS_FILE = "status.json"
STATE_FILE = "state.json"
TRIAL_FILE = "trial-previous"  # the previous slot's name, read by the pullprint-update script
MAX_BUNDLE_BYTES = 1024 * 1024 * 1024
MAX_STEPS = 30


@dataclass(frozen=True, slots=True)
class UpdateOffer:
    """What the cloud says: the site's policy and, unless off, the version it offers."""

    policy: Policy
    version: str | None = None
    min_version: str | None = None
    sha256: str | None = None
    size: int | None = None
    bundle_path: str | None = None  # the signed GET path of the bundle


class UpdateSource(Protocol):
    """Where offers and bundles come from (the cloud; `station.update_client`)."""

    def offer(self, current: str | None) -> UpdateOffer:
        """The site's policy and offered version."""

    def download(self, offer: UpdateOffer, out: BinaryIO, limit: int) -> None:
        """Write the offered bundle to `out`, at most `limit` bytes."""

    def report(self, health: dict[str, Any]) -> None:
        """Tell the cloud the update section of the health report (best effort)."""


@dataclass(frozen=True, slots=True)
class UpdaterSettings:
    """How an updater run behaves."""

    ready_timeout_s: float = 120.0  # restart to READY=1
    settle_s: float = 30.0  # after READY, how long it must keep running
    max_crashes: int = 2  # restarts during the watch that fail it
    max_trials: int = 2  # interrupted trials resumed before rolling back without a watch
    poll_s: float = 0.5  # how often the service is looked at
    python: str | None = None  # the interpreter new venvs are made from


@dataclass
class _State:
    floor: str | None = None
    trial: dict[str, Any] | None = None
    failed_versions: list[str] = field(default_factory=list)


def load_keys(path: Path, *, require_root: bool = True) -> list[Ed25519PublicKey]:
    """The pinned update keys, from a file only root can change.

    Raises:
        BundleSignatureError-like UpdateError: the file is missing, writable by others, or empty.
    """
    try:
        info = path.stat()
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise UpdateError(f"no pinned update key at {path}: {exc}") from exc
    # The trust anchor of every update: a file the station's own user could rewrite would let a
    # compromised station process choose what root installs.
    if require_root and info.st_uid != 0:
        raise UpdateError(f"{path} must be owned by root")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UpdateError(f"{path} must not be writable by group or others")
    return read_public_keys(text)


class Updater:
    """One station's updater (see the module docstring for a run)."""

    def __init__(
        self,
        layout: SlotLayout,
        state_dir: Path,
        keys: Sequence[Ed25519PublicKey],
        source: UpdateSource,
        service: ServiceManager,
        *,
        settings: UpdaterSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.layout = layout
        self.state_dir = state_dir
        self._keys = list(keys)
        self._source = source
        self._service = service
        self.settings = settings or UpdaterSettings()
        self._clock, self._sleep, self._now = clock, sleep, now
        state_dir.mkdir(parents=True, exist_ok=True)
        self._state = self._load_state()
        self._status = self._load_status()

    # ---- the health report ----

    def health(self) -> dict[str, Any]:
        """The update section of the station's health report."""
        return dict(self._status)

    def _step(self, step: str, version: str | None, detail: str = "", *, state: str) -> None:
        entry = {"at": _iso(self._now()), "step": step, "version": version, "detail": detail}
        steps = [*self._status.get("steps", []), entry][-MAX_STEPS:]
        self._status.update(state=state, steps=steps, current_version=self.current_version())
        if state in ("refused", "failed", "rolled-back"):
            self._status["last_error"] = f"{step}: {detail}"
        elif state == "healthy":
            self._status["last_error"] = None
        _write_json(self.state_dir / STATUS_FILE, self._status, 0o644)
        level = logging.WARNING if state in ("refused", "failed", "rolled-back") else logging.INFO
        log.log(level, "update %s %s %s", step, version or "", detail)

    def current_version(self) -> str | None:
        """The version in the active slot."""
        active = self.layout.active()
        return None if active is None else self.layout.version(active)

    # ---- a run ----

    def run(self, *, force: bool = False) -> str:
        """One updater run; returns the state it ended in (also in the health report).

        Args:
            force: install an offered version under the `notify` policy (an admin on the
                station), and retry a version that failed here before.
        """
        try:
            if self._state.trial is not None:
                self._resume()
            offer = self._source.offer(self.current_version())
        except CloudError as exc:
            self._status["last_poll_error"] = str(exc)
            _write_json(self.state_dir / STATUS_FILE, self._status, 0o644)
            log.warning("update poll failed: %s", exc)
            return str(self._status.get("state", "idle"))
        except UpdateError as exc:
            self._step(exc.step, None, str(exc), state="failed")
            self._report()
            return "failed"
        self._status.update(
            policy=offer.policy, available_version=offer.version, last_poll=_iso(self._now())
        )
        self._status.pop("last_poll_error", None)
        state = self._consider(offer, force=force)
        self._report()
        return state

    def _consider(self, offer: UpdateOffer, *, force: bool) -> str:
        current = self.current_version()
        if offer.policy == "off" or offer.version is None:
            self._status["state"] = "up-to-date" if offer.policy != "off" else "off"
            _write_json(self.state_dir / STATUS_FILE, self._status, 0o644)
            return str(self._status["state"])
        if current is not None and parse_version(offer.version) == parse_version(current):
            self._status["state"] = "up-to-date"
            _write_json(self.state_dir / STATUS_FILE, self._status, 0o644)
            return "up-to-date"
        if offer.version in self._state.failed_versions and not force:
            if self._status.get("state") != "skipped":
                self._step(
                    "skipped", offer.version, "failed its health check here before", state="skipped"
                )
            return "skipped"
        if offer.policy == "notify" and not force:
            if self._status.get("state") != "available":
                self._step("available", offer.version, "policy is notify", state="available")
            return "available"
        floor = self._state.floor
        if floor is not None and parse_version(offer.version) < parse_version(floor):
            # Checked again on the signed manifest; here it saves a download.
            error = DowngradeError(
                f"version {offer.version} is below this station's minimum version {floor}"
            )
            self._step(error.step, offer.version, str(error), state="refused")
            return "refused"
        try:
            self._install(offer)
        except UpdateError as exc:
            if isinstance(exc, UpdateUnhealthyError):
                return "rolled-back"  # its steps are recorded already
            state = "failed" if isinstance(exc, InstallError) else "refused"
            self._step(exc.step, offer.version, str(exc), state=state)
            return state
        except CloudError as exc:  # the bundle could not be fetched: try again next time
            self._step("download", offer.version, str(exc), state="failed")
            return "failed"
        except OSError as exc:  # a full disk, a failing card, systemctl not answering
            self._step("update", offer.version, f"{type(exc).__name__}: {exc}", state="failed")
            return "failed"
        return "healthy"

    def _install(self, offer: UpdateOffer) -> None:
        assert offer.version is not None
        bundle = self._download(offer)
        staging = self.state_dir / "staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        try:
            manifest = verify_bundle(bundle, self._keys, extract_to=staging)
            self._check_versions(manifest, offer)
            self._step("verified", manifest.version, _describe(manifest), state="verified")
            slot = self.layout.inactive()
            self.layout.install(slot, staging, manifest.version, python=self.settings.python)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            bundle.unlink(missing_ok=True)
        self._step("installed", manifest.version, f"slot {slot}", state="installed")
        previous = self.layout.active()
        self._state.trial = {
            "slot": slot,
            "previous": previous,
            "version": manifest.version,
            "min_version": manifest.min_version,
            "trials": 1,
        }
        self._save_state()
        self.layout.switch(slot)
        self._step("switched", manifest.version, f"current -> slot {slot}", state="switched")
        self._watch()

    def _download(self, offer: UpdateOffer) -> Path:
        folder = self.state_dir / "downloads"
        folder.mkdir(mode=0o700, exist_ok=True)
        for stale in folder.iterdir():
            stale.unlink()
        part = folder / "bundle.part"
        limit = min(offer.size if offer.size is not None else MAX_BUNDLE_BYTES, MAX_BUNDLE_BYTES)
        self._step("downloading", offer.version, f"{limit} bytes", state="downloading")
        with part.open("wb") as out:
            self._source.download(offer, out, limit + 1)
            out.flush()
            os.fsync(out.fileno())
        size = part.stat().st_size
        if offer.size is not None and size < offer.size:
            raise TruncatedBundleError(f"the download ended after {size} of {offer.size} bytes")
        if size > limit:
            raise BundleTamperedError(f"the download is larger than the offered {limit} bytes")
        if offer.sha256 is not None and _sha256(part) != offer.sha256:
            raise BundleTamperedError("the download's sha256 differs from the offer's")
        done = folder / "bundle.tar"
        part.replace(done)
        self._step("downloaded", offer.version, f"{size} bytes", state="downloaded")
        return done

    def _check_versions(self, manifest: Manifest, offer: UpdateOffer) -> None:
        if offer.version is not None and parse_version(manifest.version) != parse_version(
            offer.version
        ):
            raise BundleFormatError(
                f"the bundle is version {manifest.version}, the cloud offered {offer.version}"
            )
        floor = self._state.floor
        if floor is not None and parse_version(manifest.version) < parse_version(floor):
            raise DowngradeError(
                f"version {manifest.version} is below this station's minimum version {floor}"
            )

    # ---- the health check and rollback ----

    def _watch(self) -> None:
        trial = self._state.trial
        assert trial is not None
        version = str(trial["version"])
        self._service.restart()
        verdict = self._healthy()
        if verdict is None:
            self._state.floor = _max_version(self._state.floor, str(trial["min_version"]))
            self._state.trial = None
            self._save_state()
            self._step("healthy", version, "ready and stable", state="healthy")
            return
        self._roll_back(verdict)

    def _healthy(self) -> str | None:
        """None when the service became ready and stayed up; else why not."""
        s = self.settings
        base = self._service.probe().restarts
        start = self._clock()
        ready_at: float | None = None
        while True:
            probe = self._service.probe()
            now = self._clock()
            crashes = probe.restarts - base
            if crashes >= s.max_crashes:
                return f"crashed {crashes} times ({probe.detail})"
            if probe.failed:
                return f"the service failed ({probe.detail})"
            if probe.ready:
                if ready_at is None:
                    ready_at = now
                elif now - ready_at >= s.settle_s:
                    return None
            elif ready_at is not None:
                ready_at = None  # it went down again: the settle time starts over
            if ready_at is None and now - start >= s.ready_timeout_s:
                return f"not ready within {s.ready_timeout_s:g} s ({probe.detail})"
            self._sleep(s.poll_s)

    def _roll_back(self, why: str) -> None:
        trial = self._state.trial
        assert trial is not None
        version, previous = str(trial["version"]), trial.get("previous")
        if previous is not None and self.layout.is_complete(previous):
            self.layout.switch(previous)
            self._service.restart()
            detail = f"{why}; back on slot {previous}"
        else:
            detail = f"{why}; no previous slot to go back to"
        if version not in self._state.failed_versions:
            self._state.failed_versions.append(version)
        self._state.trial = None
        self._save_state()
        self._step("rolled-back", version, detail, state="rolled-back")
        raise UpdateUnhealthyError(f"version {version} {detail}")

    def _resume(self) -> None:
        """Finish a trial a power cut or a kill interrupted (a boot counter bounds it)."""
        trial = self._state.trial
        assert trial is not None
        version = str(trial["version"])
        trial["trials"] = int(trial.get("trials", 1)) + 1
        self._save_state()
        if self.layout.active() != trial["slot"]:
            # Stopped before the switch: the old slot is still in use; nothing to undo.
            self._state.trial = None
            self._save_state()
            self._step("abandoned", version, "interrupted before the switch", state="failed")
            return
        if trial["trials"] > self.settings.max_trials:
            with contextlib.suppress(UpdateUnhealthyError):  # recorded in the health report
                self._roll_back(f"interrupted {trial['trials'] - 1} times during its trial")
            return
        self._step("resumed", version, f"trial {trial['trials']}", state="switched")
        with contextlib.suppress(UpdateUnhealthyError):  # recorded in the health report
            self._watch()

    # ---- persistence ----

    def _load_state(self) -> _State:
        try:
            doc = json.loads((self.state_dir / STATE_FILE).read_text())
        except FileNotFoundError:
            return _State()
        except (OSError, ValueError) as exc:
            raise UpdateError(f"the updater's state is unreadable: {exc}") from exc
        return _State(
            floor=doc.get("floor"),
            trial=doc.get("trial"),
            failed_versions=list(doc.get("failed_versions", [])),
        )

    def _save_state(self) -> None:
        doc = {
            "floor": self._state.floor,
            "trial": self._state.trial,
            "failed_versions": self._state.failed_versions[-20:],
        }
        _write_json(self.state_dir / STATE_FILE, doc, 0o600)
        # The pullprint-update script runs the previous slot's updater while a trial is on.
        marker = self.state_dir / TRIAL_FILE
        previous = (self._state.trial or {}).get("previous")
        if previous:
            _write_text(marker, f"{previous}\n", 0o644)
        else:
            marker.unlink(missing_ok=True)

    def _load_status(self) -> dict[str, Any]:
        try:
            doc = json.loads((self.state_dir / STATUS_FILE).read_text())
        except (OSError, ValueError):
            doc = {}
        return doc if isinstance(doc, dict) else {}

    def _report(self) -> None:
        try:
            self._source.report(self.health())
        except CloudError as exc:
            log.warning("could not report the update status: %s", exc)

    @property
    def floor(self) -> str | None:
        """The lowest version this station still accepts."""
        return self._state.floor

    @property
    def failed_versions(self) -> list[str]:
        """Versions that failed their health check here."""
        return list(self._state.failed_versions)


def read_health(state_dir: Path) -> dict[str, Any]:
    """The update section of the health report, as the last updater run left it."""
    try:
        doc = json.loads((state_dir / STATUS_FILE).read_text())
    except FileNotFoundError:
        return {"state": "never-run", "steps": []}
    except (OSError, ValueError) as exc:
        return {"state": "unknown", "steps": [], "last_error": f"unreadable: {exc}"}
    return doc if isinstance(doc, dict) else {"state": "unknown", "steps": []}


def _describe(manifest: Manifest) -> str:
    return (
        f"{len(manifest.files)} files, min_version {manifest.min_version}, "
        f"created {_iso(manifest.created)}"
    )


def _max_version(a: str | None, b: str) -> str:
    if a is None:
        return b
    return a if parse_version(a) >= parse_version(b) else b


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _write_text(path: Path, text: str, mode: int) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    temp.replace(path)


def _write_json(path: Path, doc: dict[str, Any], mode: int) -> None:
    _write_text(path, json.dumps(doc, indent=1, sort_keys=True) + "\n", mode)
