"""The mapping stage: stored inbox events -> outbox commands, in one transaction per event.

An event's commands and its new status (``mapped`` / ``ignored`` / ``failed``) commit together, so
a crash leaves the event ``received`` (mapped again, harmlessly: commands are keyed) or fully
mapped, never half. A mapping failure marks the event ``failed`` with the error on the row; after a
fix, ``facturation-bridge events replay ID`` puts it back to ``received``. Nothing is lost. A
passing failure (an exception with ``retryable = True``, e.g. the Stripe API unreachable during
enrichment) keeps the event ``received`` and tries it again later, on the outbox's backoff policy
(:class:`bridge.outbox.retry.RetryPolicy`: full jitter under a ceiling of 10 s, doubling, at most
1 hour), until ``BRIDGE_RETRY_GIVE_UP_SECONDS`` after its receipt; then it is ``failed`` like any
other.

Events are taken oldest first with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers
stage in parallel without mapping one event twice at the same time. On SQLite (one writer at a
time) the mapping, which may call Stripe for enrichment, runs outside any transaction, and its
result is recorded only if the event is still ``received``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, sessionmaker

from bridge.db.models import EventStatus, InboxEvent, utcnow
from bridge.inbound.events import InboundEvent, Source
from bridge.inbound.sources import shopify as shopify_source
from bridge.inbound.sources import stripe as stripe_source
from bridge.logging import get_logger
from bridge.outbox.commands import Command
from bridge.outbox.enqueue import enqueue
from bridge.outbox.retry import Action, RetryPolicy

log = get_logger("bridge.mapping.stage")

RETRY_BASE_SECONDS = 10.0  # the first wait's ceiling; it doubles with each passing failure
RETRY_MAX_DELAY_SECONDS = 3600.0


class MappingResult(Protocol):
    """What the mapping engine returns for one event (``bridge.mapping.engine.MappingOutcome``)."""

    @property
    def commands(self) -> Sequence[Command]: ...
    @property
    def skipped(self) -> str | None: ...


class Mapper(Protocol):
    """The mapping engine's one method the stage uses; raises for an unmappable event."""

    def map_event(self, event: InboundEvent) -> MappingResult: ...


def _next_received(now: datetime) -> Select[Any]:
    return (
        select(InboxEvent)
        .where(
            InboxEvent.status == EventStatus.RECEIVED.value,
            or_(InboxEvent.next_attempt_at.is_(None), InboxEvent.next_attempt_at <= now),
        )
        .order_by(InboxEvent.id)
        .limit(1)
    )


def to_inbound(row: InboxEvent) -> InboundEvent:
    """The stored row as the event the mapping reads. ``ValueError`` if the body is unusable."""
    if row.source == Source.STRIPE.value:
        return stripe_source.parse(row.body, row.received_at, inbox_event_id=row.id)
    if row.source == Source.SHOPIFY.value:
        return shopify_source.parse(row.body, dict(row.headers or {}), row.received_at, row.id)
    raise ValueError(f"unknown source {row.source!r}")


class Stage:
    """Maps ``received`` inbox events. One per worker; each :meth:`run_once` is short."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        mapper: Mapper,
        *,
        clock: Callable[[], datetime] = utcnow,
        batch: int = 20,
        give_up_after: timedelta = timedelta(days=3),
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.sessions = sessions
        self.policy = policy or RetryPolicy(
            base_seconds=RETRY_BASE_SECONDS,
            max_delay_seconds=RETRY_MAX_DELAY_SECONDS,
            give_up_seconds=give_up_after.total_seconds(),
        )
        self.rng = rng or random.Random()  # noqa: S311 -- jitter, not cryptography
        self.mapper = mapper
        self.clock = clock
        self.batch = batch
        bind = sessions.kw.get("bind")
        self._sqlite = bind is not None and bind.dialect.name == "sqlite"

    def run_once(self) -> int:
        """Map up to ``batch`` events, one transaction each; return how many were taken."""
        done = 0
        for _ in range(self.batch):
            if not self._one():
                break
            done += 1
        return done

    def _one(self) -> bool:
        if not self._sqlite:
            # PostgreSQL: the row lock only keeps other workers off this event; the web process
            # stores new events meanwhile, so mapping inside the transaction blocks nobody.
            with self.sessions.begin() as session:
                row = session.execute(
                    _next_received(self.clock()).with_for_update(skip_locked=True)
                )
                found = row.scalar_one_or_none()
                if found is None:
                    return False
                self._apply(session, found, self._run(found))
            return True
        # SQLite: one writer at a time, so map (which may call Stripe) outside any transaction,
        # then record the result only if the event is still waiting.
        with self.sessions() as session:
            waiting = session.execute(_next_received(self.clock())).scalar_one_or_none()
        if waiting is None:
            return False
        result = self._run(waiting)
        with self.sessions.begin() as session:
            current = session.get(InboxEvent, waiting.id)
            if current is not None and current.status == EventStatus.RECEIVED.value:
                self._apply(session, current, result)
        return True

    def _run(self, row: InboxEvent) -> MappingResult | Exception:
        try:
            return self.mapper.map_event(to_inbound(row))
        except Exception as exc:  # any failure to map keeps the event, failed, replayable
            return exc

    def _apply(self, session: Session, row: InboxEvent, outcome: MappingResult | Exception) -> None:
        now = self.clock()
        row.attempts += 1
        row.processed_at = now
        if isinstance(outcome, Exception) and self._retry_later(row, outcome, now):
            return
        if isinstance(outcome, Exception):
            exc = outcome
            row.status = EventStatus.FAILED.value
            row.status_reason = f"{type(exc).__name__}: {exc}"[:4000]
            log.warning(
                "stage.failed",
                inbox_event_id=row.id,
                event_type=row.event_type,
                error=row.status_reason,
                exc_info=exc
                if not isinstance(exc, ValueError) and type(exc).__name__ != "MappingError"
                else None,
            )
            return
        if outcome.skipped is not None:
            row.status = EventStatus.IGNORED.value
            row.status_reason = outcome.skipped
            log.info("stage.ignored", inbox_event_id=row.id, reason=outcome.skipped)
            return
        try:
            with session.begin_nested():
                stored = enqueue(session, outcome.commands, now=now, inbox_event_id=row.id)
        except Exception as exc:  # e.g. a payload the database can't store: keep it, failed
            row.status = EventStatus.FAILED.value
            row.status_reason = f"could not store its commands: {type(exc).__name__}: {exc}"[:4000]
            log.exception("stage.enqueue_failed", inbox_event_id=row.id, event_type=row.event_type)
            return
        row.status = EventStatus.MAPPED.value
        row.status_reason = None
        row.next_attempt_at = None
        log.info(
            "stage.mapped",
            inbox_event_id=row.id,
            event_type=row.event_type,
            commands=len(outcome.commands),
            inserted=stored.inserted,
            already_there=stored.existing,
        )

    def _retry_later(self, row: InboxEvent, exc: Exception, now: datetime) -> bool:
        """Keep the event ``received`` and try again later if the failure is a passing one."""
        if not getattr(exc, "retryable", False):
            return False
        decision = self.policy.after_failure(
            attempt=row.attempts, first_attempt_at=row.received_at, now=now, rng=self.rng
        )
        if decision.action is Action.GIVE_UP:
            return False
        row.next_attempt_at = now + timedelta(seconds=decision.wait_s)
        row.status_reason = f"will retry at {row.next_attempt_at.isoformat()}: {exc}"[:4000]
        log.warning(
            "stage.retry_scheduled",
            inbox_event_id=row.id,
            event_type=row.event_type,
            attempt=row.attempts,
            wait_s=(row.next_attempt_at - now).total_seconds(),
            error=str(exc),
        )
        return True
