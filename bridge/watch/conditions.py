"""What is wrong right now, read from the database: each a :class:`Condition` with a stable key.

=====================  =================================================================
``dead_commands``      commands gone dead (refused by the API, or out of time): a human acts
``total_mismatch``     invoices left as drafts: Facturation.pro's total is not what was paid
``failed_events``      stored webhooks that could not be mapped
``delivery_paused``    a 401/403 paused every delivery (credentials, firm access)
``backlog``            a command pending longer than ``BRIDGE_ALERT_BACKLOG_SECONDS``
``reconcile``          the last reconcile found discrepancies
``silence:<source>``   no webhook from a configured source for ``BRIDGE_SILENCE_HOURS``
``endpoint:<source>``  the provider says our webhook endpoint is missing, disabled or incomplete
=====================  =================================================================

A condition's ``key`` stays the same while the situation lasts, so an alert is said once (and
again only after the repeat interval), and its end can be told too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from bridge.config import Settings
from bridge.db.models import CommandStatus, EventStatus, InboxEvent, OutboxCommand
from bridge.db.state import get_state
from bridge.outbox.finalise import MISMATCH
from bridge.outbox.pause import paused

RECONCILE_KEY = "reconcile.last"
ENDPOINTS_KEY = "webhook_endpoints"  # written by the endpoint checks (bridge.watch.endpoints)


@dataclass(frozen=True, slots=True)
class Condition:
    key: str  # stable while the situation lasts: "dead_commands", "silence:stripe"…
    title: str
    detail: str


@dataclass(frozen=True, slots=True)
class WatchLimits:
    backlog_s: float  # a pending command older than this is a backlog
    silence: timedelta | None  # None: silence is not watched
    sources: tuple[str, ...]  # the sources with webhook secrets configured

    @classmethod
    def from_settings(cls, settings: Settings) -> WatchLimits:
        sources = tuple(
            name
            for name, secrets in (
                ("stripe", settings.stripe_webhook_secrets),
                ("shopify", settings.shopify_webhook_secrets),
            )
            if secrets
        )
        hours = settings.silence_hours
        return cls(
            backlog_s=settings.alert_backlog_seconds,
            silence=timedelta(hours=hours) if hours > 0 else None,
            sources=sources,
        )


def _count(session: Session, condition: ColumnElement[bool]) -> int:
    return int(session.execute(select(func.count()).where(condition)).scalar_one())


def current_conditions(
    session: Session, now: datetime, limits: WatchLimits, watching_since: datetime
) -> list[Condition]:
    """Every condition that holds at ``now``. ``watching_since``: when watching began (silence
    from a source that never sent anything counts from then)."""
    found: list[Condition] = []
    dead = _count(session, OutboxCommand.status == CommandStatus.DEAD.value)
    if dead:
        found.append(
            Condition(
                "dead_commands",
                f"{dead} command(s) dead",
                "Facturation.pro refused them or they ran out of time; see "
                "`facturation-bridge commands --status dead`, fix the cause, then retry them.",
            )
        )
    mismatched = session.execute(
        select(OutboxCommand.idempotency_key, OutboxCommand.last_error)
        .where(
            OutboxCommand.status == CommandStatus.DEAD.value,
            OutboxCommand.last_error.startswith(MISMATCH),
        )
        .order_by(OutboxCommand.id)
    ).all()
    if mismatched:
        found.append(
            Condition(
                "total_mismatch",
                f"total mismatch: {len(mismatched)} invoice(s) left as drafts, not finalised",
                "; ".join(f"{key}: {error}" for key, error in mismatched[:5])
                + (f"; and {len(mismatched) - 5} more" if len(mismatched) > 5 else ""),
            )
        )
    failed = _count(session, InboxEvent.status == EventStatus.FAILED.value)
    if failed:
        found.append(
            Condition(
                "failed_events",
                f"{failed} webhook event(s) failed to map",
                "See `facturation-bridge events --status failed` for each error; replay after fixing.",
            )
        )
    pause = paused(session)
    if pause is not None:
        found.append(
            Condition(
                "delivery_paused",
                "delivery to Facturation.pro is paused",
                f"{pause.get('reason') or 'paused'} (since {pause.get('since')}, by {pause.get('by')})",
            )
        )
    oldest = session.execute(
        select(func.min(OutboxCommand.created_at)).where(
            OutboxCommand.status == CommandStatus.PENDING.value
        )
    ).scalar()
    if oldest is not None:
        age = (now - _aware(oldest, now)).total_seconds()
        if age > limits.backlog_s:
            found.append(
                Condition(
                    "backlog",
                    f"the oldest pending command waits for {age / 60:.0f} min",
                    f"over the {limits.backlog_s / 60:.0f} min allowed "
                    "(BRIDGE_ALERT_BACKLOG_SECONDS): quota, outage or a stopped worker?",
                )
            )
    report = get_state(session, RECONCILE_KEY)
    counts = (report or {}).get("counts") or {}
    findings = {k: int(v) for k, v in counts.items() if isinstance(v, int) and v}
    if findings:
        summary = ", ".join(f"{k} {v}" for k, v in sorted(findings.items()))
        found.append(
            Condition(
                f"reconcile:{report.get('at') if report else ''}",
                "the last reconcile found discrepancies",
                f"{summary}; see `facturation-bridge reconcile --json`.",
            )
        )
    if limits.silence is not None:
        found.extend(_silences(session, now, limits, watching_since))
    found.extend(_endpoints(session))
    return found


def _endpoints(session: Session) -> list[Condition]:
    checked = (get_state(session, ENDPOINTS_KEY) or {}).get("sources") or {}
    return [
        Condition(
            f"endpoint:{source}:{result.get('state')}",
            f"the {source} webhook endpoint is {result.get('state')}",
            f"{result.get('detail')}. Nothing from {source} reaches the bridge until it is fixed "
            "(docs/webhooks.md); then backfill the gap.",
        )
        for source, result in sorted(checked.items())
        if result.get("state") not in ("ok", "unchecked")
    ]


def _silences(
    session: Session, now: datetime, limits: WatchLimits, watching_since: datetime
) -> list[Condition]:
    assert limits.silence is not None  # noqa: S101 -- checked by the caller
    last = dict(
        session.execute(
            select(InboxEvent.source, func.max(InboxEvent.received_at)).group_by(InboxEvent.source)
        ).all()
    )
    out = []
    for source in limits.sources:
        seen = last.get(source)
        since = _aware(seen, now) if seen is not None else watching_since
        if now - since > limits.silence:
            hours = (now - since).total_seconds() / 3600
            heard = f"last webhook {since.isoformat()}" if seen else "no webhook received yet"
            out.append(
                Condition(
                    f"silence:{source}",
                    f"no {source} webhook for {hours:.0f} h",
                    f"{heard}. Is the endpoint still registered and enabled at {source}? "
                    "Run a backfill for the gap once it is fixed.",
                )
            )
    return out


def _aware(value: datetime, now: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=now.tzinfo)
