"""When to try a failed delivery again: a pure policy that returns a decision, no I/O.

Transient failures (5xx, timeouts, connection resets) back off exponentially with *full jitter*:
the wait is drawn uniformly in ``[0, min(max_delay, base * 2**(attempt-1))]``, so that workers
which failed together do not retry together. After ``give_up_seconds`` since the first attempt the
command is given up (dead, for a human to look at). When the failed request may have reached the
server (a read timeout, a reset after sending, a 5xx), the wait is at least ``settle_seconds``
(twice the client timeout): the next attempt looks the object up by ``api_id`` before sending
again, and that lookup proves the object absent only once the first request has finished on the
server — a server still working on a timed-out create must not be raced. A 429 is not a failure of the command: it
waits for ``Retry-After`` (or the quota window) and never consumes an attempt — see
:meth:`RetryPolicy.rate_limited`.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import datetime

from bridge.config import Settings


class Action(enum.StrEnum):
    RETRY = "retry"  # try again after ``wait_s``
    GIVE_UP = "give_up"  # out of time: the command goes dead


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    wait_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float
    max_delay_seconds: float
    give_up_seconds: float
    settle_seconds: float = 0.0  # least wait before looking up a request that may have landed

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            base_seconds=settings.retry_base_seconds,
            max_delay_seconds=settings.retry_max_delay_seconds,
            give_up_seconds=settings.retry_give_up_seconds,
            settle_seconds=2 * settings.api_timeout,
        )

    def ceiling(self, attempt: int) -> float:
        """The largest wait after the ``attempt``-th failure (1-based), before jitter."""
        exponent = min(max(attempt - 1, 0), 62)  # 2**62 already exceeds any sane maximum
        return min(self.max_delay_seconds, self.base_seconds * float(2**exponent))

    def after_failure(
        self,
        *,
        attempt: int,
        first_attempt_at: datetime,
        now: datetime,
        rng: random.Random,
        outcome_unknown: bool = False,
    ) -> Decision:
        """Decide what follows the ``attempt``-th transient failure of a command."""
        elapsed = (now - first_attempt_at).total_seconds()
        if elapsed >= self.give_up_seconds:
            return Decision(Action.GIVE_UP, 0.0, f"still failing after {elapsed:.0f} s")
        wait = rng.uniform(0.0, self.ceiling(attempt))
        if outcome_unknown:
            wait = max(wait, self.settle_seconds)
        # Never schedule past the give-up horizon: the last try happens at the horizon.
        wait = min(wait, max(0.0, self.give_up_seconds - elapsed))
        return Decision(Action.RETRY, wait, f"attempt {attempt} failed")

    @staticmethod
    def rate_limited(retry_after: float | None, window_wait: float) -> float:
        """Seconds to wait after a 429: the server's ``Retry-After`` wins, else the window's end."""
        if retry_after is not None and retry_after >= 0:
            return retry_after
        return max(window_wait, 1.0)
