"""The retry policy: exponential backoff with full jitter, a cap, and a give-up horizon."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from bridge.outbox.retry import Action, RetryPolicy
from tests.support.outbox_kit import T0

POLICY = RetryPolicy(base_seconds=2.0, max_delay_seconds=60.0, give_up_seconds=3 * 86400.0)


def test_the_ceiling_doubles_per_attempt_up_to_the_maximum() -> None:
    assert [POLICY.ceiling(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert POLICY.ceiling(10_000) == 60  # no overflow for absurd attempt counts


def test_waits_are_full_jitter_within_zero_and_the_ceiling() -> None:
    rng = random.Random(42)
    waits = [
        POLICY.after_failure(attempt=4, first_attempt_at=T0, now=T0, rng=rng).wait_s
        for _ in range(2000)
    ]
    assert all(0.0 <= w <= 16.0 for w in waits)
    # Full jitter spreads over the whole interval, not just near the ceiling.
    assert min(waits) < 1.0
    assert max(waits) > 15.0
    assert 6.5 < sum(waits) / len(waits) < 9.5


def test_gives_up_after_the_horizon_and_never_schedules_past_it() -> None:
    rng = random.Random(1)
    late = T0 + timedelta(seconds=3 * 86400)
    assert POLICY.after_failure(attempt=50, first_attempt_at=T0, now=late, rng=rng).action is (
        Action.GIVE_UP
    )
    almost = late - timedelta(seconds=5)
    decision = POLICY.after_failure(attempt=50, first_attempt_at=T0, now=almost, rng=rng)
    assert decision.action is Action.RETRY
    assert decision.wait_s <= 5.0


@pytest.mark.parametrize(
    ("retry_after", "window_wait", "expected"),
    [(12.0, 100.0, 12.0), (0.0, 100.0, 0.0), (None, 42.5, 42.5), (None, 0.0, 1.0)],
)
def test_a_429_waits_for_retry_after_else_the_window(
    retry_after: float | None, window_wait: float, expected: float
) -> None:
    assert RetryPolicy.rate_limited(retry_after, window_wait) == expected


def test_an_unknown_outcome_waits_at_least_the_settle_time() -> None:
    import random as _random
    from datetime import UTC as _UTC
    from datetime import datetime as _dt

    from bridge.outbox.retry import Action as _Action
    from bridge.outbox.retry import RetryPolicy as _Policy

    policy = _Policy(base_seconds=1, max_delay_seconds=60, give_up_seconds=3600, settle_seconds=60)
    now = _dt(2026, 11, 23, tzinfo=_UTC)
    rng = _random.Random(1)
    known = policy.after_failure(attempt=1, first_attempt_at=now, now=now, rng=rng)
    unknown = policy.after_failure(
        attempt=1, first_attempt_at=now, now=now, rng=rng, outcome_unknown=True
    )
    assert known.wait_s <= 1
    assert (unknown.action, unknown.wait_s) == (_Action.RETRY, 60)
