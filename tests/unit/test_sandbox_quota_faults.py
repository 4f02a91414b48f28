"""The sandbox's quota windows and fault draws, on a fake clock and fixed seeds."""

from __future__ import annotations

import pytest

from facturation_sandbox.faults import KINDS, Faults, FaultSpecError, parse_faults
from facturation_sandbox.quota import Quota


def test_window_counts_down_refuses_then_reopens() -> None:
    now = [0.0]
    quota = Quota(limit=3, window=300, daily_limit=100, clock=lambda: now[0])
    assert [quota.take().remaining for _ in range(3)] == [2, 1, 0]
    now[0] = 100.4
    refused = quota.take()
    assert not refused.allowed
    assert refused.retry_after == 200  # ceil(300 - 100.4)
    assert quota.peek().remaining == 0  # a refused request did not count
    now[0] = 300.0
    assert quota.take().remaining == 2


def test_daily_limit_binds_across_windows() -> None:
    now = [0.0]
    quota = Quota(limit=2, window=10, daily_limit=3, day=1000, clock=lambda: now[0])
    assert quota.take().remaining == 1
    assert quota.take().remaining == 0
    now[0] = 11
    assert quota.take().remaining == 0  # window has 1 left, the day none
    now[0] = 22
    refused = quota.take()
    assert not refused.allowed
    assert refused.retry_after == 978
    now[0] = 1000
    assert quota.take().allowed


def test_fault_spec_parsing() -> None:
    assert parse_faults("error_before=0.10, drop_after=0.05") == {
        "error_before": 0.10,
        "drop_after": 0.05,
    }
    assert parse_faults("") == {}
    for bad in (
        "boom=0.1",
        "error_before",
        "error_after=x",
        "slow_after=1.5",
        "error_before=0.6,error_after=0.6",
    ):
        with pytest.raises(FaultSpecError):
            parse_faults(bad)


def test_fault_draws_are_reproducible_and_follow_the_probabilities() -> None:
    spec = {"error_before": 0.1, "error_after": 0.2, "drop_after": 0.1, "slow_after": 0.1}
    first = Faults(spec, seed=7)
    second = Faults(spec, seed=7)
    draws = [first.draw() for _ in range(2000)]
    assert draws == [second.draw() for _ in range(2000)]
    assert draws != [Faults(spec, seed=8).draw() for _ in range(2000)]
    shares = {kind: draws.count(kind) / len(draws) for kind in KINDS}
    assert shares["error_after"] == pytest.approx(0.2, abs=0.04)
    assert shares["error_before"] == pytest.approx(0.1, abs=0.03)
    assert draws.count(None) / len(draws) == pytest.approx(0.5, abs=0.05)
    assert Faults({}, seed=1).draw() is None
