"""Drafts before finalising: a total the bridge is not sure of is checked before the invoice is final.

A finalised French invoice can't be changed or deleted, only cancelled by a credit note. The totals
rule the bridge predicts (:mod:`bridge.facturation.totals`) is an assumption, so until Facturation.pro
has confirmed it on the merchant's own firm for a given *shape* of invoice, an invoice of that shape
goes in two steps:

1. ``POST invoices.json?type_doc=draft`` (documented: "ajoutez le paramètre ``type_doc=draft``"),
   with the usual ``api_id``; the draft has no number;
2. its ``total_with_vat`` is compared with what was paid (``meta["expected_total_with_vat"]``):
   equal -> ``PATCH invoices/ID.json?type_doc=final`` (documented: "utilisez la valeur ``final``
   pour finaliser la facture") and the shape counts one more confirmation; different -> nothing is
   finalised, the command goes dead naming both totals and the draft's id (kept for a human, who
   may correct and finalise it, or delete it), and the shape's confirmations go back to 0.

After ``BRIDGE_SHAPE_CONFIRMATIONS`` (default 20) confirmations in a row, invoices of that shape
are created final in one call; 0 trusts the rule from the start.

A **shape** is what the rule's correctness depends on: invoice or credit note (negative amounts),
the currency, the set of VAT rates, and whether rounding is in play — a line whose
``quantity * unit_price`` is not a whole number of cents, or VAT rounded per line differing from
VAT rounded per rate (an "Ajustement d'arrondi" or "Écart d'arrondi de TVA" line is one of these).

Exactly once through both steps: the draft's create marks the outcome unknown first, like any
create, so after a crash the next attempt finds the draft by ``api_id`` and carries on from step 2;
a finalise whose outcome is unknown is settled the same way, by reading the invoice back (a draft
still: finalise it; final: done).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from bridge.db.models import InvoiceShape
from bridge.facturation.totals import (
    VAT_QUANTUM,
    compute_totals,
    decimal_or_none,
    line_total,
    to_decimal,
)

DEFAULT_CONFIRMATIONS = 20
MISMATCH = "total mismatch"


def invoice_shape(body: Mapping[str, Any]) -> str:
    """The shape of the invoice ``body`` would create, e.g. ``invoice EUR 0.055+0.200 rounding``."""
    items = [i for i in body.get("items") or [] if not i.get("optional") and not i.get("style")]
    totals = compute_totals(items)
    kind = "credit" if totals.total_with_vat < 0 else "invoice"
    currency = str(body.get("currency") or "EUR").upper()
    rates = "+".join(str(r) for r in sorted(totals.vat_by_rate)) or "none"
    return f"{kind} {currency} {rates} {'rounding' if _rounding_in_play(items) else 'exact'}"


def _rounding_in_play(items: list[Mapping[str, Any]]) -> bool:
    per_line: dict[Decimal, Decimal] = {}
    for item in items:
        exact = to_decimal(item.get("quantity", 1)) * to_decimal(item.get("unit_price"))
        if exact != line_total(item.get("quantity", 1), item.get("unit_price")):
            return True
        rate = to_decimal(item.get("vat")).quantize(VAT_QUANTUM)
        per_line[rate] = per_line.get(rate, Decimal(0)) + compute_totals([item]).total_vat
    return per_line != compute_totals(items).vat_by_rate


def total_mismatch(meta: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, str] | None:
    """Both totals when the API's ``total_with_vat`` differs from the amount paid, else ``None``."""
    expected = decimal_or_none(meta.get("expected_total_with_vat"))
    actual = decimal_or_none(data.get("total_with_vat"))
    if expected is None or actual is None or expected == actual:
        return None
    return {
        "expected_total_with_vat": str(expected),
        "actual_total_with_vat": str(actual),
        "currency": str(meta.get("currency") or data.get("currency") or ""),
    }


def draft_mismatch(meta: Mapping[str, Any], draft: Mapping[str, Any]) -> dict[str, str] | None:
    """Like :func:`total_mismatch`, but a draft whose total can't be read is not confirmed either."""
    if decimal_or_none(draft.get("total_with_vat")) is None:
        return {
            "expected_total_with_vat": str(meta.get("expected_total_with_vat")),
            "actual_total_with_vat": "unknown",
            "currency": str(meta.get("currency") or ""),
        }
    return total_mismatch(meta, draft)


def mismatch_error(mismatch: Mapping[str, str], draft_id: int | None) -> str:
    """The dead command's error: both totals and the draft kept for a human."""
    return (
        f"{MISMATCH}: paid {mismatch['expected_total_with_vat']} {mismatch['currency']}".strip()
        + ", "
        f"Facturation.pro computed {mismatch['actual_total_with_vat']}; "
        f"draft invoice {draft_id} kept, not finalised: correct and finalise it, or delete it"
    )


def is_draft(record: Mapping[str, Any]) -> bool:
    return record.get("draft") is True


class ShapeBook:
    """The confirmations of each shape on one firm (``invoice_shapes``)."""

    def __init__(self, firm: str, confirmations: int = DEFAULT_CONFIRMATIONS) -> None:
        self.firm = firm
        self.confirmations = confirmations

    def direct(self, session: Session, shape: str) -> bool:
        """May an invoice of ``shape`` be created final in one call?"""
        if self.confirmations <= 0:
            return True
        confirmed = session.execute(
            select(InvoiceShape.confirmed).where(
                InvoiceShape.firm == self.firm, InvoiceShape.shape == shape
            )
        ).scalar()
        return (confirmed or 0) >= self.confirmations

    def record(self, session: Session, shape: str, *, matched: bool, now: datetime) -> None:
        """One more draft of ``shape`` checked: a match counts, a mismatch starts again from 0."""
        dialect = session.get_bind().dialect.name
        ins: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
        stmt = ins(InvoiceShape).values(
            firm=self.firm,
            shape=shape,
            confirmed=1 if matched else 0,
            mismatched=0 if matched else 1,
            created_at=now,
            updated_at=now,
        )
        table = InvoiceShape.__table__.c
        changes = (
            {"confirmed": table.confirmed + 1}
            if matched
            else {"confirmed": 0, "mismatched": table.mismatched + 1}
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["firm", "shape"], set_={**changes, "updated_at": now}
            )
        )


def confirmed(
    shapes: ShapeBook | None, sessions: sessionmaker[Session], body: Mapping[str, Any]
) -> bool:
    """May the invoice ``body`` be created final at once (its shape confirmed on the firm)?"""
    if shapes is None:
        return True
    with sessions() as session:
        return shapes.direct(session, invoice_shape(body))


def shape_hook(
    shapes: ShapeBook | None, shape: str, matched: bool, clock: Callable[[], datetime]
) -> Callable[[Session], None] | None:
    """Count one draft of ``shape`` checked, in the transaction that records the command."""
    if shapes is None:
        return None
    return lambda session: shapes.record(session, shape, matched=matched, now=clock())
