"""Finding an event or a command by what an operator has at hand.

An order number, a Stripe id (``in_…``, ``ch_…``, ``evt_…``), a Facturation.pro invoice number or
id, an idempotency key: the text is looked for, case-insensitively, in the event's id, body and
error, and in the command's key, payload, result and error; a number also matches a row id or a
Facturation.pro id. The raw body and the JSON columns are read as text, so a search scans the
rows of the state filtered on: fine for an operator's page, not for a hot path.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Text, cast, false, func, literal, or_
from sqlalchemy.orm import Session

from bridge.db.models import InboxEvent, OutboxCommand

MAX_QUERY = 200
MAX_ID = 2**63 - 1  # the largest row id (BIGINT)


def _pattern(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _as_text(session: Session, column: Any, *, binary: bool = False) -> ColumnElement[str]:
    if session.get_bind().dialect.name == "sqlite":
        return cast(column, Text)
    if binary:  # bytea -> text that never fails on bytes that are not UTF-8
        return func.encode(column, literal("escape"))
    return cast(column, Text)


def _number(query: str) -> int | None:
    return int(query) if query.isdigit() and 0 < int(query) <= MAX_ID else None


def clean(query: str) -> str:
    return query.strip()[:MAX_QUERY]


def matches_event(session: Session, query: str) -> ColumnElement[bool]:
    texts = (InboxEvent.event_id, InboxEvent.status_reason)
    return _matches(
        query, (InboxEvent.id,), (*texts, _as_text(session, InboxEvent.body, binary=True))
    )


def matches_command(session: Session, query: str) -> ColumnElement[bool]:
    return _matches(
        query,
        (OutboxCommand.id, OutboxCommand.remote_id),
        (
            OutboxCommand.idempotency_key,
            OutboxCommand.last_error,
            _as_text(session, OutboxCommand.payload),
            _as_text(session, OutboxCommand.result),
        ),
    )


def _matches(query: str, ids: tuple[Any, ...], texts: tuple[Any, ...]) -> ColumnElement[bool]:
    """Any of ``ids`` equal to the query as a number, or any of ``texts`` containing it."""
    query = clean(query)
    if not query:
        return false()
    like, number = _pattern(query), _number(query)
    by_id = [column == number for column in ids] if number is not None else []
    return or_(*by_id, *(text.ilike(like, escape="\\") for text in texts))
