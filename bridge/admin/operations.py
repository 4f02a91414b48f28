"""What an operator can see and do: status, failed events, dead commands, replay, retry, pause.

Shared by the admin HTTP API and the ``facturation-bridge`` admin commands; every function runs in
the caller's session (the caller commits). Nothing here calls Facturation.pro.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from bridge.db.models import (
    CommandDependency,
    CommandStatus,
    EventStatus,
    InboxEvent,
    OutboxCommand,
)
from bridge.outbox.pause import pause, paused, resume
from bridge.outbox.quota import QuotaLimiter

MAX_ID = 2**63 - 1


def status(session: Session, now: datetime, quota: QuotaLimiter | None = None) -> dict[str, Any]:
    """Counts by state, the pause flag, the quota's use and the oldest pending command's age."""
    events = dict(
        session.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status)).all()
    )
    commands = dict(
        session.execute(
            select(OutboxCommand.status, func.count()).group_by(OutboxCommand.status)
        ).all()
    )
    oldest = session.execute(
        select(func.min(OutboxCommand.created_at)).where(
            OutboxCommand.status.in_([CommandStatus.PENDING.value, CommandStatus.IN_FLIGHT.value])
        )
    ).scalar()
    dep = OutboxCommand.__table__.alias("dep")
    blocked = session.execute(
        select(func.count())
        .select_from(OutboxCommand)
        .where(
            OutboxCommand.status == CommandStatus.PENDING.value,
            exists(
                select(1).where(
                    CommandDependency.command_id == OutboxCommand.id,
                    dep.c.idempotency_key == CommandDependency.depends_on_key,
                    dep.c.status.in_([CommandStatus.DEAD.value, CommandStatus.CANCELLED.value]),
                )
            ),
        )
    ).scalar_one()
    never_arrived = session.execute(
        select(func.count(func.distinct(OutboxCommand.id)))
        .join(CommandDependency, CommandDependency.command_id == OutboxCommand.id)
        .where(
            OutboxCommand.status == CommandStatus.PENDING.value,
            ~exists(select(1).where(dep.c.idempotency_key == CommandDependency.depends_on_key)),
        )
    ).scalar_one()
    out: dict[str, Any] = {
        "events": {s.value: int(events.get(s.value, 0)) for s in EventStatus},
        "commands": {s.value: int(commands.get(s.value, 0)) for s in CommandStatus},
        "commands_blocked_by_dead_dependency": int(blocked),
        # e.g. a refund whose sale never arrived; dead after BRIDGE_DEPENDENCY_WAIT_SECONDS
        "commands_waiting_for_a_missing_dependency": int(never_arrived),
        "oldest_pending_age_s": round((now - oldest).total_seconds(), 3) if oldest else None,
        "delivery_paused": paused(session),
    }
    if quota is not None:
        out["quota"] = quota.usage(session, now).as_dict()
    return out


def list_events(session: Session, state: str, limit: int = 100) -> list[dict[str, Any]]:
    rows = session.execute(
        select(InboxEvent).where(InboxEvent.status == state).order_by(InboxEvent.id).limit(limit)
    ).scalars()
    return [
        {
            "id": r.id,
            "source": r.source,
            "event_id": r.event_id,
            "event_type": r.event_type,
            "status": r.status,
            "reason": r.status_reason,
            "attempts": r.attempts,
            "received_at": r.received_at.isoformat(),
        }
        for r in rows
    ]


def list_commands(session: Session, state: str, limit: int = 100) -> list[dict[str, Any]]:
    rows = session.execute(
        select(OutboxCommand)
        .where(OutboxCommand.status == state)
        .order_by(OutboxCommand.id)
        .limit(limit)
    ).scalars()
    return [
        {
            "id": r.id,
            "key": r.idempotency_key,
            "kind": r.kind,
            "status": r.status,
            "attempts": r.attempts,
            "last_error": r.last_error,
            "outcome_unknown": r.outcome_unknown,
            "remote_id": r.remote_id,
            "result": r.result,
            "inbox_event_id": r.inbox_event_id,
        }
        for r in rows
    ]


def replay_event(session: Session, inbox_event_id: int, now: datetime) -> bool:
    """Put a stored event back to ``received`` so the stage maps it again (harmless if mapped:
    its commands are keyed), or one waiting to be retried back to due now. ``False`` if there is
    no such event or it is already due."""
    if not 0 < inbox_event_id <= MAX_ID:
        return False
    result = session.execute(
        update(InboxEvent)
        .where(
            InboxEvent.id == inbox_event_id,
            or_(
                InboxEvent.status != EventStatus.RECEIVED.value,
                InboxEvent.next_attempt_at.is_not(None),
            ),
        )
        .values(
            status=EventStatus.RECEIVED.value,
            status_reason=None,
            processed_at=now,
            next_attempt_at=None,
        )
    )
    return getattr(result, "rowcount", 0) == 1


def retry_command(session: Session, command_id: int, now: datetime) -> bool:
    """A dead command back to pending, due now, with a fresh give-up horizon. Its outcome-unknown
    mark is kept, so it is looked up before being sent again."""
    if not 0 < command_id <= MAX_ID:
        return False
    result = session.execute(
        update(OutboxCommand)
        .where(and_(OutboxCommand.id == command_id, OutboxCommand.status == "dead"))
        .values(
            status=CommandStatus.PENDING.value,
            next_attempt_at=now,
            first_attempt_at=None,
            updated_at=now,
        )
    )
    return getattr(result, "rowcount", 0) == 1


def pause_delivery(session: Session, now: datetime, *, reason: str, by: str) -> None:
    pause(session, now, reason=reason, by=by)


def resume_delivery(session: Session, now: datetime, *, by: str) -> bool:
    return resume(session, now, by=by)
