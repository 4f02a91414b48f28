"""The shared quota limiter on real SQLite and PostgreSQL: sliding window, day limit, Retry-After, re-sync."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bridge.db import make_engine, session_factory
from bridge.outbox.quota import QuotaLimiter, QuotaLimits
from tests.support.outbox_kit import Clock


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield session_factory(engine)
    engine.dispose()


def _take(sessions: sessionmaker[Session], limiter: QuotaLimiter, clock: Clock) -> float:
    with sessions.begin() as session:
        return limiter.try_acquire(session, clock())


LIMITS = QuotaLimits(per_window=5, window_seconds=30, per_day=12, server_window_limit=5)


def test_never_more_than_the_limit_in_any_window(sessions: sessionmaker[Session]) -> None:
    clock, limiter = Clock(), QuotaLimiter(LIMITS)
    sent: list[float] = []
    elapsed = 0.0
    while len(sent) < 10:
        wait = _take(sessions, limiter, clock)
        if wait == 0:
            sent.append(elapsed)
            clock.advance(1.0)
            elapsed += 1.0
        else:
            clock.advance(wait)
            elapsed += wait
    for i in range(len(sent) - 5):
        assert sent[i + 5] - sent[i] >= 30.0  # any 6 consecutive requests span more than a window
    # ... and the sixth goes as soon as the first leaves the window: the window is fully used.
    assert sent[5] - sent[0] == pytest.approx(30.0, abs=0.01)


def test_the_day_limit_holds_across_windows(sessions: sessionmaker[Session]) -> None:
    clock, limiter = Clock(), QuotaLimiter(LIMITS)
    taken = 0
    for _ in range(40):
        if _take(sessions, limiter, clock) == 0:
            taken += 1
        clock.advance(31)
    assert taken == 12  # 40 windows, but only 12 a day
    clock.advance(86400)
    assert _take(sessions, limiter, clock) == 0


def test_retry_after_blocks_everyone(sessions: sessionmaker[Session]) -> None:
    clock, limiter = Clock(), QuotaLimiter(LIMITS)
    with sessions.begin() as session:
        limiter.block(session, clock(), 12.0)
    other = QuotaLimiter(LIMITS)  # another worker, same database
    assert _take(sessions, other, clock) == pytest.approx(12.0)
    clock.advance(12)
    assert _take(sessions, other, clock) == 0


def test_resync_counts_requests_made_by_others(sessions: sessionmaker[Session]) -> None:
    clock, limiter = Clock(), QuotaLimiter(LIMITS)
    assert _take(sessions, limiter, clock) == 0
    with sessions.begin() as session:
        # The server says 5 allowed, 2 left: 3 used, of which only 1 is ours.
        limiter.observe(session, clock(), 5, 2)
        assert limiter.usage(session, clock()).in_window == 3
    assert _take(sessions, limiter, clock) == 0
    assert _take(sessions, limiter, clock) == 0
    assert _take(sessions, limiter, clock) > 0


def test_resync_leaves_the_reserve_to_others(sessions: sessionmaker[Session]) -> None:
    clock = Clock()
    limiter = QuotaLimiter(
        QuotaLimits(per_window=4, window_seconds=30, per_day=100, reserve=2, server_window_limit=6)
    )
    assert _take(sessions, limiter, clock) == 0
    with sessions.begin() as session:
        limiter.observe(session, clock(), 6, 3)  # 3 used: ours + 2 by others, within the reserve
        assert limiter.usage(session, clock()).in_window == 1
        limiter.observe(session, clock(), 6, 1)  # 5 used: others exceed the reserve by 2
        assert limiter.usage(session, clock()).in_window == 3


def test_concurrent_workers_never_take_more_than_the_limit(
    sessions: sessionmaker[Session],
) -> None:
    import threading

    clock = Clock()
    taken: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def worker() -> None:
        limiter = QuotaLimiter(LIMITS)
        start.wait()
        for _ in range(10):
            if _take(sessions, limiter, clock) == 0:
                with lock:
                    taken.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(taken) == LIMITS.per_window


def test_a_late_resync_is_judged_as_of_when_the_answer_came(
    sessions: sessionmaker[Session],
) -> None:
    clock, limiter = Clock(), QuotaLimiter(LIMITS)
    for _ in range(4):
        assert _take(sessions, limiter, clock) == 0
    answered_at = clock()
    clock.advance(40)  # the window has passed; the answer's headers are applied only now
    with sessions.begin() as session:
        limiter.observe(session, answered_at, 5, 1)  # 4 used then: all ours
        assert limiter.usage(session, clock()).in_window == 0
    assert _take(sessions, limiter, clock) == 0
