"""Building the watch from settings, and the ``facturation-bridge alerts`` commands."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from typing import Any

from bridge.config import ConfigError, Settings
from bridge.db.models import utcnow
from bridge.runtime import Runtime
from bridge.watch.alerts import AppriseNotifier, Notifier, Watch
from bridge.watch.conditions import WatchLimits
from bridge.watch.endpoints import check_endpoints


def notifier_from(settings: Settings) -> Notifier | None:
    """The configured notifier, or ``None`` (alerts are then only logged)."""
    if not settings.alert_urls:
        return None
    try:
        return AppriseNotifier(settings.alert_urls)
    except ValueError as exc:
        raise ConfigError(f"BRIDGE_ALERT_URLS: {exc}") from None


def build_watch(runtime: Runtime) -> Watch:
    settings = runtime.settings
    return Watch(
        runtime.sessions,
        notifier_from(settings),
        WatchLimits.from_settings(settings),
        every_s=settings.alert_interval_seconds,
        repeat=timedelta(seconds=settings.alert_repeat_seconds),
        clock=utcnow,
        check_endpoints=lambda: check_endpoints(settings),
        endpoints_every_s=settings.endpoint_check_seconds,
    )


def _cmd_test(_args: argparse.Namespace, settings: Settings) -> int:
    notifier = notifier_from(settings)
    if notifier is None:
        raise ConfigError("BRIDGE_ALERT_URLS: not set, so there is nowhere to send alerts")
    ok = notifier.send(
        "test alert",
        "If you read this, the bridge's alerts reach you.",
        level="info",
    )
    print("sent" if ok else "not sent: see the log line above for the reason")
    return 0 if ok else 1


def _cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    runtime = Runtime.open(settings)
    try:
        watch = build_watch(runtime)
        with runtime.sessions.begin() as session:
            sent = watch.check(session, utcnow())
    finally:
        runtime.close()
    rows = [{"key": m.key, "title": m.title, "level": m.level} for m in sent]
    print(json.dumps(rows, indent=2) if args.json else "\n".join(r["title"] for r in rows))
    return 0


def add_alert_commands(sub: Any) -> None:
    p = sub.add_parser("alerts", help="send a test alert, or check and alert now")
    al = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = al.add_parser("test", help="send a test notification to BRIDGE_ALERT_URLS")
    q.set_defaults(handler=_cmd_test)
    q = al.add_parser("check", help="check every condition now and send what is due")
    q.add_argument("--json", action="store_true", help="print what was sent as JSON")
    q.set_defaults(handler=_cmd_check)
