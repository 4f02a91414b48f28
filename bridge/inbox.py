"""The inbox: every verified delivery stored raw, once, in one short transaction.

``UNIQUE(source, event_id)`` is the deduplication: the insert is ``INSERT … ON CONFLICT DO
NOTHING RETURNING id`` on both SQLite and PostgreSQL, so two identical deliveries racing produce
exactly one row, and the loser reads the winner's row back (its id and status) in the same
transaction. The caller answers 2xx only after :meth:`Inbox.store` has returned, that is, after the
commit.

SQLite allows one writer at a time. Its busy handler waits by sleeping in growing steps (up to
100 ms), which turns contention between our own threads into latency spikes; so writers of this
process queue on a lock instead, bounded by the same busy timeout, and the busy handler only deals
with other processes (the worker, the mapping stage).

Errors: :class:`InboxUnavailableError` when the database can't take the row within the timeout
(unreachable, locked, read-only, …): the caller answers 503 and the sender retries.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from bridge.db.models import EventStatus, InboxEvent, utcnow
from bridge.sources import Delivery

_TABLE = InboxEvent.__table__


class InboxUnavailableError(Exception):
    """The event could not be stored (database unreachable, locked past the timeout, …)."""


@dataclass(frozen=True, slots=True)
class Stored:
    """The inbox row holding a delivery; ``duplicate`` if it was already there."""

    inbox_id: int
    status: EventStatus
    duplicate: bool


class Inbox:
    """Stores deliveries through ``engine``. One per process; safe to share between threads."""

    def __init__(self, engine: Engine, *, busy_timeout: float) -> None:
        self._engine = engine
        self._busy_timeout = busy_timeout
        dialect = engine.dialect.name
        self._insert: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
        self._write_lock = threading.Lock() if dialect == "sqlite" else None

    def store(
        self,
        delivery: Delivery,
        status: EventStatus,
        reason: str | None = None,
        received_at: datetime | None = None,
    ) -> Stored:
        """Insert the delivery unless ``(source, event_id)`` is already stored; commit; say which."""
        lock = self._write_lock
        if lock is not None and not lock.acquire(timeout=self._busy_timeout):
            raise InboxUnavailableError(f"database busy for more than {self._busy_timeout} s")
        try:
            return self._store(delivery, status, reason, received_at or utcnow())
        except SQLAlchemyError as exc:
            raise InboxUnavailableError(f"{type(exc).__name__}: {_first_line(exc)}") from exc
        finally:
            if lock is not None:
                lock.release()

    def _store(
        self, delivery: Delivery, status: EventStatus, reason: str | None, received_at: datetime
    ) -> Stored:
        insert = (
            self._insert(_TABLE)
            .values(
                source=delivery.source.value,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                received_at=received_at,
                headers=delivery.headers,
                body=delivery.body,
                status=status.value,
                status_reason=reason,
                attempts=0,
            )
            .on_conflict_do_nothing(index_elements=["source", "event_id"])
            .returning(_TABLE.c.id)
        )
        with self._engine.begin() as conn:
            new_id = conn.execute(insert).scalar()
            if new_id is not None:
                return Stored(int(new_id), status, duplicate=False)
            existing = conn.execute(
                select(_TABLE.c.id, _TABLE.c.status).where(
                    _TABLE.c.source == delivery.source.value,
                    _TABLE.c.event_id == delivery.event_id,
                )
            ).one()
            return Stored(int(existing.id), EventStatus(existing.status), duplicate=True)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
