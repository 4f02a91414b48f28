"""The ``facturation-bridge`` command line.

``serve`` runs web + a supervised worker child on the embedded SQLite (migrating it first); ``web`` and
``worker`` run them apart (the Procfile's processes); ``migrate`` upgrades the schema. Configuration
errors print one line naming the variable and exit with status 2; so do missing or invalid mapping
files (the line names the file), for the three commands that run: ``serve``, ``web``, ``worker``.
``migrate`` and the admin commands print one line naming the (masked) database and why, and exit
with status 3, when the database does not answer.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from bridge.config import ConfigError, Settings, load_settings
from bridge.db.outage import database_command
from bridge.logging import configure_logging, get_logger

EXIT_CONFIG = 2
WORKER_CHILD_NICENESS = 10
log = get_logger("bridge.cli")

Handler = Callable[[argparse.Namespace, Settings], int]


def _settings() -> Settings:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _require_mappings(settings: Settings) -> None:
    """Refuse to start without valid mapping files: every event would be ignored, or fail."""
    from bridge.mapping.engine import MappingConfigError, MappingEngine

    try:
        MappingEngine.load(settings, network=False)
    except MappingConfigError as exc:
        raise ConfigError(f"mappings: {exc}") from None


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    settings.require_api()
    _require_mappings(settings)
    return _run_web(args, settings, auto_migrate=not args.no_migrate, with_worker=True)


def cmd_web(args: argparse.Namespace, settings: Settings) -> int:
    _require_mappings(settings)
    return _run_web(args, settings, auto_migrate=False, with_worker=False)


def _run_web(
    args: argparse.Namespace, settings: Settings, *, auto_migrate: bool, with_worker: bool
) -> int:
    import uvicorn

    from bridge.app import create_app
    from bridge.process.server import (
        SPARE_FILES,
        ShutdownGuard,
        raise_open_files_limit,
        uvicorn_options,
    )

    options = uvicorn_options(settings, args.limit_concurrency)
    raise_open_files_limit(options["limit_concurrency"] + SPARE_FILES)
    app = create_app(settings, auto_migrate=auto_migrate, with_worker=with_worker)
    # Everything imported so far lives as long as the process: take it out of the collector's
    # sight, so that a full collection no longer pauses every request in flight for tens of ms.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        ShutdownGuard(app),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=args.access_log,
        server_header=False,
        **options,
    )
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    settings.require_api()
    _require_mappings(settings)
    from bridge.outbox.worker import run_worker
    from bridge.runtime import Runtime

    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("worker.stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if args.parent_pid is not None:  # serve's child: it must not outlive serve
        from bridge.process.lifeline import die_with_parent

        die_with_parent(args.parent_pid, stop)
        # Senders wait on the web process (Shopify gives up after 5 s); deliveries can wait a few
        # milliseconds. On a small machine the web process gets the CPU first.
        os.nice(WORKER_CHILD_NICENESS)
    runtime = Runtime.open(settings)
    try:
        run_worker(runtime, stop, worker_id=args.worker_id)
    finally:
        runtime.close()
    return 0


@database_command
def cmd_migrate(_args: argparse.Namespace, settings: Settings) -> int:
    from bridge.db import make_engine, migrate
    from bridge.db.migrate import head_revision

    engine = make_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    log.info("db.migrated", revision=head_revision())
    return 0


def cmd_check_config(_args: argparse.Namespace, settings: Settings) -> int:
    for key, value in settings.masked().items():
        print(f"{key}={value}")
    try:
        settings.require_api()
    except ConfigError as exc:
        print(f"warning: {exc}", file=sys.stderr)
    return 0


def _add_web_options(parser: argparse.ArgumentParser, default_host: str) -> None:
    parser.add_argument(
        "--host", default=default_host, help=f"bind address (default {default_host})"
    )
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--access-log", action="store_true", help="log every HTTP request")
    parser.add_argument(
        "--limit-concurrency",
        type=int,
        default=None,
        help="answer 503 beyond this many open connections (default: BRIDGE_HTTP_MAX_CONNECTIONS)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facturation-bridge",
        description="Stripe and Shopify sales into French invoices in Facturation.pro, exactly once.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "serve", help="web + worker (a supervised child process): the embedded default"
    )
    _add_web_options(p, "127.0.0.1")
    p.add_argument("--no-migrate", action="store_true", help="do not migrate the database first")
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("web", help="the webhook receiver and admin API only")
    _add_web_options(p, "127.0.0.1")
    p.set_defaults(handler=cmd_web)

    p = sub.add_parser("worker", help="deliver outbox commands to Facturation.pro")
    p.add_argument("--worker-id", default=None, help="name in logs and leases (default host:pid)")
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)  # serve's child
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("migrate", help="upgrade the database schema to this version")
    p.set_defaults(handler=cmd_migrate)

    p = sub.add_parser("check-config", help="print the effective configuration, secrets masked")
    p.set_defaults(handler=cmd_check_config)

    from bridge.admin.api import add_admin_commands
    from bridge.mapping.cli import add_mapping_commands
    from bridge.recovery.cli import add_recovery_commands
    from bridge.watch.setup import add_alert_commands

    add_mapping_commands(sub)
    add_admin_commands(sub)
    add_recovery_commands(sub)
    add_alert_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        settings = _settings()
        return handler(args, settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
