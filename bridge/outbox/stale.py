"""Nothing waits forever: a command whose dependency never comes goes dead, with the reason.

A command is claimed only once every command it depends on is done. A refund of a sale that never
reached the bridge (a test order, an event not subscribed to), or an invoice whose customer went
dead, would otherwise wait silently. :func:`expire_waiting` kills every pending command older than
``BRIDGE_DEPENDENCY_WAIT_SECONDS`` (7 days by default) that still has an unmet dependency, naming
each dependency and its state; the worker runs it now and then. Dead commands show in ``status``
and ``dead``, and an operator may retry them once the dependency exists.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bridge.db.models import CommandDependency, CommandStatus, OutboxCommand
from bridge.logging import get_logger

log = get_logger("bridge.outbox.stale")

_PENDING = CommandStatus.PENDING.value
_DONE = CommandStatus.DONE.value


def expire_waiting(
    sessions: sessionmaker[Session], now: datetime, max_wait: timedelta
) -> dict[str, str]:
    """Kill the commands that waited longer than ``max_wait`` for a dependency; key -> reason."""
    dep = OutboxCommand.__table__.alias("dep")
    with sessions.begin() as session:
        rows = session.execute(
            select(
                OutboxCommand.id,
                OutboxCommand.idempotency_key,
                CommandDependency.depends_on_key,
                dep.c.status,
            )
            .join(CommandDependency, CommandDependency.command_id == OutboxCommand.id)
            .outerjoin(dep, dep.c.idempotency_key == CommandDependency.depends_on_key)
            .where(
                OutboxCommand.status == _PENDING,
                OutboxCommand.updated_at < now - max_wait,  # untouched since enqueued or retried
                (dep.c.status.is_(None)) | (dep.c.status != _DONE),
            )
            .order_by(OutboxCommand.id)
        ).all()
        waiting: dict[int, tuple[str, list[str]]] = {}
        for command_id, key, depends_on, status in rows:
            what = f"{depends_on} ({status or 'never arrived'})"
            waiting.setdefault(command_id, (key, []))[1].append(what)
        expired: dict[str, str] = {}
        days = max_wait.total_seconds() / 86400
        for command_id, (key, missing) in waiting.items():
            reason = (
                f"waited more than {days:g} days for {', '.join(missing)}: gave up "
                "(BRIDGE_DEPENDENCY_WAIT_SECONDS); retry it once that exists"
            )
            done = session.execute(
                update(OutboxCommand)
                .where(OutboxCommand.id == command_id, OutboxCommand.status == _PENDING)
                .values(status=CommandStatus.DEAD.value, last_error=reason[:2000], updated_at=now)
            )
            if getattr(done, "rowcount", 0) == 1:
                expired[key] = reason
                log.error("outbox.dependency_expired", key=key, reason=reason)
    return expired
