"""The station's composition root and runtime.

`build_station(config)` chooses the parts (reader, display, printer transport, cloud client) from
the config, simulated ones only when the config names them or a caller passes them in; `Station`
runs the release `Workflow` with three threads:

* the engine owns the workflow: it takes events from one queue, feeds them to `Workflow.handle`,
  draws `ShowScreen` commands itself and hands every other command to the worker; it also makes
  the `Tick` events (every `tick_interval_s`), so timeouts need no thread of their own;
* the worker carries out cloud and printer commands one at a time, in order, and turns what
  happened into events (a delivery blocks only the worker, never the screen);
* the reader waits for badges and turns each into `CardPresented(tag)`: the tag is computed here
  and the credential goes no further; a card the reader could not read becomes
  `CardUnreadable(reason)` (the error screen and sound), not a reader fault;
* the cloud watch notices outages: any cloud call that cannot reach the cloud (or its own
  heartbeat, `GET /healthz` every `heartbeat_s`) turns the station offline (`CloudDown`: the
  offline screen, a tap says it cannot be checked); it then probes with exponential back-off and
  jitter, bounded by `Backoff.max_s`, and on the first answer posts `CloudUp` (back to idle) and
  has the worker settle the release journal, so an outcome that could not be reported during the
  outage reaches the cloud without the job printing twice.
* the keypad (when one is fitted) turns keys into `KeyPressed`; a PIN typed there is turned into
  its keyed tag only when the worker sends it, and a passcode is sent as typed (over TLS).

Invariants: only the engine thread touches the workflow; a release that did not print is reported
`failed` to the cloud (so the job is held again) before the screen says why; no card credential,
tag, token or document byte is logged.
"""

from __future__ import annotations

import inspect
import logging
import queue
import random
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from PIL import Image

from hardware.display.base import Display
from hardware.errors import HardwareError, PrinterError, PrinterUnreachableError, ReaderError
from hardware.panel.base import Keypad
from hardware.panel.keypad_decoder import KeypadKey
from hardware.panel.registry import Panel, keypad_from_config
from hardware.printers.errors import DeliveryUnconfirmedError, PrinterConnectError
from hardware.printers.transport import PrinterTransport
from hardware.readers.base import CardReader
from hardware.readers.errors import CardUnreadableError
from hardware.readers.registry import reader_from_config
from station.cloud_client import CloudClient, Outcome, ReleaseInfo, SessionInfo, StationCloud
from station.config import StationConfig
from station.credentials import credential_tag, pin_tag
from station.delivery import deliver_release
from station.errors import (
    CloudError,
    CloudUnreachableError,
    ConfigError,
    DeliveryError,
    PinLockedError,
    PinNotSetError,
    PinRequiredError,
    RateLimitedError,
    SessionExpiredError,
    UnknownCredentialError,
)
from station.journal import ReleaseJournal
from station.parts import (
    Feedback,
    build_display,
    build_panel,
    build_transport,
    check_button_names,
    connect_buttons,
)
from station.render import render
from station.screens import ErrorScreen, OfflineScreen, Screen
from station.service import SystemdNotifier
from station.signing import SignatureAuth, load_identity
from station.workflow import (
    Button,
    ButtonPressed,
    CardPresented,
    CardUnreadable,
    CloudDown,
    CloudUp,
    Command,
    DeleteJob,
    DeliverRemote,
    DeliveryFinished,
    EndSession,
    EnrolmentOffered,
    Event,
    JobDeleted,
    JobFailed,
    JobPrinted,
    JobProgress,
    Key,
    KeyPressed,
    OpenEmailSession,
    OpenPasscodeSession,
    OpenSession,
    PinRequested,
    ReleaseJobs,
    RemoteJob,
    RemoteJobs,
    RemoteReleases,
    SessionOpened,
    SessionRefused,
    ShowScreen,
    State,
    Tick,
    Timings,
    Workflow,
)

logger = logging.getLogger(__name__)

OFFLINE_MESSAGE = "Cannot reach the print service"
SCREEN_HISTORY = 256


# How often an idle, online station asks the cloud whether it is there when nothing else does
# (no signed heartbeat configured). A tap finds an outage at once anyway; this only keeps the
# idle screen honest, and 45 min keeps it inside the keep-alive budget of DESIGN.md.
WATCH_PING_S = 2700.0
# With the signed heartbeat as the probe, the watch itself waits this long between online pings
# (in effect never: the heartbeat reports outages; the watch still backs off while offline).
QUIET_WATCH_S = 7 * 86400.0


class _Stop:
    """The queue sentinel that tells a thread to finish."""


_STOP = _Stop()


class _Reconcile:
    """The worker's command to settle the release journal (the cloud is back)."""


_RECONCILE = _Reconcile()


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential back-off with jitter for probing an unreachable cloud.

    Attempt n waits between half and all of `min(max_s, first_s * 2**n)`: the doubling spares a
    cloud that is coming back up, the jitter keeps a building full of stations from probing in
    step after a shared outage, and the half that is fixed keeps probes from bunching up.
    """

    first_s: float = 1.0
    max_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.first_s <= self.max_s:
            raise ValueError("back-off needs 0 < first_s <= max_s")

    def delay_s(self, attempt: int, draw: Callable[[], float] = random.random) -> float:
        """The wait before probe number `attempt` (0-based); `draw` returns [0, 1)."""
        ceiling = min(self.max_s, self.first_s * (1 << min(attempt, 32)))
        return ceiling / 2 + draw() * ceiling / 2


class _FaultLog:
    """Log a repeating fault once at WARNING, then at DEBUG until it clears (STYLE.md, 10)."""

    def __init__(self) -> None:
        self._active: set[str] = set()
        self._lock = threading.Lock()

    def fault(self, key: str, message: str, *args: object) -> None:
        with self._lock:
            first = key not in self._active
            self._active.add(key)
        logger.log(logging.WARNING if first else logging.DEBUG, message, *args)

    def clear(self, key: str) -> None:
        with self._lock:
            was_active = key in self._active
            self._active.discard(key)
        if was_active:
            logger.info("%s recovered", key)


class Station:
    """A running release station. Build one with `build_station`."""

    def __init__(
        self,
        *,
        workflow: Workflow,
        reader: CardReader,
        display: Display,
        transport: PrinterTransport,
        client: StationCloud,
        site_key: bytes,
        spool_dir: Path,
        owns_spool_dir: bool = False,
        on_screen: Callable[[Screen], None] | None = None,
        tick_interval_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        panel: Panel | None = None,
        notifier: SystemdNotifier | None = None,
        backoff: Backoff | None = None,
        heartbeat_s: float = 30.0,
        keypad: Keypad | None = None,
    ) -> None:
        self.workflow = workflow
        self.keypad = keypad
        self.notifier = notifier
        self.panel = panel
        self._feedback = Feedback(panel.light, panel.buzzer) if panel is not None else None
        self.reader = reader
        self.display = display
        self.transport = transport
        self.client = client
        self.spool_dir = spool_dir
        self.journal = ReleaseJournal(spool_dir / "journal")
        self.on_screen = on_screen
        # The latest screens shown, in order (tests, the demo); bounded: stations run for months.
        self.screens: deque[Screen] = deque(maxlen=SCREEN_HISTORY)
        self._site_key = site_key
        self._owns_spool_dir = owns_spool_dir
        self._tick_interval_s = tick_interval_s
        self._clock = clock
        self._events: queue.Queue[Event | _Stop] = queue.Queue()
        self._commands: queue.Queue[Command | _Stop | _Reconcile] = queue.Queue()
        self._changed = threading.Condition()
        self._settled: State | None = None  # the state whose screen was last drawn
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        # Started and stopped with the station (station.heartbeat: heartbeat and device data).
        self.background: list[Any] = []
        self._faults = _FaultLog()
        self.backoff = backoff or Backoff()
        self.heartbeat_s = heartbeat_s
        self._offline = False  # guarded by _cloud_lock
        self._cloud_lock = threading.Lock()
        self._probe_now = threading.Event()
        self._probe_asap = False  # a tap while offline: probe now, not at the next back-off step
        self.outages = 0  # how many times the cloud went away (tests, the bench)
        # Releases this station made (from a tap) or already took: the long-poll reports every
        # requested release, and these must not be delivered a second time.
        self._own_releases: deque[str] = deque(maxlen=1024)
        self._own_lock = threading.Lock()  # the worker adds, the long-poll thread reads
        # Simulated displays take a label for frame file names; real panels do not.
        self._show_takes_label = "label" in inspect.signature(display.show).parameters

    # ---- public ----

    @property
    def state(self) -> State:
        """The workflow's current state."""
        with self._changed:
            return self.workflow.state

    def start(self) -> None:
        """Show the idle screen and start the engine, worker and reader threads."""
        if self._threads:
            raise RuntimeError("station already started")
        for stale in self.spool_dir.glob("release-*.ppj"):
            stale.unlink(missing_ok=True)  # left by a crash mid-delivery (ciphertext only)
        if self.panel is not None:
            connect_buttons(self.panel, self.press)
        self._dispatch(self.workflow.start())
        self._settle()
        threads = [
            ("engine", self._engine),
            ("worker", self._worker),
            ("reader", self._read_badges),
            ("cloud-watch", self._watch_cloud),
        ]
        if self.keypad is not None:
            threads.append(("keypad", self._read_keys))
        for name, target in threads:
            thread = threading.Thread(target=target, name=f"station-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()
        for service in self.background:
            service.start()
        logger.info("station started")
        if self.notifier is not None:
            self.notifier.ready(f"Ready: {self.workflow.state.value}")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the threads and release every part (reader, display, printer, cloud client)."""
        if self.notifier is not None:
            self.notifier.stopping()
        self._stopping.set()
        self._probe_now.set()
        self._events.put(_STOP)
        self._commands.put(_STOP)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("thread %s did not stop in time", thread.name)
        for service in self.background:
            service.stop()
        for part in (
            self.reader,
            self.keypad,
            self.display,
            self.transport,
            self.client,
            self.panel,
        ):
            close = getattr(part, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    logger.exception("closing %s failed", type(part).__name__)
        if self._owns_spool_dir:
            shutil.rmtree(self.spool_dir, ignore_errors=True)
        logger.info("station stopped")

    def press(self, button: Button) -> None:
        """A button was pressed (physical buttons, a touch panel, the demo's keyboard)."""
        self._post(ButtonPressed(button))

    @property
    def offline(self) -> bool:
        """True while the station believes the cloud is unreachable."""
        with self._cloud_lock:
            return self._offline

    def key(self, key: Key, digit: str = "") -> None:
        """A keypad key was pressed (the keypad thread, or a caller without a keypad part)."""
        self._post(KeyPressed(key, digit))

    def wait_for_state(self, state: State, timeout_s: float) -> bool:
        """Wait until the station is in `state` with its screen drawn; False after `timeout_s`."""
        with self._changed:
            return self._changed.wait_for(lambda: self._settled is state, timeout_s)

    def __enter__(self) -> Station:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- engine ----

    def _post(self, event: Event) -> None:
        self._events.put(event)

    def _engine(self) -> None:
        next_tick = self._clock()
        while not self._stopping.is_set():
            now = self._clock()
            if now >= next_tick:
                # Ticks go in between events too, so a flood of progress events cannot starve them.
                next_tick = now + self._tick_interval_s
                self._handle(Tick(now))
                self._keep_alive()
                continue
            try:
                item = self._events.get(timeout=next_tick - now)
            except queue.Empty:
                continue
            if isinstance(item, _Stop):
                return
            self._handle(item)

    def _keep_alive(self) -> None:
        # Only while every thread is alive: a dead worker or reader must let systemd's watchdog
        # restart the station rather than leave a screen that never answers a tap.
        if self.notifier is not None and all(t.is_alive() for t in self._threads):
            self.notifier.watchdog()

    def _handle(self, event: Event) -> None:
        try:
            with self._changed:
                commands = self.workflow.handle(event)
        except Exception:
            logger.exception("workflow failed on %s", type(event).__name__)
            return
        self._dispatch(commands)
        self._settle()

    def _settle(self) -> None:
        # A state counts as reached once its commands are out and its screen is on the panel,
        # so whoever waits for it (tests, the demo, the bench) sees the two agree.
        with self._changed:
            self._settled = self.workflow.state
            self._changed.notify_all()

    def _dispatch(self, commands: list[Command]) -> None:
        # Hand cloud and printer work to the worker before drawing: the session request is then
        # already on the wire while the "reading" frame is rendered and pushed to the panel.
        for command in commands:
            if not isinstance(command, ShowScreen):
                self._commands.put(command)
        for command in commands:
            if isinstance(command, ShowScreen):
                self._show(command.screen)

    def _show(self, screen: Screen) -> None:
        try:
            image: Image.Image = render(screen, self.display.size, self.display.mode)
            show: Callable[..., None] = self.display.show
            if self._show_takes_label:
                show(image, label=screen.label)
            else:
                show(image)
            self._faults.clear("display")
        except HardwareError as exc:
            self._faults.fault("display", "display failed: %s", exc)
        if self._feedback is not None:
            try:
                self._feedback.screen_shown(screen)
                self._faults.clear("panel")
            except HardwareError as exc:
                self._faults.fault("panel", "status light or buzzer failed: %s", exc)
        if self.notifier is not None:
            # The label only (and the reason for errors): never a user's name or job names.
            detail = (
                f": {screen.message}" if isinstance(screen, ErrorScreen | OfflineScreen) else ""
            )
            self.notifier.status(f"{screen.label}{detail}")
        # Observers hear of a screen once it is on the panel, so timings include the drawing.
        self.screens.append(screen)
        if self.on_screen is not None:
            try:
                self.on_screen(screen)
            except Exception:
                logger.exception("on_screen callback failed")

    # ---- worker ----

    def _worker(self) -> None:
        try:
            self.reconcile()  # first, whatever a previous run left unsettled
        except Exception:
            logger.exception("reconciling the release journal failed")
        while True:
            command = self._commands.get()
            if isinstance(command, _Stop) or self._stopping.is_set():
                return
            try:
                if isinstance(command, _Reconcile):
                    self.reconcile()
                else:
                    self._execute(command)
            except Exception:
                logger.exception("command %s failed", type(command).__name__)

    def _execute(self, command: Command) -> None:
        if isinstance(command, OpenSession):
            self._post(self._open_session(command))
        elif isinstance(command, OpenPasscodeSession):
            self._post(self._open_passcode_session(command))
        elif isinstance(command, OpenEmailSession):
            self._post(self._open_email_session(command))
        elif isinstance(command, ReleaseJobs):
            self._post(self._release(command))
        elif isinstance(command, DeliverRemote):
            self._post(self._deliver_remote(command))
        elif isinstance(command, DeleteJob):
            try:
                self.client.delete_job(command.session_id, command.job_id)
            except CloudError as exc:
                logger.warning("deleting job %s failed: %s", command.job_id, exc)
                return
            self._post(JobDeleted(command.job_id))
        elif isinstance(command, EndSession):
            try:
                self.client.end_session(command.session_id)
            except CloudError as exc:
                # The cloud ends it by itself when it expires.
                logger.debug("ending session %s failed: %s", command.session_id, exc)

    def _open_session(
        self, command: OpenSession
    ) -> SessionOpened | SessionRefused | PinRequested | EnrolmentOffered:
        attempt = command.attempt
        try:
            if command.pin is not None and command.pin_email is not None:
                keyed = pin_tag(self._site_key, command.pin_email, command.pin)
                info = self.client.open_session(command.tag, keyed)
            else:
                info = self.client.open_session(command.tag)
        except PinRequiredError as exc:
            return PinRequested(exc.pin_email, exc.min_pin_digits, attempt)
        except UnknownCredentialError:
            if command.pin is not None:
                logger.info("wrong PIN for a badge")
                return SessionRefused("wrong-pin", "Wrong PIN", attempt)
            logger.info("badge not recognised")
            return self._offer_enrolment(command.tag, attempt)
        except (RateLimitedError, PinLockedError, CloudUnreachableError, CloudError) as exc:
            return self._refusal(exc, attempt)
        self._cloud_answered()
        return SessionOpened(
            info.session_id, info.display_name, info.jobs, attempt, release_all=info.release_all
        )

    def _open_passcode_session(
        self, command: OpenPasscodeSession
    ) -> SessionOpened | SessionRefused:
        refused = SessionRefused("wrong-passcode", "Passcode not recognised", command.attempt)
        return self._open_typed(
            lambda: self.client.open_passcode_session(command.passcode),
            refused,
            "release passcode not recognised",
        )

    def _open_email_session(self, command: OpenEmailSession) -> SessionOpened | SessionRefused:
        # The address and the PIN are never logged: "email entry" is all a log line says.
        def open_() -> SessionInfo:
            keyed = pin_tag(self._site_key, command.email, command.pin)
            return self.client.open_email_session(command.email, keyed)

        refused = SessionRefused("wrong-pin", "Wrong email or PIN", command.attempt)
        return self._open_typed(open_, refused, "email entry: not recognised")

    def _open_typed(
        self, open_: Callable[[], SessionInfo], refused: SessionRefused, not_recognised: str
    ) -> SessionOpened | SessionRefused:
        """A session for what was typed (a passcode, an email + PIN); `refused` if unknown."""
        try:
            info = open_()
        except UnknownCredentialError:
            logger.info(not_recognised)
            return refused
        except CloudError as exc:
            return self._refusal(exc, refused.attempt)
        self._cloud_answered()
        return SessionOpened(
            info.session_id,
            info.display_name,
            info.jobs,
            refused.attempt,
            release_all=info.release_all,
        )

    def _offer_enrolment(self, tag: str, attempt: int) -> SessionRefused | EnrolmentOffered:
        unknown = SessionRefused("unknown-card", "Badge not recognised", attempt)
        try:
            offer = self.client.offer_enrolment(tag)
        except CloudUnreachableError as exc:
            self._cloud_failed(exc)
            return SessionRefused("offline", OFFLINE_MESSAGE, attempt)
        except CloudError as exc:
            # Self-enrolment off (the usual case), rate-limited, or refused: the badge is
            # simply not recognised.
            logger.debug("no enrolment code: %s", exc)
            return unknown
        return EnrolmentOffered(offer.code, max(1, offer.ttl_s // 60), attempt)

    def _refusal(self, exc: CloudError, attempt: int) -> SessionRefused:
        """What a failed identification looks like to the workflow, in words."""
        if isinstance(exc, RateLimitedError):
            wait = exc.retry_after_s
            when = f"{wait} seconds" if wait < 120 else f"{(wait + 59) // 60} minutes"
            return SessionRefused("rate-limited", f"Wait {when} and try again", attempt)
        if isinstance(exc, PinLockedError):
            return SessionRefused("pin-locked", "PIN locked", attempt)
        if isinstance(exc, PinNotSetError):
            return SessionRefused("pin-not-set", "No PIN set", attempt)
        if isinstance(exc, CloudUnreachableError):
            self._cloud_failed(exc)
            return SessionRefused("offline", OFFLINE_MESSAGE, attempt)
        logger.warning("opening a session failed: %s", exc)
        return SessionRefused("error", "The print service refused the request", attempt)

    def _printer_not_ready(self) -> str | None:
        """Why the printer cannot take a job now (out of paper, door open), or None."""
        check_ready = getattr(self.transport, "check_ready", None)
        if callable(check_ready):
            try:
                check_ready()
            except PrinterError as exc:
                self._faults.fault("printer", "printer not ready: %s", exc)
                return str(exc.reason)
        return None

    def _release(self, command: ReleaseJobs) -> DeliveryFinished:
        # Ask the printer first: a printer out of paper or with its door open is refused before
        # the cloud creates a release, so the job simply stays held and the user reads why.
        if (not_ready := self._printer_not_ready()) is not None:
            return DeliveryFinished(error=f"{not_ready} - your jobs are still held")
        try:
            releases = self.client.release(command.session_id, command.job_ids)
        except SessionExpiredError:
            return DeliveryFinished(error="Session expired, tap your badge again")
        except CloudUnreachableError as exc:
            self._cloud_failed(exc)
            return DeliveryFinished(error=OFFLINE_MESSAGE)
        except CloudError as exc:
            logger.warning("release failed: %s", exc)
            return DeliveryFinished(error="The print service refused the release")
        self._took(releases)
        for release in releases:
            if self._stopping.is_set():
                break  # not reported: the lease expires and the job is held again
            self._deliver(release)
        self.reconcile()  # outcomes the cloud could not take a moment ago
        return DeliveryFinished()

    # ---- releases made from a phone (station-entry) ----

    def remote_releases(self, release_ids: list[str]) -> None:
        """The long-poll found releases for this station; those it did not make itself are
        offered to the workflow (which takes them only while idle)."""
        remote = tuple(rid for rid in release_ids if not self._made_here(rid))
        if remote:
            self._post(RemoteReleases(remote))

    def _took(self, releases: list[ReleaseInfo]) -> None:
        with self._own_lock:
            self._own_releases.extend(release.id for release in releases)

    def _made_here(self, release_id: str) -> bool:
        with self._own_lock:
            return release_id in self._own_releases

    def _deliver_remote(self, command: DeliverRemote) -> DeliveryFinished:
        grant = getattr(self.client, "release_grant", None)
        if not callable(grant):
            return DeliveryFinished()  # a client without grants (a test fake): nothing to do
        journaled = {entry.release_id for entry in self.journal.entries()}
        releases: list[ReleaseInfo] = []
        for release_id in command.release_ids:
            if release_id in journaled or self._made_here(release_id):
                continue  # begun before a restart (reconcile settles it) or made here
            try:
                releases.append(grant(release_id))
            except CloudUnreachableError as exc:
                self._cloud_failed(exc)
                return DeliveryFinished(error=OFFLINE_MESSAGE)
            except CloudError as exc:
                # Fetched, finished or expired meanwhile: not this station's to print now.
                logger.info("remote release %s not fetched: %s", release_id, exc)
        self._took(releases)
        self._post(RemoteJobs(tuple(RemoteJob(r.job_id, r.name, r.user_name) for r in releases)))
        if releases and (not_ready := self._printer_not_ready()) is not None:
            # Made elsewhere, so already released: report them failed at once (the jobs are held
            # again) rather than leave them to the lease.
            for release in releases:
                self.journal.settle(release.id, release.job_id, "failed", not_ready)
                self._report(release.id, "failed", not_ready, None)
                self._post(JobFailed(release.job_id, not_ready))
            return DeliveryFinished()
        for release in releases:
            if self._stopping.is_set():
                break  # not reported: the lease expires and the job is held again
            logger.info("delivering remote release %s", release.id)
            self._deliver(release)
        self.reconcile()
        return DeliveryFinished()

    def _deliver(self, release: ReleaseInfo) -> None:
        outcome: Outcome = "failed"
        reason: str | None = None
        printer_job_id: int | None = None

        def progress(done: int, total: int) -> None:
            self._post(JobProgress(release.job_id, done, total))

        # Written before the first byte can reach the printer: after a crash, the entry says to ask
        # the printer about this release instead of sending it again.
        self.journal.begin(release.id, release.job_id)
        try:
            result = deliver_release(
                self.client, self.transport, release, self.spool_dir, on_progress=progress
            )
            outcome, printer_job_id = "printed", result.printer_job_id
            self._faults.clear("printer")
        except PrinterError as exc:
            self._faults.fault("printer", "release %s not printed: %s", release.id, exc)
            reason = exc.reason
            printer_job_id = getattr(exc, "printer_job_id", None)
            if _may_have_printed(exc):
                # The document went out and then the printer fell silent: only the printer knows
                # whether it printed. Reporting "failed" now could print it twice.
                settled, _why = self._ask_printer(release.id)
                if settled is None:
                    self._post(JobFailed(release.job_id, f"{reason} - checking with the printer"))
                    return  # the journal keeps it; reconcile() asks again
                if settled == "printed":
                    outcome, reason = "printed", None
        except DeliveryError as exc:
            logger.warning("release %s not delivered: %s", release.id, exc)
            reason = exc.reason
        except CloudUnreachableError as exc:
            logger.warning("release %s download failed: %s", release.id, exc)
            self._cloud_failed(exc)
            reason = OFFLINE_MESSAGE
        except CloudError as exc:
            logger.warning("release %s download failed: %s", release.id, exc)
            reason = "Could not download the document"
        except Exception:
            logger.exception("release %s failed", release.id)
            reason = "Station error"
        self.journal.settle(release.id, release.job_id, outcome, reason, printer_job_id)
        self._report(release.id, outcome, reason, printer_job_id)
        if outcome == "printed":
            self._post(JobPrinted(release.job_id))
        else:
            self._post(JobFailed(release.job_id, reason or "Not printed"))

    def _report(
        self, release_id: str, outcome: Outcome, reason: str | None, printer_job_id: int | None
    ) -> bool:
        try:
            self.client.report_outcome(release_id, outcome, reason, printer_job_id)
        except CloudUnreachableError as exc:
            # The journal keeps the outcome; it is reported when the cloud is back.
            logger.warning("could not report release %s %s: %s", release_id, outcome, exc)
            self._cloud_failed(exc)
            return False
        except CloudError as exc:
            # The client already retried; the journal keeps the outcome for the next attempt.
            logger.warning("could not report release %s %s: %s", release_id, outcome, exc)
            return False
        self.journal.forget(release_id)
        return True

    def reconcile(self) -> None:
        """Settle releases left in the journal by a crash, a power cut or an unreachable cloud.

        An outcome already known is reported again. Otherwise the printer is asked whether the
        job named after the release exists (nothing is ever sent twice): completed -> printed;
        failed or absent -> failed, so the job is held again; still pending -> ask later.
        """
        for entry in self.journal.entries():
            outcome, reason = entry.outcome, entry.reason
            if outcome is None:
                outcome, reason = self._ask_printer(entry.release_id)
                if outcome is None:
                    continue
                self.journal.settle(entry.release_id, entry.job_id, outcome, reason)
            self._report(entry.release_id, outcome, reason, entry.printer_job_id)

    def _ask_printer(self, release_id: str) -> tuple[Outcome | None, str | None]:
        job_outcome = getattr(self.transport, "job_outcome", None)
        if not callable(job_outcome):
            # The printer cannot say (RAW): holding the job again is safer than losing it.
            return "failed", "Not confirmed by the printer after a restart"
        try:
            answer = job_outcome(release_id)
        except PrinterError as exc:
            self._faults.fault("printer", "cannot ask the printer about %s: %s", release_id, exc)
            return None, None
        if answer == "completed":
            return "printed", None
        if answer == "pending":
            return None, None
        return "failed", "Interrupted by a station restart"

    # ---- cloud watch ----

    def cloud_unreachable(self, exc: BaseException) -> None:
        """Another part (the heartbeat) could not reach the cloud: as a failed call here."""
        self._cloud_failed(exc)

    def cloud_answered(self) -> None:
        """Another part (the heartbeat) reached the cloud: as a successful call here."""
        self._cloud_answered()

    def _cloud_failed(self, exc: BaseException) -> None:
        """A cloud call could not reach the cloud: go offline (once) and start probing."""
        self._faults.fault("cloud", "cloud unreachable: %s", exc)
        with self._cloud_lock:
            if self._offline:
                return
            self._offline = True
            self.outages += 1
        self._post(CloudDown(OFFLINE_MESSAGE))
        self._probe_now.set()  # the watch switches from heartbeat to back-off now

    def _cloud_answered(self) -> None:
        """A cloud call succeeded: if the station was offline, it is back."""
        with self._cloud_lock:
            was_offline, self._offline = self._offline, False
        self._faults.clear("cloud")
        if was_offline:
            self._post(CloudUp())
            # Outcomes that could not be reported during the outage, in order with other work.
            self._commands.put(_RECONCILE)

    def _watch_cloud(self) -> None:
        ping = getattr(self.client, "ping", None)
        if not callable(ping):
            # A client without a probe: outages end with the next successful call. The thread
            # stays, idle: the watchdog is only fed while every station thread is alive.
            self._stopping.wait()
            return
        attempt = 0
        while not self._stopping.is_set():
            if self.offline:
                wait_s = self.backoff.delay_s(attempt)
                attempt += 1
            else:
                wait_s, attempt = self.heartbeat_s, 0
            woken = self._probe_now.wait(wait_s)
            self._probe_now.clear()
            if self._stopping.is_set():
                return
            with self._cloud_lock:
                asap, self._probe_asap = self._probe_asap, False
            if woken and not asap:
                continue  # a call just failed: start the back-off from its first step
            try:
                ping()
            except CloudUnreachableError as exc:
                self._cloud_failed(exc)
                self._probe_now.clear()  # we know already; no need to wake ourselves
                continue
            except CloudError as exc:
                # It answered, if not as hoped (a proxy's 404): reachable is what matters.
                logger.debug("cloud probe: %s", exc)
            except Exception:
                logger.exception("cloud probe failed")
                continue
            self._cloud_answered()

    # ---- reader ----

    def _read_badges(self) -> None:
        while not self._stopping.is_set():
            try:
                credential = self.reader.read(timeout_s=0.2)
            except CardUnreadableError as exc:
                # One bad tap, not a reader fault: said on screen, and only its reason logged
                # (the reader logged what kind of input it was, never the input).
                logger.info("card presented but not readable: %s", exc.reason)
                self._faults.clear("reader")
                self._post(CardUnreadable(exc.reason))
                continue
            except ReaderError as exc:
                self._faults.fault("reader", "badge reader failed: %s", exc)
                self._stopping.wait(1.0)
                continue
            self._faults.clear("reader")
            if credential is not None:
                self._post(CardPresented(credential_tag(self._site_key, credential)))
                if self.offline:
                    # Someone is waiting at the station: find out now whether the cloud is back
                    # rather than at the next back-off step (up to Backoff.max_s away).
                    with self._cloud_lock:
                        self._probe_asap = True
                    self._probe_now.set()

    def _read_keys(self) -> None:
        keypad = self.keypad
        assert keypad is not None
        kinds = {
            KeypadKey.DIGIT: Key.DIGIT,
            KeypadKey.BACKSPACE: Key.BACKSPACE,
            KeypadKey.ENTER: Key.ENTER,
            KeypadKey.ESCAPE: Key.ESCAPE,
            KeypadKey.CHARACTER: Key.CHARACTER,
            KeypadKey.TAB: Key.TAB,
        }
        while not self._stopping.is_set():
            try:
                event = keypad.read(timeout_s=0.2)
            except HardwareError as exc:
                self._faults.fault("keypad", "keypad failed: %s", exc)
                self._stopping.wait(1.0)
                continue
            self._faults.clear("keypad")
            if event is not None:
                self._post(KeyPressed(kinds[event.key], event.digit))


def _may_have_printed(exc: PrinterError) -> bool:
    """Whether the printer may hold (and print) the document despite `exc`."""
    if isinstance(exc, PrinterConnectError):
        return False  # no connection was made: not a byte was sent
    return isinstance(exc, PrinterUnreachableError | DeliveryUnconfirmedError)


def build_station(
    config: StationConfig,
    *,
    reader: CardReader | None = None,
    display: Display | None = None,
    transport: PrinterTransport | None = None,
    client: StationCloud | None = None,
    on_screen: Callable[[Screen], None] | None = None,
    panel: Panel | None = None,
    notifier: SystemdNotifier | None = None,
    backoff: Backoff | None = None,
    heartbeat_s: float | None = None,
    keypad: Keypad | None = None,
) -> Station:
    """Build a station from its config; parts passed in are used instead of the configured ones.

    Raises:
        ConfigError: a configured part cannot be built (unknown driver, bad printer URI, ...).
    """
    hw = config.hardware
    if reader is None:
        try:
            # Options are checked before any device is opened (and grabbed).
            reader = reader_from_config(hw.reader, dict(hw.reader_options))
        except ValueError as exc:
            raise ConfigError(f"[reader] {exc}") from exc
    if panel is None:
        panel = build_panel(config)
    else:
        check_button_names(panel)
    if keypad is None and hw.keypad is not None:
        try:
            keypad = keypad_from_config(hw.keypad, keyboard=hw.keyboard)
        except ValueError as exc:
            raise ConfigError(f"[panel] keypad: {exc}") from exc
    if display is None:
        display = build_display(config)
    if transport is None:
        transport = build_transport(config)
    own_client = client is None
    if client is None:
        if config.cloud.station_id is None or config.cloud.key_file is None:
            raise ConfigError("[cloud] station_id and the station key are set at pairing")
        auth = SignatureAuth(load_identity(config.cloud.key_file), config.cloud.station_id)
        site_private = (
            X25519PrivateKey.from_private_bytes(config.site_private_key)
            if config.site_private_key is not None
            else None
        )
        client = CloudClient(
            config.cloud.url,
            auth,
            timeout_s=config.cloud.timeout_s,
            site_private_key=site_private,
        )
    owns_spool_dir = config.spool_dir is None
    if config.spool_dir is None:
        spool_dir = Path(tempfile.mkdtemp(prefix="pullprint-spool-"))  # mode 0700
    else:
        spool_dir = config.spool_dir
        try:
            spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"[spool] dir {spool_dir}: {exc.strerror}") from exc
    timings = Timings(
        identify_s=config.session.identify_s,
        session_s=config.session.timeout_s,
        done_s=config.session.done_s,
        error_s=config.session.error_s,
        pin_s=config.session.pin_s,
    )
    station = Station(
        # Email + PIN only where an address can be typed: a full keyboard, not a numeric keypad
        # or a touchscreen.
        workflow=Workflow(
            timings,
            station_name=config.name,
            email_entry=keypad is not None and keypad.keyboard,
        ),
        reader=reader,
        display=display,
        transport=transport,
        client=client,
        site_key=config.site_key,
        spool_dir=spool_dir,
        owns_spool_dir=owns_spool_dir,
        on_screen=on_screen,
        panel=panel,
        notifier=notifier,
        backoff=backoff,
        heartbeat_s=WATCH_PING_S if heartbeat_s is None else heartbeat_s,
        keypad=keypad,
    )
    if own_client and config.cloud.long_poll and isinstance(client, CloudClient):
        from station.long_poll import LongPoll  # noqa: PLC0415 - opt-in

        station.background.append(LongPoll(station, client, station.backoff.delay_s))
    if own_client and (config.devices.heartbeat_s > 0 or config.devices.poll_s > 0):
        from station.heartbeat import attach  # noqa: PLC0415 - only stations talking to a cloud

        sync = attach(station, config)
        if heartbeat_s is None and config.devices.heartbeat_s > 0:
            # The signed heartbeat is the idle-time probe: one request per interval keeps the
            # station within DESIGN.md's keep-alive budget (<= 1 MB a month), so the watch does
            # not ping as well while the cloud answers; it still backs off and probes when not.
            sync.heartbeat.on_unreachable = station.cloud_unreachable
            sync.heartbeat.on_answered = station.cloud_answered
            station.heartbeat_s = QUIET_WATCH_S
    return station
