"""The long-poll for releases made away from the station (a phone that scanned the printer's QR
code): while the station is idle and online, `GET /api/v1/station/wait` is kept open; when the
cloud answers with releases this station did not make itself, they go to the workflow, which
takes them only while still idle, and the worker fetches each grant and delivers it through the
release journal like a tap's releases.

Opt-in (`[cloud] long_poll = true`): an idle long-poll is answered after `LONG_POLL_S` and asked
again at once, about 52,000 requests a month against the heartbeat's 960, far beyond
DESIGN.md's keep-alive budget on a metered link (docs/station.md gives the measured bytes).

Rules: no poll while the station is busy (a session, a delivery) or offline (the cloud watch owns
outages and their screen: an unreachable cloud is reported to it and polling stops until it says
the cloud is back); other errors back off exponentially. Releases the workflow did not take stay
requested in the cloud and are reported again by the next poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from station.errors import CloudError, CloudUnreachableError
from station.workflow import State

logger = logging.getLogger(__name__)

# The cloud's MAX_WAIT_S: below common proxy idle timeouts, so the path never cuts the poll.
LONG_POLL_S = 50


class Waiter(Protocol):
    """The cloud call the loop makes (`station.cloud_client.CloudClient.wait`)."""

    def wait(self, timeout_s: int) -> list[str]: ...


class PolledStation(Protocol):
    """What the loop needs of the running station (`station.app.Station`)."""

    @property
    def state(self) -> State: ...

    @property
    def offline(self) -> bool: ...

    def remote_releases(self, release_ids: list[str]) -> None: ...

    def cloud_unreachable(self, exc: BaseException) -> None: ...


class LongPoll:
    """The long-poll thread; started and stopped with the station (`Station.background`).

    Args:
        station: the running station.
        client: makes the long-poll request.
        delay_s: the back-off before retry number n (0-based) after an error.
        poll_s: how long the cloud may hold each request.
        idle_check_s: how often a busy or offline station is looked at again.
    """

    def __init__(
        self,
        station: PolledStation,
        client: Waiter,
        delay_s: Callable[[int], float],
        *,
        poll_s: int = LONG_POLL_S,
        idle_check_s: float = 0.5,
    ) -> None:
        self._station = station
        self._client = client
        self._delay_s = delay_s
        self._poll_s = poll_s
        self._idle_check_s = idle_check_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0  # requests made (tests, the bench)
        self.errors = 0

    def start(self) -> None:
        """Start polling in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="station-long-poll", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 0.5) -> None:
        """Stop; a request in flight is abandoned (the thread is a daemon and exits when it
        returns, or when the station closes the client under it)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _ready(self) -> bool:
        return self._station.state is State.IDLE and not self._station.offline

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            if not self._ready():
                self._stopping.wait(self._idle_check_s)
                continue
            try:
                self.polls += 1
                release_ids = self._client.wait(self._poll_s)
            except CloudUnreachableError as exc:
                if self._stopping.is_set():
                    return  # the station closed the client under the request
                # The cloud watch takes over (offline screen, probes); polling resumes when the
                # station is online and idle again.
                self.errors += 1
                self._station.cloud_unreachable(exc)
                continue
            except CloudError as exc:
                self.errors += 1
                delay = self._delay_s(failures)
                failures += 1
                log = logger.warning if failures == 1 else logger.debug
                log("long-poll failed (next in %.1f s): %s", delay, exc)
                self._stopping.wait(delay)
                continue
            except Exception:
                self.errors += 1
                logger.exception("long-poll failed")
                self._stopping.wait(self._delay_s(failures))
                failures += 1
                continue
            failures = 0
            if release_ids and self._ready():
                self._station.remote_releases(release_ids)
                # Let the workflow take them before asking again: the same ids stay requested
                # until the worker fetches them, and an immediate poll would report them twice.
                self._stopping.wait(self._idle_check_s)
