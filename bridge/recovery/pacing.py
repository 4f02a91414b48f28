"""A request pacer: at most ``rate`` calls per second from this process."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """``wait()`` before each request sleeps as long as needed to stay under ``rate`` per second."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0

    def wait(self) -> None:
        now = self._clock()
        if now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self.interval

    def hold(self, seconds: float) -> None:
        """No request for ``seconds`` (the server asked to slow down)."""
        self._next = max(self._next, self._clock() + seconds)
