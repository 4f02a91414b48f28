"""The outbox: commands stored once under their idempotency key, claimed under a lease, fenced.

Life of a command (``CommandStatus``)::

    pending ──claim──> in_flight ──2xx──> done          (remote id stored; dependents become due)
       ^                  │ ├──5xx/timeout──> pending   (attempt consumed, backoff with jitter)
       │                  │ ├──429 / paused──> pending  (no attempt consumed)
       └──lease expired───┘ └──400/422, out of time──> dead (error kept; an operator may retry)
    cancelled: never needed (a credit note of an invoice already fully credited, an update of a
               customer never created), decided when it is delivered

- **Enqueue** (:mod:`bridge.outbox.enqueue`) stores a command once under its key.
- **Claim** is one ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``: due
  (pending and its time has come, or in flight with an expired lease), every dependency done, live
  before backfill. It sets ``in_flight``, the lease, ``leased_by`` and ``lease_token + 1``. On
  SQLite the engine's ``BEGIN IMMEDIATE`` serialises claims (one worker process).
- **Every outcome** is recorded with ``WHERE id = ? AND lease_token = ? AND status = 'in_flight'``:
  a worker whose lease expired and was claimed again can't overwrite the newer attempt.
- ``outcome_unknown`` is set in the database *before* a create is sent (see :meth:`Outbox.begin_send`),
  so a crash between sending and recording is seen by the next claim, which looks the object up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from bridge.db.models import (
    CommandDependency,
    CommandStatus,
    CustomerBinding,
    OutboxCommand,
    utcnow,
)
from bridge.logging import get_logger
from bridge.outbox.commands import CommandKind
from bridge.outbox.enqueue import jsonable
from bridge.outbox.pause import pause
from bridge.outbox.quota import QuotaLimiter
from bridge.outbox.retry import RetryPolicy

log = get_logger("bridge.outbox.queue")

Clock = Callable[[], datetime]
_OC: Table = OutboxCommand.__table__  # type: ignore[assignment]  # a declarative class's table is a Table
_DEP: Table = CommandDependency.__table__  # type: ignore[assignment]  # same
_DONE = CommandStatus.DONE.value
_PENDING = CommandStatus.PENDING.value
_IN_FLIGHT = CommandStatus.IN_FLIGHT.value


def _unmet_dependency() -> Any:
    """``SELECT 1`` for a dependency of the outer command row that is not done (or not there)."""
    dep_row = _OC.alias("dep")
    return (
        select(1)
        .select_from(_DEP)
        .where(
            _DEP.c.command_id == _OC.c.id,
            ~exists(
                select(1).where(
                    dep_row.c.idempotency_key == _DEP.c.depends_on_key,
                    dep_row.c.status == _DONE,
                )
            ),
        )
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    """A command held under a lease. ``lease_token`` fences every write about this attempt."""

    id: int
    key: str
    kind: CommandKind
    payload: dict[str, Any]
    refs: dict[str, str]
    meta: dict[str, Any]
    lease_token: int
    attempts: int
    first_attempt_at: datetime
    outcome_unknown: bool
    priority: int


class LeaseLostError(Exception):
    """The lease expired and another worker claimed the command: this attempt must stop."""


class Outbox:
    """Claims and records commands. One per worker; every method is its own short transaction."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        lease_seconds: float,
        clock: Clock = utcnow,
    ) -> None:
        self.sessions = sessions
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock

    # -- claiming ---------------------------------------------------------------------------------

    def claim(self, worker_id: str) -> Claimed | None:
        """Take the most urgent due command, or ``None``. One statement (see module docstring)."""
        now = self.clock()
        due = or_(
            and_(_OC.c.status == _PENDING, _OC.c.next_attempt_at <= now),
            and_(_OC.c.status == _IN_FLIGHT, _OC.c.lease_expires_at <= now),
        )
        candidate = (
            select(_OC.c.id)
            .where(due, ~exists(_unmet_dependency()))
            .order_by(_OC.c.priority, _OC.c.next_attempt_at, _OC.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        stmt = (
            update(_OC)
            .where(_OC.c.id == candidate)
            .values(
                status=_IN_FLIGHT,
                lease_token=_OC.c.lease_token + 1,
                lease_expires_at=now + self.lease,
                leased_by=worker_id,
                first_attempt_at=func.coalesce(_OC.c.first_attempt_at, now),
                updated_at=now,
            )
            .returning(
                _OC.c.id,
                _OC.c.idempotency_key,
                _OC.c.kind,
                _OC.c.payload,
                _OC.c.refs,
                _OC.c.meta,
                _OC.c.lease_token,
                _OC.c.attempts,
                _OC.c.first_attempt_at,
                _OC.c.outcome_unknown,
                _OC.c.priority,
            )
        )
        with self.sessions.begin() as session:
            row = session.execute(stmt).first()
        if row is None:
            return None
        return Claimed(
            id=row.id,
            key=row.idempotency_key,
            kind=CommandKind(row.kind),
            payload=dict(row.payload or {}),
            refs=dict(row.refs or {}),
            meta=dict(row.meta or {}),
            lease_token=row.lease_token,
            attempts=row.attempts,
            first_attempt_at=row.first_attempt_at,
            outcome_unknown=bool(row.outcome_unknown),
            priority=row.priority,
        )

    def next_due_in(self) -> float | None:
        """Seconds until a command may be due (0 if one may be now), ``None`` if none waits.

        Counts pending commands whose dependencies are done, and in-flight commands' lease expiry.
        """
        now = self.clock()
        with self.sessions() as session:
            pending = session.execute(
                select(func.min(_OC.c.next_attempt_at)).where(
                    _OC.c.status == _PENDING, ~exists(_unmet_dependency())
                )
            ).scalar()
            leased = session.execute(
                select(func.min(OutboxCommand.lease_expires_at)).where(
                    OutboxCommand.status == _IN_FLIGHT
                )
            ).scalar()
        times = [t for t in (pending, leased) if t is not None]
        if not times:
            return None
        return max(0.0, (min(times) - now).total_seconds())

    # -- during the attempt -----------------------------------------------------------------------

    def begin_send(
        self,
        c: Claimed,
        quota: QuotaLimiter | None,
        *,
        mark_unknown: bool,
        rate: tuple[datetime, int | None, int | None] | None = None,
        during: Callable[[Session], None] | None = None,
    ) -> float:
        """Before one API call: renew the lease, take one request from the quota and, for a create,
        set ``outcome_unknown`` — all in one transaction, so that the mark is durable before the
        request leaves. Returns ``0.0`` when the call may go, else the quota's wait (nothing
        changed). ``rate`` is the last answer's (time, limit, remaining), to re-sync the quota first.
        ``during`` runs in the same fenced transaction (the invoice sequence's turn); what it raises
        rolls everything back. Raises :class:`LeaseLostError` if another worker holds the command.
        """
        now = self.clock()
        with self.sessions.begin() as session:
            values: dict[str, Any] = {"lease_expires_at": now + self.lease, "updated_at": now}
            if mark_unknown:
                values["outcome_unknown"] = True
            if not self._fenced(session, c, values):
                raise LeaseLostError(c.key)
            if during is not None:
                during(session)
            if quota is not None:
                if rate is not None:
                    quota.observe(session, *rate)
                wait = quota.try_acquire(session, now)
                if wait > 0:
                    session.rollback()
                    return wait
        return 0.0

    def binding(self, source_key: str) -> int | None:
        with self.sessions() as session:
            row = session.get(CustomerBinding, source_key)
            return None if row is None else row.remote_id

    def referenced(self, keys: Iterable[str]) -> dict[str, tuple[str, int | None, dict[str, Any]]]:
        """Status, remote id and result of the commands keyed ``keys`` (those that exist)."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        with self.sessions() as session:
            rows = session.execute(
                select(
                    OutboxCommand.idempotency_key,
                    OutboxCommand.status,
                    OutboxCommand.remote_id,
                    OutboxCommand.result,
                ).where(OutboxCommand.idempotency_key.in_(wanted))
            ).all()
        return {r.idempotency_key: (r.status, r.remote_id, dict(r.result or {})) for r in rows}

    # -- outcomes (all fenced by the lease token) -------------------------------------------------

    def complete(
        self,
        c: Claimed,
        *,
        remote_id: int | None,
        result: dict[str, Any],
        binding_key: str | None = None,
        during: Callable[[Session], None] | None = None,
    ) -> bool:
        """The API confirmed the command: done, remote id kept, the customer bound if one.
        ``during`` runs in the same transaction when the lease still holds."""
        now = self.clock()
        with self.sessions.begin() as session:
            ok = self._fenced(
                session,
                c,
                {
                    "status": _DONE,
                    "remote_id": remote_id,
                    "result": jsonable(result),
                    "outcome_unknown": False,
                    "last_error": None,
                    "lease_expires_at": None,
                    "done_at": now,
                    "updated_at": now,
                },
            )
            if ok and binding_key and remote_id is not None:
                self._bind(session, binding_key, remote_id, now)
            if ok and during is not None:
                during(session)
            if not ok:
                session.rollback()
        return ok

    def retry_later(
        self,
        c: Claimed,
        *,
        wait_s: float,
        error: str,
        consume_attempt: bool,
        outcome_unknown: bool | None = None,
    ) -> bool:
        """Back to pending, due in ``wait_s``; ``consume_attempt`` is False for a 429 or a pause."""
        now = self.clock()
        values: dict[str, Any] = {
            "status": _PENDING,
            "next_attempt_at": now + timedelta(seconds=wait_s),
            "last_error": error[:2000],
            "lease_expires_at": None,
            "updated_at": now,
        }
        if consume_attempt:
            values["attempts"] = _OC.c.attempts + 1
        if outcome_unknown is not None:
            values["outcome_unknown"] = outcome_unknown
        with self.sessions.begin() as session:
            return self._fenced(session, c, values)

    def rate_limited(self, c: Claimed, quota: QuotaLimiter, retry_after: float | None) -> float:
        """A 429: every worker waits ``Retry-After`` (else the window's end); no attempt consumed."""
        now = self.clock()
        with self.sessions.begin() as session:
            wait = RetryPolicy.rate_limited(retry_after, quota.window_wait(session, now))
            quota.block(session, now, wait)
            self._fenced(
                session,
                c,
                {
                    "status": _PENDING,
                    "next_attempt_at": now + timedelta(seconds=wait),
                    "last_error": f"429 rate limited: waiting {wait:.1f} s",
                    "lease_expires_at": None,
                    "updated_at": now,
                    # a 429 proves the request was not processed: back to the mark it had before
                    "outcome_unknown": c.outcome_unknown,
                },
            )
        return wait

    def pause_delivery(self, c: Claimed, *, reason: str, worker_id: str) -> None:
        """A 401/403: pause every worker and put the command back, no attempt consumed."""
        now = self.clock()
        with self.sessions.begin() as session:
            pause(session, now, reason=reason, by=worker_id)
            self._fenced(
                session,
                c,
                {
                    "status": _PENDING,
                    "next_attempt_at": now,
                    "last_error": f"delivery paused: {reason}"[:2000],
                    "lease_expires_at": None,
                    "updated_at": now,
                    # a 401/403 proves the request was not processed: back to the earlier mark
                    "outcome_unknown": c.outcome_unknown,
                },
            )

    def cancel(self, c: Claimed, *, reason: str) -> bool:
        """Not needed after all (e.g. an update of a customer that was never created)."""
        now = self.clock()
        with self.sessions.begin() as session:
            return self._fenced(
                session,
                c,
                {
                    "status": CommandStatus.CANCELLED.value,
                    "last_error": reason[:2000],
                    "lease_expires_at": None,
                    "updated_at": now,
                },
            )

    def kill(
        self,
        c: Claimed,
        *,
        error: str,
        result: dict[str, Any] | None = None,
        during: Callable[[Session], None] | None = None,
    ) -> bool:
        """Dead: the API refused it or time ran out. Kept with the error for an operator."""
        now = self.clock()
        with self.sessions.begin() as session:
            ok = self._fenced(
                session,
                c,
                {
                    "status": CommandStatus.DEAD.value,
                    "last_error": error[:2000],
                    "result": jsonable(result) if result is not None else None,
                    "attempts": _OC.c.attempts + 1,
                    "lease_expires_at": None,
                    "updated_at": now,
                },
            )
            if ok and during is not None:
                during(session)
            return ok

    # -- internals --------------------------------------------------------------------------------

    def _fenced(self, session: Session, c: Claimed, values: dict[str, Any]) -> bool:
        result = session.execute(
            update(_OC)
            .where(
                _OC.c.id == c.id,
                _OC.c.lease_token == c.lease_token,
                _OC.c.status == _IN_FLIGHT,
            )
            .values(**values)
        )
        ok = getattr(result, "rowcount", 0) == 1
        if not ok:
            log.warning("outbox.lease_lost", command_id=c.id, key=c.key, lease_token=c.lease_token)
        return ok

    @staticmethod
    def _bind(session: Session, source_key: str, remote_id: int, now: datetime) -> None:
        dialect = session.get_bind().dialect.name
        ins: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
        stmt = ins(CustomerBinding).values(
            source_key=source_key, remote_id=remote_id, created_at=now, updated_at=now
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["source_key"],
                set_={"remote_id": stmt.excluded.remote_id, "updated_at": now},
            )
        )
