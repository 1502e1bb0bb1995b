"""The `pullprint` command: a thin argparse front over the programs' composition roots.

Each subcommand imports what it needs when it runs, so a station (installed without the cloud extra)
can run `pullprint station run` without FastAPI or SQLAlchemy present.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path


class CliError(Exception):
    """An error to show as one line, with exit code `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _cmd_demo(args: argparse.Namespace) -> int:
    from tools.demo import DemoOptions, run_demo

    return run_demo(
        DemoOptions(
            interactive=args.interactive,
            json_output=args.json,
            out_dir=Path(args.out),
        )
    )


def _cmd_cloud_serve(args: argparse.Namespace) -> int:
    from cloud.config import load_config
    from cloud.errors import CloudError
    from cloud.server import serve

    env = dict(_environ())
    if args.data_dir:
        env["PULLPRINT_DATA_DIR"] = str(args.data_dir)
    if args.tls:
        env["PULLPRINT_TLS"] = args.tls
    for name, value in (("CERT", args.tls_cert), ("KEY", args.tls_key)):
        if value:
            env[f"PULLPRINT_TLS_{name}_FILE"] = str(Path(value).resolve())
    try:
        config = load_config(Path(args.config) if args.config else None, env)
        if args.workers > 1:
            from cloud.workers import serve_workers

            serve_workers(config, args.host, args.port, args.workers)
        else:
            serve(config, args.host, args.port)
    except CloudError as exc:
        raise CliError(str(exc)) from exc
    return 0


def _cmd_cloud_init(args: argparse.Namespace) -> int:
    from cloud.config import generate_secrets

    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "secrets.toml"
    if path.exists():
        raise CliError(f"{path} exists already; refusing to replace the cloud's secrets")
    generate_secrets(path)
    print(f"wrote fresh random secrets to {path} (mode 0600); keep it out of backups you share")
    return 0


def _cmd_cloud_migrate(args: argparse.Namespace) -> int:
    from cloud.config import load_config
    from cloud.db import make_engine
    from cloud.errors import CloudError
    from cloud.migrate import current_revision, head_revision, upgrade

    env = dict(_environ())
    if args.data_dir:
        env["PULLPRINT_DATA_DIR"] = str(args.data_dir)
    try:
        config = load_config(Path(args.config) if args.config else None, env)
    except CloudError as exc:
        raise CliError(str(exc)) from exc
    engine = make_engine(config.database_url)
    try:
        before = current_revision(engine)
        head = head_revision()
        if args.check:
            # For deploy scripts: exit 1 when this code would migrate the database on start.
            print(f"database at {before or 'empty'}; code at {head}")
            return 0 if before == head else 1
        if before == head:
            print(f"database already at {head}; nothing to do")
            return 0
        upgrade(engine)
        print(f"migrated {before or 'empty database'} -> {current_revision(engine)}")
    finally:
        engine.dispose()
    return 0


def _cmd_station_run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from station.app import build_station
    from station.config import load_config
    from station.errors import StationError
    from station.first_start import pair_on_first_start, paired_drop_in
    from station.service import SystemdNotifier

    stopping = threading.Event()
    # systemd stops the service with SIGTERM: treat it like Ctrl-C so the station stops cleanly.
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    notifier = SystemdNotifier(_environ())
    try:
        # A station whose config names no station id pairs first, showing the code on its screen.
        pair_on_first_start(
            Path(args.config),
            dict(_environ()),
            state_dir=Path(args.state_dir),
            notifier=notifier,
            should_stop=stopping.is_set,
        )
        drop_ins = [paired_drop_in(Path(args.state_dir))]
        config = load_config(Path(args.config), dict(_environ()), drop_ins=drop_ins)
        station = build_station(config, notifier=notifier)
    except StationError as exc:
        raise CliError(str(exc)) from exc
    station.start()
    try:
        while not stopping.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        station.stop()
    return 0


def _cmd_station_pair(args: argparse.Namespace) -> int:
    from station.errors import StationError
    from tools.station_pair import StationPairError, pair_and_configure, show_on_terminal

    try:
        grant = pair_and_configure(
            args.cloud,
            Path(args.state_dir),
            Path(args.config),
            name=args.name,
            show=show_on_terminal,
            force=args.force,
        )
    except (StationError, StationPairError) as exc:
        raise CliError(str(exc)) from exc
    print(
        f"paired as station {grant.station_id} for printer {grant.printer_name!r}; "
        f"config written to {args.config}"
    )
    return 0


def _cmd_station_screens(args: argparse.Namespace) -> int:
    from hardware.display.base import DisplayMode
    from station.render import render
    from station.samples import sample_screens

    try:
        width, height = (int(n) for n in args.size.lower().split("x"))
    except ValueError as exc:
        raise CliError(f"--size must look like 320x240, not {args.size!r}", 2) from exc
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise CliError("--size must be between 16x16 and 4096x4096", 2)
    mode: DisplayMode = "1" if (args.mode or ("1" if height <= 64 else "RGB")) == "1" else "RGB"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "-hc" if args.high_contrast else ""
    for name, screen in sample_screens().items():
        path = out / f"{name}-{width}x{height}{suffix}.png"
        render(screen, (width, height), mode, high_contrast=args.high_contrast).save(path)
        print(path)
    return 0


def _cmd_submit(args: argparse.Namespace) -> int:
    from tools.submit import submit_file

    job = submit_file(
        args.cloud,
        args.token,
        Path(args.file),
        name=args.name,
        document_format=args.format,
        copies=args.copies,
    )
    print(
        f"submitted {job['name']!r}: job {job['id']}, {job['size_bytes']} bytes, held until "
        f"{job['expires_at']}"
    )
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from tools.bench import BenchOptions, run_bench

    return run_bench(
        BenchOptions(
            runs=args.runs,
            big_mb=args.big_mb,
            seed_users=args.seed_users,
            seed_jobs=args.seed_jobs,
            json_output=args.json,
            profile=args.profile,
            auth_seconds=args.auth_seconds,
        )
    )


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


# Modules that add subcommands of their own: each has `register(sub)` taking the subparsers
# object; it must import its heavy dependencies inside the command functions, not at the top.
_COMMAND_MODULES: tuple[str, ...] = (
    "tools.labels",
    "tools.flash",
    "tools.printer_cmd",
    "tools.admin",
    "tools.pair_cmd",
    "tools.image_cmd",
    "tools.bench_ipp",
    "tools.discover_cmd",
    "tools.bench_release",
    "tools.bench_station",
    "tools.infra_cmd",
    "tools.policy_cmd",
    "tools.bench_sweep",
    "tools.bench_heartbeat",
    "tools.tls_cmd",
    "tools.update_cmd",
    "tools.bench_throughput",
)


class _VersionAction(argparse.Action):
    """`--version`, looked up only when asked: importlib.metadata and its scan of the installed
    distributions cost every other command (the station's service first) about 30 ms."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(f"pullprint {_version()}")  # on stdout, as argparse's own version action
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pullprint")
    except PackageNotFoundError:  # a checkout that was never installed
        return "unknown"


# The subcommands defined here: running one of them needs none of `_COMMAND_MODULES`.
_BUILTIN_COMMANDS = frozenset({"demo", "cloud", "station", "submit", "bench"})


def build_parser(*, command_modules: bool = True) -> argparse.ArgumentParser:
    """The whole command tree; without `command_modules`, only the commands defined here.

    Importing the sixteen command modules costs a station about a third of its start-up time
    and several MB (cryptography, xml, zipfile, the imaging tools), for commands it never runs.
    """
    parser = argparse.ArgumentParser(prog="pullprint", description=__doc__.splitlines()[0])
    parser.add_argument("--traceback", action="store_true", help="show the full traceback on error")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    # The updater's self-check of a new slot asks this (station.slots).
    parser.add_argument("--version", action=_VersionAction, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="cloud + simulated station + virtual printer: one release")
    demo.add_argument(
        "--interactive",
        action="store_true",
        help="tap the badge and press the station's buttons from the keyboard",
    )
    demo.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    demo.add_argument("--out", default="demo-out", help="where to save every screen as PNG")
    demo.set_defaults(func=_cmd_demo)

    cloud = sub.add_parser("cloud", help="the cloud service").add_subparsers(
        dest="cloud_cmd", required=True
    )
    serve = cloud.add_parser("serve", help="run the cloud service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8631)
    serve.add_argument("--data-dir", help="database, blobs and secrets.toml live here")
    serve.add_argument("--config", help="a cloud.toml")
    serve.add_argument(
        "--tls",
        choices=["off", "self-signed", "files"],
        help="serve https:// and ipps:// (self-signed: a managed certificate in the data dir)",
    )
    serve.add_argument("--tls-cert", help="certificate (PEM, chain after it) to serve")
    serve.add_argument("--tls-key", help="its private key (PEM, unencrypted)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the port (one per core; SQLite or PostgreSQL)",
    )
    serve.set_defaults(func=_cmd_cloud_serve)
    init = cloud.add_parser("init", help="make fresh random secrets in DATA_DIR/secrets.toml")
    init.add_argument("--data-dir", required=True)
    init.set_defaults(func=_cmd_cloud_init)
    migrate = cloud.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("--data-dir", help="database, blobs and secrets.toml live here")
    migrate.add_argument("--config", help="a cloud.toml")
    migrate.add_argument(
        "--check", action="store_true", help="only report; exit 1 if a migration is pending"
    )
    migrate.set_defaults(func=_cmd_cloud_migrate)

    station = sub.add_parser("station", help="the release station").add_subparsers(
        dest="station_cmd", required=True
    )
    run = station.add_parser("run", help="run the station")
    run.add_argument("--config", default="/etc/pullprint/station.toml")
    run.add_argument(
        "--state-dir",
        default="/var/lib/pullprint",
        help="keys and spool of a station that pairs on first start",
    )
    run.set_defaults(func=_cmd_station_run)
    pair = station.add_parser("pair", help="pair this station with the cloud (shows a code)")
    pair.add_argument("--cloud", required=True, help="the cloud's base URL")
    pair.add_argument("--name", default=os.uname().nodename, help="the station's name")
    pair.add_argument("--state-dir", default="/var/lib/pullprint", help="keys and spool live here")
    pair.add_argument("--config", default="/etc/pullprint/station.toml", help="config to write")
    pair.add_argument("--force", action="store_true", help="replace an existing config")
    pair.set_defaults(func=_cmd_station_pair)
    screens = station.add_parser("screens", help="write every screen, with sample data, as PNG")
    screens.add_argument("--size", default="320x240", help="display size WxH (default 320x240)")
    screens.add_argument("--mode", choices=["1", "RGB"], help="default: 1 up to 64 px high")
    screens.add_argument("--high-contrast", action="store_true", help="large type, high contrast")
    screens.add_argument("--out", required=True, help="folder for the PNG files")
    screens.set_defaults(func=_cmd_station_screens)

    submit = sub.add_parser("submit", help="park a document in the secure queue")
    submit.add_argument("file")
    submit.add_argument("--cloud", required=True, help="the cloud's base URL")
    submit.add_argument("--token", required=True, help="your API token (ppu_...)")
    submit.add_argument("--name", help="document name (default: the file name)")
    submit.add_argument("--format", help="MIME type (default: guessed from the file name)")
    submit.add_argument("--copies", type=int, default=1)
    submit.set_defaults(func=_cmd_submit)

    bench = sub.add_parser("bench", help="latency and streaming benchmarks")
    bench.add_argument("--runs", type=int, default=200, help="taps and releases to time")
    bench.add_argument("--big-mb", type=int, default=200, help="size of the streaming job")
    bench.add_argument("--seed-users", type=int, default=10_000, help="other users in the database")
    bench.add_argument("--seed-jobs", type=int, default=100_000, help="other held jobs")
    bench.add_argument("--json", action="store_true")
    bench.add_argument(
        "--profile",
        choices=("embedded", "postgres"),
        default="embedded",
        help="storage: SQLite + files, or a private PostgreSQL + S3 server (latency only)",
    )
    bench.add_argument(
        "--auth-seconds", type=float, default=5.0, help="badge auth + list throughput run (0: off)"
    )
    bench.set_defaults(func=_cmd_bench)

    if command_modules:
        for module in _COMMAND_MODULES:
            try:
                loaded = importlib.import_module(module)
            except ImportError as exc:
                # A command whose extra is not installed (a station image has no cloud, bench
                # or test packages) must not take every other command down with it: it stays
                # listed and says what it needs.
                _unavailable(sub, module, exc)
                continue
            loaded.register(sub)
    return parser


def _unavailable(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], module: str, exc: ImportError
) -> None:
    name = module.removeprefix("tools.").removesuffix("_cmd").replace("_", "-")
    missing = exc.name or str(exc)

    def refuse(_args: argparse.Namespace) -> int:
        raise CliError(
            f"{name} needs {missing}, which is not installed here: "
            "pip install 'pullprint[all]' (or the extra that command belongs to)"
        )

    # No option prefix: whatever follows (`--seconds 5`) is taken as is, so the answer is the
    # missing package, not a usage error about options this placeholder does not know.
    parser = sub.add_parser(
        name, help=f"(unavailable here: needs {missing})", add_help=False, prefix_chars="\0"
    )
    parser.add_argument("rest", nargs="*")
    parser.set_defaults(func=refuse)


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` names: its first word that is not an option (none takes a value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pullprint` command."""
    words = sys.argv[1:] if argv is None else list(argv)
    # `pullprint station run` (the station's service) builds only the commands defined here;
    # anything else (help, a typo, a module's command) gets the whole tree and its messages.
    parser = build_parser(command_modules=_command_of(words) not in _BUILTIN_COMMANDS)
    args = parser.parse_args(words)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except CliError as exc:
        if args.traceback:
            raise
        print(f"pullprint: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.traceback:
            raise
        print(
            f"pullprint: {type(exc).__name__}: {exc} (run with --traceback for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: command modules raise
    # tools.cli.CliError, which a second copy of the class would not catch.
    from tools.cli import main as _main

    sys.exit(_main())
