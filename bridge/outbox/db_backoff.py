"""The worker's patience with a database that does not answer.

One warning line per try, ``worker.database_unreachable error=OperationalError retry_in_s=2.0``,
with the wait doubling from half a second up to five, instead of a traceback every poll; one
``worker.database_recovered down_s=…`` line when a turn succeeds again. The worker needs no
restart: the engine's pool reconnects by itself (``pool_pre_ping`` on PostgreSQL).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bridge.db.outage import reason
from bridge.logging import get_logger

log = get_logger("bridge.outbox.worker")

FIRST_WAIT_S = 0.5
MAX_WAIT_S = 5.0


class DatabaseBackoff:
    """Tracks one outage: :meth:`failed` after a turn the database broke, :meth:`succeeded` after
    a good one."""

    def __init__(
        self,
        worker_id: str,
        *,
        first_s: float = FIRST_WAIT_S,
        max_s: float = MAX_WAIT_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.worker_id = worker_id
        self.first_s = first_s
        self.max_s = max_s
        self.monotonic = monotonic
        self.down_since: float | None = None
        self.wait_s = 0.0

    def failed(self, exc: BaseException) -> float:
        """Log the failure; return how long to wait before the next try."""
        if self.down_since is None:
            self.down_since = self.monotonic()
            self.wait_s = self.first_s
        else:
            self.wait_s = min(self.max_s, self.wait_s * 2)
        log.warning(
            "worker.database_unreachable",
            worker_id=self.worker_id,
            error=type(exc).__name__,
            reason=reason(exc),
            retry_in_s=self.wait_s,
        )
        return self.wait_s

    def succeeded(self) -> None:
        if self.down_since is None:
            return
        down_s = self.monotonic() - self.down_since
        self.down_since = None
        log.warning("worker.database_recovered", worker_id=self.worker_id, down_s=round(down_s, 1))
