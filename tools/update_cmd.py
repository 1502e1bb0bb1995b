"""`pullprint update`: signed station updates, for admins and for the station's updater.

An admin, on their own machine (the signing key never goes to the cloud)::

    pullprint update keygen --out ~/.config/pullprint/update.key     # once; .pub beside it
    pullprint image build ... --update-key ~/.config/pullprint/update.key.pub   # pinned
    pullprint update build --wheelhouse wheels/ --out pullprint-0.2.0.bundle \\
        --min-version 0.1.0 --key ~/.config/pullprint/update.key     # build + sign
    pullprint update verify pullprint-0.2.0.bundle --pub ~/.config/pullprint/update.key.pub
    export PULLPRINT_ADMIN_TOKEN=ppa_...
    pullprint update publish pullprint-0.2.0.bundle --cloud https://print.example.org
    pullprint update policy automatic --cloud https://print.example.org
    pullprint update stations --cloud https://print.example.org

On a station, `pullprint-update.service` runs `pullprint update run` (as root) from a timer;
`pullprint update status` prints the update part of the health report.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_KEYS = Path("/etc/pullprint-update-keys")
DEFAULT_ROOT = Path("/opt/pullprint")
DEFAULT_STATE = Path("/var/lib/pullprint-update")
TOKEN_ENV = "PULLPRINT_ADMIN_TOKEN"  # noqa: S105 - the variable's name, not a token


def _fail(message: str) -> Exception:
    from tools.cli import CliError  # noqa: PLC0415 - tools.cli imports this module

    return CliError(message)


def _passphrase(args: argparse.Namespace, *, confirm: bool = False) -> bytes | None:
    if not getattr(args, "passphrase", False):
        return None
    first = getpass.getpass("passphrase for the signing key: ")
    if confirm and getpass.getpass("again: ") != first:
        raise _fail("the passphrases differ")
    return first.encode("utf-8") or None


def _load_key(args: argparse.Namespace) -> Any:
    from station.errors import UpdateError  # noqa: PLC0415 - loaded only when used
    from station.update_bundle import load_private_key  # noqa: PLC0415

    path = Path(args.key)
    try:
        pem = path.read_bytes()
        return load_private_key(pem, _passphrase(args))
    except OSError as exc:
        raise _fail(f"{path}: {exc.strerror}") from exc
    except UpdateError as exc:
        raise _fail(f"{path}: {exc}") from exc


def _cmd_keygen(args: argparse.Namespace) -> int:
    from station.update_bundle import (  # noqa: PLC0415 - loaded only when used
        key_id,
        new_private_key,
        private_key_pem,
        public_key_text,
    )

    out = Path(args.out)
    pub = out.with_name(out.name + ".pub")
    if out.exists() or pub.exists():
        raise _fail(f"{out} or {pub} exists; refusing to replace a signing key")
    key = new_private_key()
    out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_key_pem(key, _passphrase(args, confirm=True)))
    pub.write_text(
        f"# PullPrint update key {key_id(key.public_key())}\n{public_key_text(key.public_key())}\n"
    )
    print(f"signing key: {out} (0600: keep it off the cloud and out of shared backups)")
    print(f"public key:  {pub} (key id {key_id(key.public_key())}; pin it in station images)")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from station.errors import UpdateError  # noqa: PLC0415 - loaded only when used
    from station.update_bundle import (  # noqa: PLC0415
        REQUIREMENTS,
        manifest_for,
        sign_manifest,
        write_bundle,
    )
    from tools.imaging.errors import ImagingError  # noqa: PLC0415
    from tools.imaging.wheelhouse import build_wheelhouse, inspect_wheelhouse  # noqa: PLC0415

    key = _load_key(args) if args.key else None
    checkout = Path(__file__).resolve().parent.parent
    out = Path(args.out)
    try:
        with tempfile.TemporaryDirectory(prefix="pullprint-bundle-") as temp:
            if args.build_wheelhouse:
                extra = Path(args.extra_wheels) if args.extra_wheels else None
                wheelhouse = build_wheelhouse(checkout, Path(temp) / "wheels", extra)
            else:
                wheelhouse = inspect_wheelhouse(Path(args.wheelhouse))
            requirements = Path(temp) / REQUIREMENTS
            requirements.write_text(wheelhouse.requirements, encoding="utf-8")
            files = {w.name: w for w in wheelhouse.wheels}
            files[REQUIREMENTS] = requirements
            version = wheelhouse.pullprint_version
            created = datetime.now(UTC).replace(microsecond=0)
            manifest = manifest_for(files.values(), version, args.min_version or version, created)
            data = manifest.to_bytes()
            signature = sign_manifest(data, key) if key is not None else None
            write_bundle(out, data, signature, files)
    except (ImagingError, UpdateError) as exc:
        raise _fail(str(exc)) from exc
    state = "signed" if signature else "unsigned: run `pullprint update sign`"
    print(f"{out}: version {version}, min_version {manifest.min_version}, "
          f"{len(files)} files, {out.stat().st_size} bytes ({state})")  # fmt: skip
    return 0


def _cmd_sign(args: argparse.Namespace) -> int:
    from station.errors import UpdateError  # noqa: PLC0415 - loaded only when used
    from station.update_bundle import key_id, sign_bundle  # noqa: PLC0415

    key = _load_key(args)
    bundle = Path(args.bundle)
    out = Path(args.out) if args.out else bundle
    temp = out.with_name(f".{out.name}.signing")
    try:
        manifest = sign_bundle(bundle, temp, key)
        temp.replace(out)
    except (UpdateError, OSError) as exc:
        temp.unlink(missing_ok=True)
        raise _fail(f"{bundle}: {exc}") from exc
    print(f"{out}: version {manifest.version} signed with key {key_id(key.public_key())}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from station.errors import UpdateError  # noqa: PLC0415 - loaded only when used
    from station.update_bundle import read_public_keys, verify_bundle  # noqa: PLC0415

    started = time.perf_counter()
    try:
        keys = read_public_keys(Path(args.pub).read_text(encoding="ascii"))
        manifest = verify_bundle(Path(args.bundle), keys)
    except OSError as exc:
        raise _fail(f"{exc.filename}: {exc.strerror}") from exc
    except UpdateError as exc:
        raise _fail(f"{args.bundle}: REFUSED: {exc}") from exc
    print(
        f"{args.bundle}: OK: version {manifest.version}, min_version {manifest.min_version}, "
        f"created {manifest.created:%Y-%m-%dT%H:%M:%SZ}, {len(manifest.files)} files verified"
    )
    # The same check a station makes before installing: its speed, for the figures.
    elapsed = time.perf_counter() - started
    mib = Path(args.bundle).stat().st_size / (1024 * 1024)
    print(f"checked {mib:.1f} MiB in {elapsed:.2f} s ({mib / max(elapsed, 1e-9):.0f} MiB/s)")
    return 0


# ---- the cloud's admin API ----


def _token(args: argparse.Namespace) -> str:
    if args.token_file:
        try:
            return Path(args.token_file).read_text(encoding="ascii").strip()
        except OSError as exc:
            raise _fail(f"{args.token_file}: {exc.strerror}") from exc
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise _fail(f"set {TOKEN_ENV} (or --token-file) to the site's admin token")
    return token


def _api(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    import requests  # noqa: PLC0415 - loaded only when used

    url = args.cloud.rstrip("/") + path
    headers = {"Authorization": f"Bearer {_token(args)}", **kwargs.pop("headers", {})}
    try:
        response = requests.request(method, url, headers=headers, timeout=(10, 300), **kwargs)
    except requests.RequestException as exc:
        raise _fail(f"cannot reach {args.cloud} ({type(exc).__name__})") from exc
    if response.status_code >= 400:
        try:
            problem = response.json()
            detail = f"{problem.get('code')}: {problem.get('detail')}"
        except ValueError:
            detail = response.text[:200]
        raise _fail(f"{method} {path}: HTTP {response.status_code} {detail}")
    return response.json() if response.content else None


def _cmd_publish(args: argparse.Namespace) -> int:
    bundle = Path(args.bundle)
    try:
        size = bundle.stat().st_size
        with bundle.open("rb") as fh:
            body = _api(
                args,
                "POST",
                "/api/v1/admin/updates",
                data=fh,
                headers={"Content-Type": "application/x-tar", "Content-Length": str(size)},
            )
    except OSError as exc:
        raise _fail(f"{bundle}: {exc.strerror}") from exc
    print(f"published version {body['version']} ({body['size']} bytes, sha256 {body['sha256']})")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    body = _api(args, "GET", "/api/v1/admin/updates")
    for b in body["bundles"]:
        print(
            f"{b['version']:<16} min {b['min_version']:<12} {b['size']:>11} B  {b['published_at']}"
        )
    return 0


def _cmd_withdraw(args: argparse.Namespace) -> int:
    _api(args, "DELETE", f"/api/v1/admin/updates/{args.version}")
    print(f"withdrew version {args.version}")
    return 0


def _cmd_policy(args: argparse.Namespace) -> int:
    if args.policy is None:
        body = _api(args, "GET", "/api/v1/admin/updates/policy")
    else:
        payload = {"policy": args.policy, "target_version": args.target}
        body = _api(args, "PUT", "/api/v1/admin/updates/policy", json=payload)
    target = body.get("target_version") or "the highest published version"
    print(f"policy: {body['policy']} (offering {target})")
    return 0


def _cmd_stations(args: argparse.Namespace) -> int:
    body = _api(args, "GET", "/api/v1/admin/updates/stations")
    for s in body["stations"]:
        print(
            f"{s['station_id']}  {s['state']:<12} running {s['current_version'] or '-':<10} "
            f"offered {s['available_version'] or '-':<10} {s['reported_at']}  "
            f"{s['last_error'] or ''}"
        )
    return 0


# ---- the station's updater ----


def _cmd_run(args: argparse.Namespace) -> int:
    from station.config import load_config  # noqa: PLC0415 - loaded only when used
    from station.errors import StationError, UpdateError  # noqa: PLC0415
    from station.service_manager import SystemdService  # noqa: PLC0415
    from station.signing import SignatureAuth, load_identity  # noqa: PLC0415
    from station.slots import SlotLayout  # noqa: PLC0415
    from station.update_client import UpdateClient  # noqa: PLC0415
    from station.updates import Updater, UpdaterSettings, load_keys  # noqa: PLC0415

    state_dir = Path(args.state)
    if Path(args.etc, "read-only-root").exists():
        # Slots on an overlay root would live in RAM and vanish at the next boot.
        raise _fail("updates are not supported on a read-only root yet: re-flash the station")
    try:
        config = load_config(Path(args.config))
        keys = load_keys(Path(args.keys), require_root=not args.allow_non_root_keys)
        if config.cloud.station_id is None or config.cloud.key_file is None:
            raise _fail("the station is not paired")
        auth = SignatureAuth(load_identity(config.cloud.key_file), config.cloud.station_id)
        client = UpdateClient(config.cloud.url, auth, timeout_s=config.cloud.timeout_s)
        updater = Updater(
            SlotLayout(Path(args.root)),
            state_dir,
            keys,
            client,
            SystemdService(args.unit),
            settings=UpdaterSettings(
                ready_timeout_s=args.ready_timeout, settle_s=args.settle, max_crashes=args.crashes
            ),
        )
        state = updater.run(force=args.apply)
    except UpdateError as exc:
        raise _fail(str(exc)) from exc
    except StationError as exc:
        raise _fail(str(exc)) from exc
    print(f"update: {state}")
    return 0 if state not in ("refused", "failed", "rolled-back") else 1


def _cmd_status(args: argparse.Namespace) -> int:
    from station.updates import read_health  # noqa: PLC0415 - loaded only when used

    print(json.dumps(read_health(Path(args.state)), indent=1))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `pullprint update ...`."""
    update = sub.add_parser("update", help="signed station updates").add_subparsers(
        dest="update_cmd", required=True
    )

    keygen = update.add_parser("keygen", help="make the admin's Ed25519 signing key (+ .pub)")
    keygen.add_argument("--out", required=True, help="the private key file (0600)")
    keygen.add_argument("--passphrase", action="store_true", help="encrypt it (asks)")
    keygen.set_defaults(func=_cmd_keygen)

    build = update.add_parser("build", help="make a bundle from a wheelhouse")
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--wheelhouse", help="wheels: pullprint's and its dependencies")
    source.add_argument(
        "--build-wheelhouse", action="store_true", help="build it for aarch64 (needs PyPI)"
    )
    build.add_argument("--extra-wheels", help="with --build-wheelhouse: wheels PyPI lacks")
    build.add_argument("--out", required=True, help="the bundle file to write")
    build.add_argument(
        "--min-version",
        help="stations that install this refuse anything older from then on (default: this "
        "bundle's version)",
    )
    build.add_argument("--key", help="sign with this key right away")
    build.add_argument("--passphrase", action="store_true", help="the key is encrypted (asks)")
    build.set_defaults(func=_cmd_build)

    sign = update.add_parser("sign", help="sign a bundle with the admin's key")
    sign.add_argument("bundle")
    sign.add_argument("--key", required=True)
    sign.add_argument("--out", help="default: sign in place")
    sign.add_argument("--passphrase", action="store_true", help="the key is encrypted (asks)")
    sign.set_defaults(func=_cmd_sign)

    verify = update.add_parser("verify", help="check a bundle as a station would")
    verify.add_argument("bundle")
    verify.add_argument("--pub", required=True, help="public key file (ed25519:..., one a line)")
    verify.set_defaults(func=_cmd_verify)

    def cloud_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--cloud", required=True, help="the cloud's base URL")
        p.add_argument("--token-file", help=f"the admin token (default: ${TOKEN_ENV})")

    publish = update.add_parser("publish", help="upload a signed bundle to the site")
    publish.add_argument("bundle")
    cloud_args(publish)
    publish.set_defaults(func=_cmd_publish)

    listing = update.add_parser("list", help="the site's published bundles")
    cloud_args(listing)
    listing.set_defaults(func=_cmd_list)

    withdraw = update.add_parser("withdraw", help="stop offering a version")
    withdraw.add_argument("version")
    cloud_args(withdraw)
    withdraw.set_defaults(func=_cmd_withdraw)

    policy = update.add_parser("policy", help="show or set the site's update policy")
    policy.add_argument("policy", nargs="?", choices=["off", "notify", "automatic"])
    policy.add_argument("--target", help="offer this version instead of the highest")
    cloud_args(policy)
    policy.set_defaults(func=_cmd_policy)

    stations = update.add_parser("stations", help="each station's last update report")
    cloud_args(stations)
    stations.set_defaults(func=_cmd_stations)

    run = update.add_parser("run", help="on a station (root): poll, and install per policy")
    run.add_argument("--config", default="/etc/pullprint/station.toml")
    run.add_argument("--keys", default=str(DEFAULT_KEYS), help="the pinned update keys")
    run.add_argument("--root", default=str(DEFAULT_ROOT), help="where slots/ and current are")
    run.add_argument("--state", default=str(DEFAULT_STATE), help="the updater's own state")
    run.add_argument("--etc", default="/etc/pullprint", help=argparse.SUPPRESS)
    run.add_argument("--unit", default="pullprint-station.service")
    run.add_argument("--apply", action="store_true", help="install under `notify` too")
    run.add_argument("--ready-timeout", type=float, default=120.0, help="seconds to READY=1")
    run.add_argument("--settle", type=float, default=30.0, help="seconds it must then stay up")
    run.add_argument("--crashes", type=int, default=2, help="restarts that fail the update")
    run.add_argument("--allow-non-root-keys", action="store_true", help=argparse.SUPPRESS)
    run.set_defaults(func=_cmd_run)

    status = update.add_parser("status", help="the update part of the station's health report")
    status.add_argument("--state", default=str(DEFAULT_STATE))
    status.set_defaults(func=_cmd_status)
