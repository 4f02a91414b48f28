"""The inbox: every verified delivery stored raw, once, in one short transaction.

``UNIQUE(source, event_id)`` is the deduplication: the insert is ``INSERT … ON CONFLICT DO
NOTHING RETURNING id`` on both SQLite and PostgreSQL, so two identical deliveries racing produce
exactly one row, and the loser reads the winner's row back (its id and status) in the same
transaction. The caller answers 2xx only after :meth:`Inbox.store` has returned, that is, after the
commit.

On PostgreSQL the insert runs in autocommit: being one statement it is one transaction, committed
(and flushed to the WAL) when it returns, and it saves two round trips per batch.

SQLite allows one writer at a time. Its busy handler waits by sleeping in growing steps (up to
100 ms), which turns contention between our own threads into latency spikes; so writers of this
process queue on a lock instead, bounded by the same busy timeout, and the busy handler only deals
with other processes (the worker, the mapping stage).

Errors: :class:`InboxUnavailableError` when the database can't take the row within the timeout
(unreachable, locked, read-only, …): the caller answers 503 and the sender retries.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from bridge.db.engine import LOCK_POLL_OPTION
from bridge.db.models import EventStatus, InboxEvent, utcnow
from bridge.inbound.sources import Delivery

_TABLE = InboxEvent.__table__


class InboxUnavailableError(Exception):
    """The event could not be stored (database unreachable, locked past the timeout, …)."""


@dataclass(frozen=True, slots=True)
class Stored:
    """The inbox row holding a delivery; ``duplicate`` if it was already there."""

    inbox_event_id: int
    status: EventStatus
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Entry:
    """A delivery to store, with the status it gets if it is new (and why)."""

    delivery: Delivery
    status: EventStatus
    reason: str | None = None


class Inbox:
    """Stores deliveries through ``engine``. One per process; safe to share between threads."""

    def __init__(self, engine: Engine, *, busy_timeout: float) -> None:
        self._engine = engine
        self._busy_timeout = busy_timeout
        dialect = engine.dialect.name
        self._insert: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
        self._write_lock = threading.Lock() if dialect == "sqlite" else None
        # On PostgreSQL the single INSERT is its own transaction: no BEGIN and COMMIT round trips.
        # (On SQLite the engine's own BEGIN IMMEDIATE must be paired with its COMMIT.)
        # On SQLite the writer polls for the write lock instead of sleeping in SQLite's busy
        # handler: webhooks get the lock first, the worker process waits (see bridge.db.engine).
        self._writer = (
            engine.execution_options(**{LOCK_POLL_OPTION: True})
            if dialect == "sqlite"
            else engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    def store(
        self,
        delivery: Delivery,
        status: EventStatus,
        reason: str | None = None,
        received_at: datetime | None = None,
    ) -> Stored:
        """Insert the delivery unless ``(source, event_id)`` is already stored; commit; say which."""
        return self.store_many([Entry(delivery, status, reason)], received_at)[0]

    def store_many(
        self, entries: Sequence[Entry], received_at: datetime | None = None
    ) -> list[Stored]:
        """Store several deliveries in one transaction (one commit); one result per entry, in order.

        An entry whose key is already stored, or repeats an earlier entry's key, is a duplicate
        of that row. All or nothing: on error nothing is stored and
        :class:`InboxUnavailableError` is raised.
        """
        if not entries:
            return []
        lock = self._write_lock
        if lock is not None and not lock.acquire(timeout=self._busy_timeout):
            raise InboxUnavailableError(f"database busy for more than {self._busy_timeout} s")
        try:
            return self._store_many(entries, received_at or utcnow())
        except SQLAlchemyError as exc:
            raise InboxUnavailableError(f"{type(exc).__name__}: {_first_line(exc)}") from exc
        finally:
            if lock is not None:
                lock.release()

    def _store_many(self, entries: Sequence[Entry], received_at: datetime) -> list[Stored]:
        rows = [
            {
                "source": e.delivery.source.value,
                "event_id": e.delivery.event_id,
                "event_type": e.delivery.event_type,
                "received_at": received_at,
                "headers": e.delivery.headers,
                "body": e.delivery.body,
                "status": e.status.value,
                "status_reason": e.reason,
                "attempts": 0,
            }
            for e in entries
        ]
        insert = (
            self._insert(_TABLE)
            .on_conflict_do_nothing(index_elements=["source", "event_id"])
            .returning(_TABLE.c.id, _TABLE.c.source, _TABLE.c.event_id)
        )
        with self._writer.begin() as conn:
            if len(rows) == 1:
                inserted = conn.execute(insert.values(rows[0])).all()
            else:
                inserted = conn.execute(insert, rows).all()
            new_ids = {(r.source, r.event_id): int(r.id) for r in inserted}
            keys = {_key(e) for e in entries}
            existing: dict[tuple[str, str], tuple[int, EventStatus]] = {}
            if missing := keys - new_ids.keys():
                found = conn.execute(
                    select(_TABLE.c.id, _TABLE.c.source, _TABLE.c.event_id, _TABLE.c.status).where(
                        tuple_(_TABLE.c.source, _TABLE.c.event_id).in_(sorted(missing))
                    )
                )
                existing = {
                    (r.source, r.event_id): (int(r.id), EventStatus(r.status)) for r in found
                }
        results: list[Stored] = []
        first: dict[tuple[str, str], Stored] = {}
        for entry in entries:
            key = _key(entry)
            if key in first:  # the same key twice in this batch: the first one's row
                results.append(Stored(first[key].inbox_event_id, first[key].status, duplicate=True))
                continue
            if key in new_ids:
                stored = Stored(new_ids[key], entry.status, duplicate=False)
            else:
                inbox_event_id, status = existing[key]
                stored = Stored(inbox_event_id, status, duplicate=True)
            first[key] = stored
            results.append(stored)
        return results


def _key(entry: Entry) -> tuple[str, str]:
    return (entry.delivery.source.value, entry.delivery.event_id)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
