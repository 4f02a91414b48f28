"""A claim whose attempt ended in a database error, handed back as soon as the database answers.

When the database goes away between the claim and the recording of the outcome (or a transaction
in between fails), the command would otherwise stay ``in_flight`` until its lease expires
(``BRIDGE_LEASE_SECONDS``). The worker keeps it as a :class:`HeldClaim` and, on its next turn that
reaches the database, puts it back to ``pending``: due now, lease cleared, no attempt consumed.
The write is fenced by the lease token, so nothing changes if another worker took the command
meanwhile, or if the outcome was recorded after all (a commit whose answer was lost). When a
request may have left for the API, ``outcome_unknown`` is set, so the next attempt looks the
object up before sending anything again.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.logging import get_logger
from bridge.outbox.queue import Claimed, Outbox

log = get_logger("bridge.outbox.held")


@dataclass(frozen=True, slots=True)
class HeldClaim:
    claim: Claimed
    may_have_sent: bool  # a write request may have reached the API during the attempt
    error: str  # the database error's class name

    @classmethod
    def keep(cls, c: Claimed, *, may_have_sent: bool, exc: BaseException) -> HeldClaim:
        error = type(exc).__name__
        log.warning(
            "delivery.claim_held",
            command_id=c.id,
            key=c.key,
            error=error,
            may_have_sent=may_have_sent,
        )
        return cls(c, may_have_sent, error)

    def release(self, outbox: Outbox) -> bool:
        """Back to pending, due now; ``False`` if the lease was no longer ours (nothing changed)."""
        c = self.claim
        released = outbox.retry_later(
            c,
            wait_s=0.0,
            error=f"released after a database error ({self.error})",
            consume_attempt=False,
            outcome_unknown=True if self.may_have_sent else None,
        )
        log.warning(
            "delivery.claim_released",
            command_id=c.id,
            key=c.key,
            released=released,
            outcome_unknown=self.may_have_sent or c.outcome_unknown,
        )
        return released
