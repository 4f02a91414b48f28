"""One event or one command in full, for the admin page: raw payload, error, history, links.

Read-only, in the caller's session.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.admin.operations import command_row, event_row
from bridge.admin.search import MAX_ID
from bridge.db.models import BridgeState, CommandDependency, InboxEvent, OutboxCommand

RECONCILE_KEY = "reconcile.last"


def pretty(value: Any) -> str:
    """JSON indented for reading; text that is not JSON as it is."""
    if isinstance(value, bytes):
        text = value.decode("utf-8", errors="replace")
        try:
            value = json.loads(text)
        except ValueError:
            return text
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def event_detail(session: Session, event_id: int) -> dict[str, Any] | None:
    if not 0 < event_id <= MAX_ID:
        return None
    row = session.get(InboxEvent, event_id)
    if row is None:
        return None
    commands = session.execute(
        select(OutboxCommand).where(OutboxCommand.inbox_event_id == event_id).order_by("id")
    ).scalars()
    return {
        **event_row(row),
        "processed_at": row.processed_at.isoformat() if row.processed_at else None,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
        "headers": pretty(row.headers),
        "body": pretty(row.body),
        "commands": [command_row(c) for c in commands],
    }


def command_detail(session: Session, command_id: int) -> dict[str, Any] | None:
    if not 0 < command_id <= MAX_ID:
        return None
    row = session.get(OutboxCommand, command_id)
    if row is None:
        return None
    dep = OutboxCommand.__table__.alias("dep")
    dependencies = session.execute(
        select(CommandDependency.depends_on_key, dep.c.id, dep.c.status)
        .outerjoin(dep, dep.c.idempotency_key == CommandDependency.depends_on_key)
        .where(CommandDependency.command_id == command_id)
        .order_by(CommandDependency.depends_on_key)
    ).all()
    times = ("created_at", "updated_at", "first_attempt_at", "next_attempt_at", "done_at")
    return {
        **command_row(row),
        **{name: _iso(getattr(row, name)) for name in times},
        "payload": pretty(row.payload),
        "meta": pretty(row.meta),
        "result_text": pretty(row.result) if row.result is not None else None,
        "dependencies": [
            {"key": key, "id": dep_id, "status": dep_status or "missing"}
            for key, dep_id, dep_status in dependencies
        ],
    }


def reconcile_last(session: Session) -> dict[str, Any] | None:
    """The last reconcile report, if one was stored (``bridge_state`` key ``reconcile.last``)."""
    row = session.get(BridgeState, RECONCILE_KEY)
    if row is None or not row.value:
        return None
    return {"at": row.updated_at.isoformat(), "text": pretty(row.value)}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
