"""Never credit an invoice beyond what was paid: a pure decision, taken before a credit note is sent.

Two sources can credit one sale (a Shopify cancellation credited in full, then a refund of the same
order). Given the other credit notes of the same invoice (:class:`CreditSibling`):

- after a full credit note, any further credit is **cancelled** (the sale is already at zero);
- while another credit note is unsettled (in flight, or its outcome unknown) this one **waits**,
  so that two workers can't both decide before either is recorded;
- a full credit note after partial ones would over-credit: it goes **dead** for a human;
- a partial credit note whose amount, with the partial ones done, is more than was paid goes
  **dead** too (two refunds of one sale under different keys, a credit note and a refund that
  don't name each other): never more in total than was paid;
- otherwise it **proceeds**.

Like :mod:`bridge.outbox.retry`, this returns a decision and does no I/O; the deliverer applies it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from bridge.outbox.commands import CommandKind

CREDIT_KINDS = frozenset({CommandKind.FULL_CREDIT_NOTE, CommandKind.PARTIAL_CREDIT_NOTE})


@dataclass(frozen=True, slots=True)
class CreditSibling:
    """Another credit note of the same invoice: done, or possibly in Facturation.pro already."""

    kind: CommandKind
    key: str
    done: bool
    amount: Decimal | None = None  # what it credits, including VAT (positive), when known


class CreditAction(enum.StrEnum):
    PROCEED = "proceed"  # nothing stands in the way: send it
    CANCEL = "cancel"  # the invoice is already fully credited: not needed
    WAIT = "wait"  # another credit note of the invoice is unsettled: try again shortly
    DEAD = "dead"  # sending it would credit more than was paid: a human decides


@dataclass(frozen=True, slots=True)
class CreditDecision:
    action: CreditAction
    reason: str = ""


PROCEED = CreditDecision(CreditAction.PROCEED)


def decide_credit(
    kind: CommandKind,
    credit_of: str,
    siblings: Sequence[CreditSibling],
    *,
    amount: Decimal | None = None,
    paid: Decimal | None = None,
) -> CreditDecision:
    """What to do with a credit note of kind ``kind`` on the invoice keyed ``credit_of``.

    ``amount`` (what this one credits) and ``paid`` (the invoice's total), both including VAT and
    positive, when known, bound the partial credit notes' sum.
    """
    full = [s.key for s in siblings if s.done and s.kind is CommandKind.FULL_CREDIT_NOTE]
    if full:
        return CreditDecision(
            CreditAction.CANCEL, f"{credit_of} is already fully credited by {full[0]}"
        )
    unsettled = [s.key for s in siblings if not s.done]
    if unsettled:
        return CreditDecision(
            CreditAction.WAIT,
            f"waiting for {unsettled[0]}, a credit note of the same invoice, to settle",
        )
    partial = [s.key for s in siblings if s.done]
    if kind is CommandKind.FULL_CREDIT_NOTE and partial:
        return CreditDecision(
            CreditAction.DEAD,
            f"{credit_of} is already partly credited by {', '.join(partial)}: "
            "a full credit note would credit more than was paid; credit the rest by hand",
        )
    if amount is not None and paid is not None:
        before = sum((s.amount or Decimal(0) for s in siblings if s.done), Decimal(0))
        if before + amount > paid:
            return CreditDecision(
                CreditAction.DEAD,
                f"{credit_of} was paid {paid} and is already credited {before}"
                f"{' by ' + ', '.join(partial) if partial else ''}: "
                f"crediting {amount} more would credit more than was paid; check the refunds",
            )
    return PROCEED


def credited_amount(meta: object) -> Decimal | None:
    """What a credit note credits (positive), from its ``meta["expected_total_with_vat"]``."""
    value = meta.get("expected_total_with_vat") if isinstance(meta, dict) else None
    if not isinstance(value, str | int):
        return None
    try:
        return abs(Decimal(str(value)))
    except ArithmeticError:
        return None
