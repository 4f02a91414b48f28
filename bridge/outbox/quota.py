"""The API quota, shared by every worker process through the database.

Facturation.pro allows 600 requests per 5 minutes and 10,000 per day per API key, and answers 429
beyond (``Retry-After``: seconds to wait). The bridge keeps a *sliding log* of the requests it sends
(table ``quota_requests``) and sends a request only if fewer than the limit were sent in the last
window (and in the last day). A sliding log never exceeds the limit in *any* interval of the
window's length, so it stays within the quota whether the server counts in fixed or in sliding
windows; when the backlog is large it sends a burst at the start of each server window, which uses
the whole window.

- ``FACTURATION_QUOTA_RESERVE`` is left to other users of the same key.
- :meth:`QuotaLimiter.observe` re-syncs from ``X-RateLimit-Limit``/``X-RateLimit-Remaining``: when the
  server counts more requests than the log holds (plus the reserve), the difference is someone
  else's, and is logged as spent now.
- :meth:`QuotaLimiter.block` records a ``Retry-After``: no worker sends before it passes.

Every method runs inside the caller's transaction (one row lock on ``quota_windows``); the caller
commits. The limiter itself holds no state, so any number of processes can share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bridge.config import Settings
from bridge.db.models import QuotaRequest, QuotaWindow
from bridge.logging import get_logger

log = get_logger("bridge.outbox.quota")

DAY_SECONDS = 86_400.0
LOCK_ROW = "api"


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    per_window: int  # requests this bridge may send per window (the limit minus the reserve)
    window_seconds: float
    per_day: int
    reserve: int = 0  # requests per window left to other users of the key
    server_window_limit: int | None = None  # the server's limit per window, to read its headers
    server_daily_limit: int | None = None
    margin_seconds: float = 0.0  # requests are counted when sent, the server counts on arrival

    @classmethod
    def from_settings(cls, settings: Settings) -> QuotaLimits:
        return cls(
            per_window=settings.quota_per_window,
            window_seconds=settings.rate_window,
            per_day=settings.quota_per_day,
            reserve=settings.quota_reserve,
            server_window_limit=settings.rate_limit,
            server_daily_limit=settings.daily_limit,
            margin_seconds=min(1.0, settings.rate_window * 0.01),
        )


@dataclass(frozen=True, slots=True)
class Usage:
    in_window: int
    in_day: int
    blocked_until: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "in_window": self.in_window,
            "in_day": self.in_day,
            "blocked_until": self.blocked_until.isoformat() if self.blocked_until else None,
        }


class QuotaLimiter:
    """Decides whether one more request may be sent now. Stateless; see the module docstring."""

    def __init__(self, limits: QuotaLimits) -> None:
        self.limits = limits

    def try_acquire(self, session: Session, now: datetime) -> float:
        """Take one request from the quota: ``0.0`` when taken, else the seconds to wait (none taken)."""
        row = self._lock(session, now)
        if row.blocked_until is not None and row.blocked_until > now:
            return (row.blocked_until - now).total_seconds()
        session.execute(
            delete(QuotaRequest).where(QuotaRequest.sent_at <= now - timedelta(seconds=DAY_SECONDS))
        )
        wait = max(
            self._wait_for(session, now, self._window_span, self.limits.per_window),
            self._wait_for(session, now, DAY_SECONDS, self.limits.per_day),
        )
        if wait > 0:
            return wait
        session.execute(insert(QuotaRequest).values(sent_at=now))
        return 0.0

    def observe(
        self, session: Session, observed_at: datetime, limit: int | None, remaining: int | None
    ) -> None:
        """Re-sync from the server's rate headers: count requests made by others as spent.

        ``observed_at`` is when the answer came: the log is compared as it stood then, and the
        others' requests are logged at that time, so that a late re-sync never over-counts.
        """
        if remaining is None:
            return
        daily = limit is not None and limit == self.limits.server_daily_limit
        if limit is None:
            limit = self.limits.server_window_limit
        if limit is None:
            return
        span = DAY_SECONDS if daily else self.limits.window_seconds
        reserve = 0 if daily else self.limits.reserve
        self._lock(session, observed_at)
        ours = self._count(session, observed_at, span, upto=True)
        others = (limit - remaining) - ours - reserve
        if others <= 0:
            return
        others = min(others, limit)
        session.execute(insert(QuotaRequest), [{"sent_at": observed_at}] * others)
        log.info("quota.resynced", counted_as_others=others, remaining=remaining, limit=limit)

    def block(self, session: Session, now: datetime, wait_s: float) -> datetime:
        """No request before ``now + wait_s`` (a 429's ``Retry-After``), for every worker."""
        row = self._lock(session, now)
        until = now + timedelta(seconds=wait_s)
        if row.blocked_until is None or row.blocked_until < until:
            session.execute(
                update(QuotaWindow)
                .where(QuotaWindow.name == LOCK_ROW)
                .values(blocked_until=until, updated_at=now)
            )
        return until

    def window_wait(self, session: Session, now: datetime) -> float:
        """Seconds until the window has room again (0 if it has room now)."""
        return self._wait_for(session, now, self._window_span, self.limits.per_window)

    def usage(self, session: Session, now: datetime) -> Usage:
        row = session.get(QuotaWindow, LOCK_ROW)
        blocked = row.blocked_until if row is not None else None
        return Usage(
            in_window=self._count(session, now, self.limits.window_seconds),
            in_day=self._count(session, now, DAY_SECONDS),
            blocked_until=blocked if blocked is not None and blocked > now else None,
        )

    # -- internals ------------------------------------------------------------------------------

    @property
    def _window_span(self) -> float:
        """The window as the limiter counts it: a little longer, for network delays."""
        return self.limits.window_seconds + self.limits.margin_seconds

    def _lock(self, session: Session, now: datetime) -> QuotaWindow:
        """Lock the one quota row (created on first use): serialises limiter decisions."""
        dialect = session.get_bind().dialect.name
        ins: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
        session.execute(
            ins(QuotaWindow)
            .values(name=LOCK_ROW, updated_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        row = session.execute(
            select(QuotaWindow)
            .where(QuotaWindow.name == LOCK_ROW)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()
        return row

    def _count(self, session: Session, now: datetime, span: float, *, upto: bool = False) -> int:
        """Requests logged after ``now - span`` (and, with ``upto``, not after ``now``)."""
        since = now - timedelta(seconds=span)
        query = select(func.count()).select_from(QuotaRequest).where(QuotaRequest.sent_at > since)
        if upto:
            query = query.where(QuotaRequest.sent_at <= now)
        return int(session.execute(query).scalar_one())

    def _wait_for(self, session: Session, now: datetime, span: float, limit: int) -> float:
        """Seconds until fewer than ``limit`` requests remain in the last ``span`` seconds."""
        since = now - timedelta(seconds=span)
        count = self._count(session, now, span)
        if count < limit:
            return 0.0
        # The request whose expiry makes room: the (count - limit + 1)-th oldest in the span.
        oldest = session.execute(
            select(QuotaRequest.sent_at)
            .where(QuotaRequest.sent_at > since)
            .order_by(QuotaRequest.sent_at, QuotaRequest.id)
            .offset(count - limit)
            .limit(1)
        ).scalar_one()
        return max(0.001, (oldest - since).total_seconds())
