"""Backfill: store in the inbox what the source's API holds for a period, as webhooks would.

A source (:mod:`bridge.recovery.stripe_backfill`, :mod:`bridge.recovery.shopify_backfill`) yields
batches of deliveries, each with the cursor that resumes after it. The runner stores each batch in
the inbox (``INSERT … ON CONFLICT (source, event_id) DO NOTHING``: a second run, or a webhook that
brought the same event, adds nothing), then saves the cursor in ``bridge_state`` under
``backfill.<source>``; an interrupted run resumes from there when run again with the same
``--since``. The mapping stage turns what was stored into commands like any webhook, keyed on the
source object (order, refund, invoice), so a sale that was also received by webhook is invoiced
once; every stored delivery carries ``x-bridge-origin: backfill``, which makes its commands
*recovered* (looked up by ``api_id`` before they are created, after live sales).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from bridge.db.models import EventStatus, utcnow
from bridge.db.state import get_state, put_state
from bridge.inbound.inbox import Entry, Inbox
from bridge.inbound.sources import Delivery
from bridge.logging import get_logger
from bridge.outbox.enqueue import ORIGIN_HEADER
from bridge.recovery.progress import Progress
from bridge.runtime import Runtime

log = get_logger("bridge.recovery.backfill")

ORIGIN = {ORIGIN_HEADER: "backfill"}


@dataclass(frozen=True, slots=True)
class Batch:
    deliveries: list[Delivery]
    cursor: dict[str, Any]  # resumes after this batch
    covered: float  # share of the period covered once this batch is stored (0 to 1)
    seen: int = 0  # source objects read for this batch (some yield no delivery)


class BackfillSource(Protocol):
    name: str

    def batches(self, since: date, resume: dict[str, Any] | None) -> Iterator[Batch]: ...


@dataclass
class BackfillResult:
    source: str
    since: str
    seen: int = 0
    stored: int = 0
    already_there: int = 0
    resumed: bool = False
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "since": self.since,
            "seen": self.seen,
            "stored": self.stored,
            "already_there": self.already_there,
            "resumed": self.resumed,
            "by_type": self.counts,
        }


def state_key(source: str) -> str:
    return f"backfill.{source}"


def run_backfill(
    runtime: Runtime,
    source: BackfillSource,
    since: date,
    *,
    restart: bool = False,
    progress: Progress | None = None,
) -> BackfillResult:
    """Store everything ``source`` holds since ``since``; resumable (see the module docstring)."""
    key = state_key(source.name)
    with runtime.sessions() as session:
        saved = get_state(session, key)
    resume = None
    result = BackfillResult(source.name, since.isoformat())
    if saved and not restart and saved.get("since") == since.isoformat() and not saved.get("done"):
        resume = saved.get("cursor")
        result.seen, result.stored = int(saved.get("seen", 0)), int(saved.get("stored", 0))
        result.resumed = True
        log.info("backfill.resumed", source=source.name, since=result.since, cursor=resume)
    inbox = Inbox(runtime.engine, busy_timeout=max(runtime.settings.db_busy_timeout, 10.0))
    progress = progress or Progress(source.name)
    try:
        for batch in source.batches(since, resume):
            stored = inbox.store_many([Entry(d, EventStatus.RECEIVED) for d in batch.deliveries])
            fresh = sum(not s.duplicate for s in stored)
            result.seen += batch.seen
            result.stored += fresh
            result.already_there += len(stored) - fresh
            for delivery, s in zip(batch.deliveries, stored, strict=True):
                if not s.duplicate:
                    result.counts[delivery.event_type] = (
                        result.counts.get(delivery.event_type, 0) + 1
                    )
            _save(runtime, key, result, cursor=batch.cursor, done=False)
            progress.update(batch.covered, stored=result.stored, seen=result.seen)
        progress.update(1.0, stored=result.stored, seen=result.seen)
    finally:
        progress.close()
    _save(runtime, key, result, cursor=None, done=True)
    log.info("backfill.finished", **result.as_dict())
    return result


def _save(runtime: Runtime, key: str, result: BackfillResult, *, cursor: Any, done: bool) -> None:
    now = utcnow()
    value = {
        "since": result.since,
        "cursor": cursor,
        "seen": result.seen,
        "stored": result.stored,
        "done": done,
        "at": now.isoformat(),
    }
    with runtime.sessions.begin() as session:
        put_state(session, key, value, now)


def covered_share(start: float, end: float, at: float, *, newest_first: bool) -> float:
    """The share of ``[start, end]`` covered when the listing has reached time ``at``."""
    if end <= start:
        return 1.0
    share = (end - at) / (end - start) if newest_first else (at - start) / (end - start)
    return min(1.0, max(0.0, share))
