"""`pullprint station pair`: the station's half of pairing, run once on a new station.

It makes (or reuses) the station's keys, asks the cloud for a pairing code, shows the code and the
key fingerprint (on the terminal, and as the pairing screen on the station's display when one is
configured), waits for an admin to run `pullprint pair CODE ...`, then writes what it received: the
site key (0600), for a zero-knowledge site the site private key (0600), and a station.toml (0600)
naming the station id, the printer and those files.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from station.pairing import PairingCode, PairingGrant, pair_station, write_site_key
from station.screens import PairingScreen
from station.signing import load_or_create_identity


class StationPairError(Exception):
    """Pairing could not be started or its result not written."""


def station_toml(grant: PairingGrant, cloud_url: str, state_dir: Path, name: str) -> str:
    """The station config a paired station starts with (simulated reader and display: edit the
    [hardware] table, [reader], [display] and [panel] for the real parts)."""

    def q(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"')

    return (
        f'[station]\nname = "{q(name)}"\n'
        f'[cloud]\nurl = "{q(cloud_url)}"\nstation_id = "{q(grant.station_id)}"\n'
        f'[identity]\nkey_file = "{q(str(state_dir / "station.key"))}"\n'
        f'[site]\nkey_file = "{q(str(state_dir / "site.key"))}"\n'
        + (
            f'private_key_file = "{q(str(state_dir / "site-private.key"))}"\n'
            if grant.site_private_key is not None
            else ""
        )
        + f'[printer]\nuri = "{q(grant.printer_uri)}"\n'
        f'[spool]\ndir = "{q(str(state_dir / "spool"))}"\n'
    )


def pair_and_configure(
    cloud_url: str,
    state_dir: Path,
    config_path: Path,
    *,
    name: str,
    show: Callable[[PairingCode], None],
    force: bool = False,
    sleep: Callable[[float], None] | None = None,
) -> PairingGrant:
    """Pair with the cloud at `cloud_url` and write the station's config; returns the grant."""
    if config_path.exists() and not force:
        raise StationPairError(f"{config_path} exists: this station is configured already")
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    identity = load_or_create_identity(state_dir / "station.key")
    grant = pair_station(cloud_url, identity, on_code=show, sleep=sleep or time.sleep)
    write_site_key(grant.site_key, state_dir / "site.key")
    if grant.site_private_key is not None:  # a zero-knowledge site
        write_site_key(grant.site_private_key, state_dir / "site-private.key")
    config_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(station_toml(grant, cloud_url, state_dir, name))
    return grant


def show_on_terminal(code: PairingCode) -> None:
    """Print the code as the station's pairing screen does."""
    screen = PairingScreen(code.user_code, code.fingerprint)
    for line in screen.lines():
        print(line)
    print(
        f"An admin runs: pullprint pair {code.user_code} --printer NAME --printer-uri URI "
        f"(the code expires in {int(code.expires_in_s) // 60} minutes)",
        file=sys.stderr,
    )
    sys.stdout.flush()
