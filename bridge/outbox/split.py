"""A refund's credit-note lines, made when it is sent, from the invoice of the sale it refunds.

A ``credit_note.partial`` whose ``meta["split_of"]`` names an invoice command carries no lines: it
says only how much was given back (``meta["refunded"]``). By the time it is claimed that invoice
command is done (it is a dependency, through the ``information`` ref), so its items — exactly what
Facturation.pro invoiced — are read from the outbox and the credit is split like them
(:func:`bridge.mapping.refunds.proportional_credit_items`). The items of a done invoice never
change, so a second attempt makes the same lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bridge.db.models import OutboxCommand
from bridge.facturation.totals import compute_totals, decimal_or_none
from bridge.mapping.functions import FunctionError, currency_exponent
from bridge.mapping.money import MoneyError
from bridge.mapping.refunds import proportional_credit_items


class SplitError(Exception):
    """The credit note can't be split like its invoice: it goes dead with this reason."""


@dataclass(frozen=True, slots=True)
class Original:
    """The invoice command a credit note refunds: its items, currency and amount paid."""

    items: list[dict[str, Any]]
    currency: str
    paid: Decimal

    @classmethod
    def read(cls, sessions: sessionmaker[Session], key: str) -> Original | None:
        with sessions() as session:
            row = session.execute(
                select(OutboxCommand.payload, OutboxCommand.meta).where(
                    OutboxCommand.idempotency_key == key
                )
            ).first()
        if row is None:
            return None
        payload, meta = dict(row.payload or {}), dict(row.meta or {})
        items = [i for i in payload.get("items") or [] if isinstance(i, dict)]
        paid = decimal_or_none(meta.get("expected_total_with_vat"))
        if paid is None:
            paid = compute_totals(items).total_with_vat
        return cls(items, str(payload.get("currency") or meta.get("currency") or ""), paid)


def split_body(
    meta: dict[str, Any], body: dict[str, Any], original: Original | None
) -> dict[str, Any]:
    """``body`` with the credit lines for ``meta["refunded"]``, split like ``original``."""
    refunded = decimal_or_none(meta.get("refunded"))
    if refunded is None or refunded <= 0:
        raise SplitError(f"no amount refunded in the command ({meta.get('refunded')!r})")
    if original is None or not original.items:
        raise SplitError(f"{meta.get('split_of')} has no invoice lines to split the refund like")
    currency = str(body.get("currency") or "").upper()
    if currency != original.currency.upper():
        raise SplitError(
            f"refund in {currency or '?'} of an invoice in {original.currency or '?'}: "
            "issue the credit note by hand"
        )
    try:
        unit = Decimal(1).scaleb(-currency_exponent(currency))
        items = proportional_credit_items(original.items, refunded, currency_unit=unit)
    except (MoneyError, FunctionError) as exc:
        raise SplitError(f"cannot split the refund like {meta.get('split_of')}: {exc}") from None
    return {**body, "items": items}
