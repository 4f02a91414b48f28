"""Before a credit note is sent: its lines, when it is split like its invoice, and whether it may go.

:func:`gate_credit` reads the invoice the credit note credits (:class:`bridge.outbox.split.Original`),
makes the lines of a refund known only by its amount (:func:`bridge.outbox.split.split_body`), and
applies :func:`bridge.outbox.credit_policy.decide_credit` — never more credited than was paid — with
the amounts of the invoice's other credit notes. The outcome it records (cancelled, waiting, dead)
is returned as the delivery outcome's value; ``None`` means: send it.
"""

from __future__ import annotations

import random
from typing import Any

from bridge.logging import get_logger
from bridge.outbox.commands import CommandKind
from bridge.outbox.credit_policy import CREDIT_KINDS, CreditAction, credited_amount, decide_credit
from bridge.outbox.queue import Claimed, Outbox
from bridge.outbox.siblings import credit_siblings
from bridge.outbox.split import Original, SplitError, split_body

log = get_logger("bridge.outbox.delivery")


def gate_credit(
    outbox: Outbox, c: Claimed, body: dict[str, Any], rng: random.Random
) -> tuple[dict[str, Any], str | None]:
    """``(body, None)`` when ``c`` may be sent (with its lines made), else ``(body, outcome)``."""
    credit_of = c.meta.get("credit_of")
    if c.kind not in CREDIT_KINDS or not credit_of:
        return body, None
    original = Original.read(outbox.sessions, str(credit_of))
    if c.meta.get("split_of"):
        try:
            body = split_body(c.meta, body, original)
        except SplitError as exc:
            outbox.kill(c, error=str(exc))
            log.error("delivery.dead", command_id=c.id, key=c.key, error=str(exc))
            return body, "dead"
    siblings = credit_siblings(outbox.sessions, str(credit_of), exclude_id=c.id)
    amount = credited_amount(c.meta) if c.kind is CommandKind.PARTIAL_CREDIT_NOTE else None
    paid = original.paid if original is not None else None
    decision = decide_credit(c.kind, str(credit_of), siblings, amount=amount, paid=paid)
    match decision.action:
        case CreditAction.CANCEL:
            outbox.cancel(c, reason=decision.reason)
            log.warning("delivery.cancelled", command_id=c.id, key=c.key, reason=decision.reason)
            return body, "cancelled"
        case CreditAction.WAIT:
            wait = rng.uniform(1.0, 5.0)  # jittered, so two waiting credits don't meet again
            outbox.retry_later(
                c,
                wait_s=wait,
                error=decision.reason,
                consume_attempt=False,
                outcome_unknown=c.outcome_unknown,
            )
            log.info("delivery.credit_waits", command_id=c.id, key=c.key, wait_s=round(wait, 3))
            return body, "retry"
        case CreditAction.DEAD:
            outbox.kill(c, error=decision.reason)
            log.error("delivery.dead", command_id=c.id, key=c.key, error=decision.reason)
            return body, "dead"
    return body, None
