"""The API's quota: N requests per window (600 per 300 s) and M per day (10,000).

Each limit is a fixed window that opens with the first request after the previous one closed. A
request over either limit is refused with 429 and does not count; ``Retry-After`` is the time until
the window that refused it closes (rounded up to a whole second). ``X-RateLimit-Limit`` is the
per-window limit and ``X-RateLimit-Remaining`` the requests left before a 429 (the smaller of what
the window and the day have left).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Window:
    limit: int
    seconds: float
    opened_at: float | None = None
    used: int = 0

    def roll(self, now: float) -> None:
        if self.opened_at is None or now - self.opened_at >= self.seconds:
            self.opened_at = None
            self.used = 0

    def left(self) -> int:
        return max(0, self.limit - self.used)

    def closes_in(self, now: float) -> float:
        return 0.0 if self.opened_at is None else self.opened_at + self.seconds - now


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int | None = None  # seconds, when refused


class Quota:
    """Counts requests against both windows; safe to share between threads."""

    def __init__(
        self,
        *,
        limit: int = 600,
        window: float = 300.0,
        daily_limit: int = 10_000,
        day: float = 86_400.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._windows = (_Window(limit, window), _Window(daily_limit, day))
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        return self._windows[0].limit

    def take(self) -> Decision:
        """Count one request, or refuse it (429) when a window is used up."""
        with self._lock:
            now = self._clock()
            for window in self._windows:
                window.roll(now)
            full = [w for w in self._windows if w.left() == 0]
            if full:
                wait = max(w.closes_in(now) for w in full)
                return Decision(False, self.limit, 0, max(1, math.ceil(wait)))
            for window in self._windows:
                if window.opened_at is None:
                    window.opened_at = now
                window.used += 1
            return Decision(True, self.limit, min(w.left() for w in self._windows))

    def peek(self) -> Decision:
        """What is left, without counting a request."""
        with self._lock:
            now = self._clock()
            for window in self._windows:
                window.roll(now)
            return Decision(True, self.limit, min(w.left() for w in self._windows))
