"""What an operator can see and do: status, failed events, dead commands, replay, retry, pause.

Shared by the admin HTTP API, the admin page and the ``facturation-bridge`` admin commands; every function runs in
the caller's session (the caller commits). Nothing here calls Facturation.pro.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from bridge.admin.search import MAX_ID, clean, matches_command, matches_event
from bridge.db.models import (
    CommandDependency,
    CommandStatus,
    EventStatus,
    InboxEvent,
    OutboxCommand,
)
from bridge.db.state import get_state
from bridge.outbox.liveness import workers_status
from bridge.outbox.pause import pause, paused, resume
from bridge.outbox.quota import QuotaLimiter
from bridge.watch.conditions import ENDPOINTS_KEY

BULK_LIMIT = 1000  # rows one "replay all" or "retry all" acts on


def status(
    session: Session,
    now: datetime,
    quota: QuotaLimiter | None = None,
    *,
    worker_dead_after: float | None = None,
) -> dict[str, Any]:
    """Counts by state, the pause flag, the quota's use, the oldest pending command's age and,
    given ``worker_dead_after``, the workers alive and dead and the claims of dead ones."""
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
        "webhook_endpoints": get_state(session, ENDPOINTS_KEY),
    }
    if quota is not None:
        out["quota"] = quota.usage(session, now).as_dict()
    if worker_dead_after is not None:
        out["workers"] = workers_status(session, now, worker_dead_after)
    return out


def _filtered(
    session: Session,
    model: type[InboxEvent] | type[OutboxCommand],
    matches: Callable[[Session, str], ColumnElement[bool]],
    state: str,
    query: str,
) -> Select[Any]:
    """Rows of ``model`` in ``state`` (any when empty) that ``matches`` the search ``query``."""
    stmt = select(model)
    if state:
        stmt = stmt.where(model.status == state)
    if clean(query):
        stmt = stmt.where(matches(session, query))
    return stmt


def _events_query(session: Session, state: str, query: str) -> Select[Any]:
    return _filtered(session, InboxEvent, matches_event, state, query)


def _commands_query(session: Session, state: str, query: str) -> Select[Any]:
    return _filtered(session, OutboxCommand, matches_command, state, query)


def event_row(r: InboxEvent) -> dict[str, Any]:
    return {
        "id": r.id,
        "source": r.source,
        "event_id": r.event_id,
        "event_type": r.event_type,
        "status": r.status,
        "reason": r.status_reason,
        "attempts": r.attempts,
        "received_at": r.received_at.isoformat(),
    }


def command_row(r: OutboxCommand) -> dict[str, Any]:
    return {
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


def list_events(
    session: Session, state: str, limit: int = 100, *, query: str = "", newest_first: bool = False
) -> list[dict[str, Any]]:
    """Stored events in ``state`` (every state if empty) matching ``query`` (see search.py)."""
    order = InboxEvent.id.desc() if newest_first else InboxEvent.id
    stmt = _events_query(session, state, query).order_by(order).limit(limit)
    return [event_row(r) for r in session.execute(stmt).scalars()]


def list_commands(
    session: Session, state: str, limit: int = 100, *, query: str = "", newest_first: bool = False
) -> list[dict[str, Any]]:
    """Outbox commands in ``state`` (every state if empty) matching ``query`` (see search.py)."""
    order = OutboxCommand.id.desc() if newest_first else OutboxCommand.id
    stmt = _commands_query(session, state, query).order_by(order).limit(limit)
    return [command_row(r) for r in session.execute(stmt).scalars()]


def replay_matching(
    session: Session, state: str, query: str, now: datetime, limit: int = BULK_LIMIT
) -> int:
    """Replay every event the list shows for this filter (at most ``limit``); how many were."""
    stmt = _events_query(session, state, query).with_only_columns(InboxEvent.id)
    ids = session.execute(stmt.order_by(InboxEvent.id).limit(limit)).scalars().all()
    return sum(replay_event(session, i, now) for i in ids)


def retry_matching(
    session: Session, state: str, query: str, now: datetime, limit: int = BULK_LIMIT
) -> int:
    """Retry every dead command among those the list shows for this filter; how many were."""
    stmt = _commands_query(session, state, query).with_only_columns(OutboxCommand.id)
    stmt = stmt.where(OutboxCommand.status == CommandStatus.DEAD.value)
    ids = session.execute(stmt.order_by(OutboxCommand.id).limit(limit)).scalars().all()
    return sum(retry_command(session, i, now) for i in ids)


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
