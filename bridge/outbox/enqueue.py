"""Enqueue: the mapping stage's commands stored once under their idempotency key.

``INSERT … ON CONFLICT (idempotency_key) DO NOTHING``: mapping the same sale twice adds nothing.
Dependencies are stored by *key*, since the command depended on may not exist yet (a refund that
arrives before its order waits for the order's invoice, a cancellation mapped before its sale).

Nothing is decided here about whether a command is still needed: what exists at enqueue time depends
on the order in which events were mapped (several workers map in parallel; Shopify does not promise
delivery order), so such decisions are taken when the command is delivered, under its lease. A
cancellation waits for its invoice like any credit note; whether it is then sent is the credit
policy's decision (:mod:`bridge.outbox.credit_policy`).

Recovered commands: those of an inbox event stored by a backfill or by reconcile's ``--fix`` (its
stored headers carry ``x-bridge-origin``), or enqueued with ``recovered=True``, may describe a sale
already in Facturation.pro (a webhook received before a database restore, a document made by an
earlier run). They are stored with ``outcome_unknown`` set, so that delivery looks each one up by
``api_id`` before creating it, and at :attr:`Priority.BACKFILL`, after live sales. After a
database restore (``facturation-bridge after-restore``), until ``recovery.lookup_first_until`` in
``bridge_state``, *every* command is looked up before it is created: a sale's second event may
arrive after the restore while its first one, and the document, came before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bridge.db.models import CommandDependency, CommandStatus, InboxEvent, OutboxCommand
from bridge.db.state import get_state
from bridge.outbox.commands import Command, Priority

_PENDING = CommandStatus.PENDING.value
# Stored on an inbox event that came from a backfill (or reconcile --fix), not from a webhook.
ORIGIN_HEADER = "x-bridge-origin"
# In bridge_state after a restore: {"until": iso8601}; until then every command is looked up first.
LOOKUP_FIRST_KEY = "recovery.lookup_first_until"


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


def enqueue(
    session: Session,
    commands: Iterable[Command],
    *,
    now: datetime,
    inbox_event_id: int | None = None,
    recovered: bool | None = None,
) -> Enqueued:
    """Store ``commands`` in the caller's transaction; a key already stored is left as it is.

    ``recovered`` (by default: whether the inbox event came from a backfill) stores them to be
    looked up before they are created, after live sales (see the module docstring).
    """
    if recovered is None:
        recovered = inbox_event_id is not None and _from_backfill(session, inbox_event_id)
    look_up_first = recovered or _after_restore(session, now)
    dialect = session.get_bind().dialect.name
    ins: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
    inserted = existing = 0
    for command in commands:
        deps = command.dependency_keys()
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
                status=_PENDING,
                priority=max(int(command.priority), Priority.BACKFILL)
                if recovered
                else int(command.priority),
                attempts=0,
                next_attempt_at=now,
                lease_token=0,
                outcome_unknown=look_up_first,
                last_error=None,
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
        if deps:
            session.execute(
                ins(CommandDependency).on_conflict_do_nothing(),
                [{"command_id": new_id, "depends_on_key": key} for key in deps],
            )
    return Enqueued(inserted, existing)


def _from_backfill(session: Session, inbox_event_id: int) -> bool:
    # The mapping stage holds this row in the session already: no query in the common case.
    row = session.get(InboxEvent, inbox_event_id)
    return row is not None and bool((row.headers or {}).get(ORIGIN_HEADER))


def _after_restore(session: Session, now: datetime) -> bool:
    until = (get_state(session, LOOKUP_FIRST_KEY) or {}).get("until")
    return bool(until) and datetime.fromisoformat(str(until)) > now


def _credit_of(command: Command) -> str | None:
    credit_of = command.meta.get("credit_of")
    return str(credit_of) if credit_of else None
