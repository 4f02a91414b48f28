"""Enqueue: the mapping stage's commands stored once under their idempotency key.

``INSERT … ON CONFLICT (idempotency_key) DO NOTHING``: mapping the same sale twice adds nothing.
Dependencies are stored by *key*, since the command depended on may not exist yet (a refund that
arrives before its order waits for the order's invoice). A command with ``only_if_refs_exist``
whose referenced commands are absent is stored cancelled, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bridge.db.models import CommandDependency, CommandStatus, OutboxCommand
from bridge.outbox.commands import Command

_PENDING = CommandStatus.PENDING.value


def jsonable(value: Any) -> Any:
    """``value`` with every ``Decimal`` as its exact string, for a JSON column."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Enqueued:
    inserted: int
    existing: int
    cancelled: int


def enqueue(
    session: Session,
    commands: Iterable[Command],
    *,
    now: datetime,
    inbox_event_id: int | None = None,
) -> Enqueued:
    """Store ``commands`` in the caller's transaction; a key already stored is left as it is."""
    dialect = session.get_bind().dialect.name
    ins: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
    inserted = existing = cancelled = 0
    for command in commands:
        deps = command.dependency_keys()
        status, reason = _PENDING, None
        if command.meta.get("only_if_refs_exist"):
            missing = _missing_keys(
                session, [ref.partition("#")[0] for ref in command.refs.values()]
            )
            if missing:
                status = CommandStatus.CANCELLED.value
                reason = f"skipped: referenced command(s) do not exist: {', '.join(missing)}"
        new_id = session.execute(
            ins(OutboxCommand)
            .values(
                idempotency_key=command.key,
                kind=command.kind.value,
                payload=jsonable(command.payload),
                refs=dict(command.refs),
                meta=jsonable(command.meta),
                credit_of=_credit_of(command),
                inbox_event_id=inbox_event_id,
                status=status,
                priority=int(command.priority),
                attempts=0,
                next_attempt_at=now,
                lease_token=0,
                outcome_unknown=False,
                last_error=reason,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(OutboxCommand.id)
        ).scalar()
        if new_id is None:
            existing += 1
            continue
        inserted += 1
        cancelled += status == CommandStatus.CANCELLED.value
        if deps:
            session.execute(
                ins(CommandDependency).on_conflict_do_nothing(),
                [{"command_id": new_id, "depends_on_key": key} for key in deps],
            )
    return Enqueued(inserted, existing, cancelled)


def _credit_of(command: Command) -> str | None:
    credit_of = command.meta.get("credit_of")
    return str(credit_of) if credit_of else None


def _missing_keys(session: Session, keys: list[str]) -> list[str]:
    if not keys:
        return []
    found = set(
        session.execute(
            select(OutboxCommand.idempotency_key).where(OutboxCommand.idempotency_key.in_(keys))
        ).scalars()
    )
    return [k for k in dict.fromkeys(keys) if k not in found]
