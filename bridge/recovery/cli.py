"""``facturation-bridge backfill``, ``reconcile`` and ``after-restore``.

``backfill stripe|shopify --since YYYY-MM-DD [--restart]`` prints its result as JSON; ``reconcile
--since YYYY-MM-DD [--json] [--fix] [--source …]`` exits 0 when the books match, 1 when anything
was found; ``after-restore [--days N]`` marks a restored database's waiting commands (and, for N
days, every new one) to be looked up by ``api_id`` before they are created.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bridge.config import ConfigError, Settings

if TYPE_CHECKING:  # the commands import what they need when run: every CLI start stays fast
    from bridge.recovery.backfill import BackfillSource

EXIT_FOUND = 1


def _date(value: str) -> date:
    """``YYYY-MM-DD``, or ``Nd`` for N days before today (UTC), for runs from a timer."""
    if value.endswith("d") and value[:-1].isdigit():
        return datetime.now(UTC).date() - timedelta(days=int(value[:-1]))
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date like 2025-01-31, nor a number of days like 7d"
        ) from None


def stripe_source(settings: Settings, *, events: bool = True) -> BackfillSource:
    from bridge.mapping.files import all_mapping_files
    from bridge.recovery.stripe_api import StripeLists
    from bridge.recovery.stripe_backfill import StripeBackfill

    types = sorted(t for s, t in all_mapping_files(settings.mappings_dir) if s == "stripe")
    return StripeBackfill(StripeLists.from_settings(settings), types, use_events=events)


def shopify_source(settings: Settings) -> BackfillSource:
    from bridge.recovery.shopify_api import ShopifyAdmin
    from bridge.recovery.shopify_backfill import ShopifyBackfill

    return ShopifyBackfill(ShopifyAdmin.from_settings(settings), settings.shopify_shop_domain)


def _cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from bridge.recovery.backfill import run_backfill
    from bridge.runtime import Runtime

    source = (stripe_source if args.source == "stripe" else shopify_source)(settings)
    runtime = Runtime.open(settings)
    try:
        result = run_backfill(runtime, source, args.since, restart=args.restart)
    finally:
        runtime.close()
    print(json.dumps(result.as_dict()))
    return 0


def _reconcile_sources(args: argparse.Namespace, settings: Settings) -> list[BackfillSource]:
    wanted = args.source or [
        name
        for name, configured in (
            ("stripe", bool(settings.stripe_api_key.get_secret_value())),
            ("shopify", bool(settings.shopify_shop_domain)),
        )
        if configured
    ]
    if not wanted:
        raise ConfigError("STRIPE_API_KEY: set it (or SHOPIFY_SHOP_DOMAIN) to reconcile a source")
    # Stripe's objects as they stand, over the whole period (not its events)
    return [
        stripe_source(settings, events=False) if n == "stripe" else shopify_source(settings)
        for n in wanted
    ]


def _cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    from bridge.facturation.client import FacturationClient
    from bridge.recovery.reconcile import run_reconcile
    from bridge.runtime import Runtime

    settings.require_api()
    sources = _reconcile_sources(args, settings)
    runtime = Runtime.open(settings)
    client = FacturationClient.from_settings(settings)
    try:
        result = run_reconcile(runtime, sources, client, args.since, fix=args.fix)
    finally:
        client.close()
        runtime.close()
    if args.json:
        print(json.dumps(result["report"]))
    else:
        _print_summary(result)
    return EXIT_FOUND if any(result["counts"].values()) else 0


def _print_summary(result: dict[str, Any]) -> None:
    print(f"reconcile since {result['since']} ({result['ledger_calls']} ledger requests)")
    for name, count in result["counts"].items():
        print(f"  {name}: {count}")
        for entry in result["report"][name][:20]:
            print(f"    {json.dumps(entry)}")
    if "fixed" in result:
        print(f"  fixed: {result['fixed']} event(s) stored for the worker to invoice")


def _cmd_after_restore(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import update

    from bridge.db.models import CommandStatus, OutboxCommand, utcnow
    from bridge.db.state import put_state
    from bridge.outbox.commands import CommandKind
    from bridge.outbox.enqueue import LOOKUP_FIRST_KEY
    from bridge.runtime import Runtime

    creates = [
        CommandKind.ENSURE_CUSTOMER,
        CommandKind.CREATE_INVOICE,
        CommandKind.FULL_CREDIT_NOTE,
        CommandKind.PARTIAL_CREDIT_NOTE,
        CommandKind.CREATE_SETTLEMENT,
    ]
    runtime = Runtime.open(settings)
    now = utcnow()
    until = now + timedelta(days=args.days)
    try:
        with runtime.sessions.begin() as session:
            marked = session.execute(
                update(OutboxCommand)
                .where(
                    OutboxCommand.status.in_(
                        [CommandStatus.PENDING.value, CommandStatus.IN_FLIGHT.value]
                    ),
                    OutboxCommand.kind.in_([k.value for k in creates]),
                )
                .values(outcome_unknown=True, updated_at=now)
            )
            value = {"until": until.isoformat(), "restored_at": now.isoformat()}
            put_state(session, LOOKUP_FIRST_KEY, value, now)
    finally:
        runtime.close()
    count = int(getattr(marked, "rowcount", 0))
    print(json.dumps({"marked_commands": count, "lookup_first_until": until.isoformat()}))
    return 0


def add_recovery_commands(sub: Any) -> None:
    p = sub.add_parser(
        "backfill", help="store what a source's API holds since a date (missed webhooks)"
    )
    p.add_argument("source", choices=["stripe", "shopify"])
    p.add_argument(
        "--since",
        type=_date,
        required=True,
        help="first day, YYYY-MM-DD (UTC), or 7d for a week ago",
    )
    p.add_argument("--restart", action="store_true", help="ignore a stored cursor; start over")
    p.set_defaults(handler=_cmd_backfill)

    p = sub.add_parser("reconcile", help="compare the sources, the database and the ledger")
    p.add_argument(
        "--since",
        type=_date,
        required=True,
        help="first day, YYYY-MM-DD (UTC), or 7d for a week ago",
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument(
        "--fix", action="store_true", help="store missing sales and refunds for invoicing"
    )
    p.add_argument(
        "--source", action="append", choices=["stripe", "shopify"], help="default: those configured"
    )
    p.set_defaults(handler=_cmd_reconcile)

    p = sub.add_parser(
        "after-restore", help="after restoring the database: look up before creating"
    )
    p.add_argument(
        "--days", type=float, default=3.0, help="new commands looked up first (default 3)"
    )
    p.set_defaults(handler=_cmd_after_restore)
