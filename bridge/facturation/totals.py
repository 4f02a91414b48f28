"""How Facturation.pro computes an invoice's totals — the one place the bridge and the sandbox share.

Facturation.pro computes totals on the server; the bridge must predict them to the cent so that the
invoice equals what the customer paid. The rule is **an assumption, not documented upstream** (see
docs/architecture.md, "Money"):

1. each line's total excluding VAT is ``quantity * unit_price`` rounded to the cent;
2. VAT is computed **per rate** on the sum of those line totals, rounded to the cent;
3. the total including VAT is the sum of the line totals plus the VAT of every rate.

Rounding is half-up (commercial rounding). ``unit_price`` has at most 3 decimals and ``quantity`` 4;
``vat`` is a rate written as a fraction ("0.200" for 20 %). The worker reads ``total_with_vat`` back
from the API's answer and flags any difference with the amount charged, so a wrong assumption is
loud, never silent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
UNIT_PRICE_QUANTUM = Decimal("0.001")
QUANTITY_QUANTUM = Decimal("0.0001")
VAT_QUANTUM = Decimal("0.001")


def to_decimal(value: Any) -> Decimal:
    """A Decimal from an API value (string, int or Decimal); never from a float."""
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    if isinstance(value, Decimal):
        return value
    if value is None or value == "":
        return Decimal(0)
    return Decimal(str(value))


def decimal_or_none(value: Any) -> Decimal | None:
    """A Decimal from an API answer's value, or ``None`` when it is absent or not a number."""
    if value is None or isinstance(value, float | bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def round_cent(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_total(quantity: Any, unit_price: Any) -> Decimal:
    """A line's total excluding VAT, rounded to the cent."""
    return round_cent(to_decimal(quantity) * to_decimal(unit_price))


@dataclass(frozen=True, slots=True)
class InvoiceTotals:
    total: Decimal  # excluding VAT
    vat_by_rate: dict[Decimal, Decimal]  # rate ("0.200" as Decimal) -> VAT amount
    total_with_vat: Decimal

    @property
    def total_vat(self) -> Decimal:
        return sum(self.vat_by_rate.values(), Decimal(0))


def compute_totals(items: Iterable[Mapping[str, Any]]) -> InvoiceTotals:
    """Totals of invoice lines (``quantity``, ``unit_price``, ``vat``), the Facturation.pro way.

    Lines marked ``optional`` are not part of the total.
    """
    base_by_rate: dict[Decimal, Decimal] = {}
    for item in items:
        if item.get("optional"):
            continue
        rate = to_decimal(item.get("vat")).quantize(VAT_QUANTUM)
        total = line_total(item.get("quantity", 1), item.get("unit_price"))
        base_by_rate[rate] = base_by_rate.get(rate, Decimal(0)) + total
    vat_by_rate = {rate: round_cent(base * rate) for rate, base in base_by_rate.items()}
    total = sum(base_by_rate.values(), Decimal(0))
    return InvoiceTotals(
        total=total,
        vat_by_rate=vat_by_rate,
        total_with_vat=total + sum(vat_by_rate.values(), Decimal(0)),
    )
