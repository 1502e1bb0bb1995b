"""Pairing on first start: a station whose config names no station id pairs before it runs.

    grant = pair_on_first_start(CONFIG, state_dir=STATE)      # None if paired already
    config = load_config(CONFIG, drop_ins=[paired_drop_in(STATE)])   # the normal start

The station's own display shows the pairing code and the key fingerprint (`PairingScreen`) for
as long as it waits for an admin to approve (a new code is shown whenever the old one expires);
an unreachable cloud shows the offline screen and is retried with back-off; a denied request is
shown in words and ends the start (systemd restarts the unit, which asks again). Once approved,
the site key is written (0600) and the station id, key files, printer and spool directory go to
`paired.toml` in the state directory (atomically, 0600), a drop-in read over the config file.
The config file itself is never written: on a station it lives in /etc, which the hardened
service cannot write and which a read-only root would not keep, whereas the state directory is
the persistent data partition that already holds the station's keys.

While it waits, systemd's watchdog is fed and the status line says "pairing", so a station
waiting for an admin is not restarted as hung. The code and the keys are never logged.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import tomli_w

from hardware.display.base import Display
from station.config import load_unpaired
from station.errors import CloudError, CloudUnreachableError, ConfigError
from station.pairing import (
    PairingCode,
    PairingDeniedError,
    PairingGrant,
    pair_station,
    write_site_key,
)
from station.parts import build_display
from station.render import render
from station.screens import ErrorScreen, OfflineScreen, PairingScreen, Screen
from station.service import SystemdNotifier
from station.signing import load_or_create_identity

logger = logging.getLogger(__name__)

PAIRED_FILE = "paired.toml"
RETRY_MIN_S = 2.0
RETRY_MAX_S = 60.0
_TICK_S = 1.0  # the longest wait between watchdog pings


def paired_drop_in(state_dir: Path) -> Path:
    """Where pairing on first start writes what it received (read as a config drop-in)."""
    return state_dir / PAIRED_FILE


def pair_on_first_start(
    config_path: Path,
    env: Mapping[str, str] | None = None,
    *,
    state_dir: Path,
    display: Display | None = None,
    on_screen: Callable[[Screen], None] | None = None,
    notifier: SystemdNotifier | None = None,
    sleep: Callable[[float], None] = time.sleep,
    should_stop: Callable[[], bool] = lambda: False,
) -> PairingGrant | None:
    """Pair now if the config is not paired yet; returns the grant, or None if it was paired.

    Args:
        config_path: the station's config file (`[station] name` and `[cloud] url` at least).
        env: environment overrides, as for `load_config`.
        state_dir: where keys and the spool go when the config does not say.
        display: the display to show the code on (default: the one the config names).
        on_screen: told of every screen shown (tests, the demo).
        notifier: systemd notifications (status, watchdog) while waiting.
        sleep: how to wait (tests pass a fast one).
        should_stop: polled while waiting; True stops pairing with `CloudError`.

    Raises:
        ConfigError: the config cannot be read, or the result cannot be written.
        PairingDeniedError: an admin denied the request.
        CloudError: stopped.
    """
    drop_in = paired_drop_in(state_dir)
    unpaired = load_unpaired(config_path, env, drop_ins=[drop_in])
    if unpaired is None:
        return None
    owns_display = display is None
    shown_on = display if display is not None else build_display(unpaired.hardware)
    takes_label = "label" in inspect.signature(shown_on.show).parameters

    def show(screen: Screen) -> None:
        image = render(screen, shown_on.size, shown_on.mode)
        if takes_label:
            shown_on.show(image, label=screen.label)  # type: ignore[call-arg]
        else:
            shown_on.show(image)
        if notifier is not None:
            notifier.status(screen.label)  # never the code itself
        if on_screen is not None:
            on_screen(screen)

    def wait(seconds: float) -> None:
        # In short steps, feeding the watchdog: an admin may take a while to approve.
        left = seconds
        while left > 0 and not should_stop():
            if notifier is not None:
                notifier.watchdog()
            step = min(_TICK_S, left)
            sleep(step)
            left -= step

    key_file = unpaired.identity_key_file or state_dir / "station.key"
    site_key_file = unpaired.site_key_file or state_dir / "site.key"
    spool_dir = unpaired.spool_dir or state_dir / "spool"
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        identity = load_or_create_identity(key_file)
        if notifier is not None:
            notifier.ready("Pairing")
        logger.info("station not paired yet: asking %s for a pairing code", unpaired.cloud_url)
        retry_s = RETRY_MIN_S
        while True:
            if should_stop():
                raise CloudError("pairing stopped")
            try:
                grant = pair_station(
                    unpaired.cloud_url,
                    identity,
                    on_code=lambda code: show(_screen(code)),
                    sleep=wait,
                    should_stop=should_stop,
                )
                break
            except CloudUnreachableError as exc:
                # Once at WARNING, then at DEBUG until it clears (STYLE.md, 10).
                level = logging.WARNING if retry_s == RETRY_MIN_S else logging.DEBUG
                logger.log(
                    level, "pairing: cloud unreachable (%s); retrying in %.0f s", exc, retry_s
                )
                show(OfflineScreen("Cannot reach the print service to pair; retrying"))
                wait(retry_s)
                retry_s = min(retry_s * 2, RETRY_MAX_S)
            except PairingDeniedError:
                show(ErrorScreen("Pairing denied", "Ask your administrator to pair it again"))
                raise
        write_site_key(grant.site_key, site_key_file)
        _write_drop_in(
            drop_in,
            grant,
            key_file=key_file,
            site_key_file=site_key_file,
            spool_dir=spool_dir,
            configured_spool=unpaired.spool_dir,
        )
    finally:
        if owns_display:
            with contextlib.suppress(Exception):
                shown_on.close()
    logger.info("paired as station %s for printer %s", grant.station_id, grant.printer_name)
    return grant


def _screen(code: PairingCode) -> PairingScreen:
    return PairingScreen(code.user_code, code.fingerprint)


def _write_drop_in(
    path: Path,
    grant: PairingGrant,
    *,
    key_file: Path,
    site_key_file: Path,
    spool_dir: Path,
    configured_spool: Path | None,
) -> None:
    """Write what pairing gave as a config drop-in, atomically (0600)."""
    raw: dict[str, dict[str, object]] = {
        "cloud": {"station_id": grant.station_id},
        "identity": {"key_file": str(key_file)},
        # The site key lives in its own file, never in a config.
        "site": {"key_file": str(site_key_file)},
        "printer": {"uri": grant.printer_uri},
    }
    if configured_spool is None:
        raw["spool"] = {"dir": str(spool_dir)}
    text = tomli_w.dumps(raw)
    fd, temp = tempfile.mkstemp(prefix=".paired-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc
