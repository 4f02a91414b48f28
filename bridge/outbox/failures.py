"""What a failed API call ends in: the outcome of one attempt, recorded under the lease token.

429 -> wait, no attempt consumed (every worker waits when the quota is shared); 401/403 -> delivery
paused for every worker; 5xx/timeouts/resets -> backoff with full jitter (:mod:`bridge.outbox.retry`),
then dead after the give-up time, the outcome-unknown mark kept when the write may have reached the
server; 400/422 -> dead with the API's ``errors``; 404 and other answers -> dead.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bridge.facturation.errors import (
    AuthError,
    FacturationError,
    RateLimitedError,
    RejectedError,
    RetryableError,
)
from bridge.logging import get_logger
from bridge.outbox.queue import Claimed, Outbox
from bridge.outbox.quota import QuotaLimiter
from bridge.outbox.retry import Action, RetryPolicy

log = get_logger("bridge.outbox.delivery")


class Outcome(enum.StrEnum):
    """What one delivery attempt ended in (for logs, stats and tests)."""

    DONE = "done"  # confirmed by the API (or found by api_id, or already bound)
    RETRY = "retry"  # transient failure: backoff
    RATE_LIMITED = "rate_limited"  # 429: waiting, no attempt consumed
    QUOTA_WAIT = "quota_wait"  # our own limiter said wait: put back, nothing sent
    DEAD = "dead"  # refused or out of time
    PAUSED = "paused"  # 401/403: all delivery paused
    LEASE_LOST = "lease_lost"  # another worker owns it now: nothing recorded by us
    CANCELLED = "cancelled"  # not needed (an update of a customer never created)


@dataclass
class Failures:
    """Records failed attempts for one worker."""

    outbox: Outbox
    quota: QuotaLimiter | None
    policy: RetryPolicy
    worker_id: str
    rng: random.Random
    clock: Callable[[], datetime]

    def failed(self, c: Claimed, exc: FacturationError, mark_unknown: bool) -> Outcome:
        """Record what ``exc`` means for ``c`` (``mark_unknown``: the call was a write)."""
        fields = {"command_id": c.id, "key": c.key, "kind": c.kind.value, "status": exc.status}
        if isinstance(exc, RateLimitedError):
            if self.quota is None:
                wait = RetryPolicy.rate_limited(exc.retry_after, 1.0)
                self.outbox.retry_later(
                    c,
                    wait_s=wait,
                    error="429 rate limited",
                    consume_attempt=False,
                    outcome_unknown=c.outcome_unknown,
                )
            else:
                wait = self.outbox.rate_limited(c, self.quota, exc.retry_after)
            log.warning("delivery.rate_limited", wait_s=round(wait, 3), **fields)
            return Outcome.RATE_LIMITED
        if isinstance(exc, AuthError):
            reason = f"{exc.status} from the API: check FACTURATION_API_LOGIN/KEY and firm access"
            self.outbox.pause_delivery(c, reason=reason, worker_id=self.worker_id)
            log.error("delivery.paused", reason=reason, **fields)
            return Outcome.PAUSED
        if isinstance(exc, RetryableError):
            unknown = c.outcome_unknown or (mark_unknown and exc.may_have_reached_server)
            decision = self.policy.after_failure(
                attempt=c.attempts + 1,
                first_attempt_at=c.first_attempt_at,
                now=self.clock(),
                rng=self.rng,
                outcome_unknown=unknown,
            )
            error = f"{exc.status or 'no answer'}: {exc}"
            if decision.action is Action.GIVE_UP:
                self.outbox.kill(c, error=f"gave up ({decision.reason}); last error {error}")
                log.error("delivery.dead", error=error, reason=decision.reason, **fields)
                return Outcome.DEAD
            self.outbox.retry_later(
                c,
                wait_s=decision.wait_s,
                error=error,
                consume_attempt=True,
                outcome_unknown=unknown,
            )
            log.info(
                "outbox.retry_scheduled",
                attempt=c.attempts + 1,
                wait_s=round(decision.wait_s, 3),
                outcome_unknown=unknown,
                error=error,
                **fields,
            )
            return Outcome.RETRY
        errors = exc.errors if isinstance(exc, RejectedError) else None
        self.outbox.kill(
            c,
            error=f"{exc.status or 'error'}: {exc}",
            result={"errors": errors, "status": exc.status, "body": exc.body},
        )
        log.error("delivery.dead", error=str(exc), errors=errors, **fields)
        return Outcome.DEAD
