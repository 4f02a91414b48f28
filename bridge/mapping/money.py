"""Exact invoice lines: what was charged, per VAT rate, as Facturation.pro lines that add up to it.

The source (Stripe, Shopify) tells, for each line, the amount charged including VAT (``gross``)
and the VAT in it (``tax``). Facturation.pro only takes a unit price excluding VAT (3 decimals),
a quantity and a rate, and computes the totals itself (:mod:`bridge.facturation.totals`). A naive
``gross / (1 + rate)`` is where the well-known one-cent gaps come from. The strategy, per rate:

1. **The VAT is the VAT collected.** Choose the rate's base ``B`` (sum of line totals excluding
   VAT) so that Facturation.pro's ``round(B * rate)`` equals the tax the source charged, and as
   close as possible to ``gross - tax``. Usually ``B == gross - tax`` exactly.
2. **Lines add up to the base.** Each line gets the unit price whose ``quantity * unit_price``
   rounds to its share; with quantities above 10 a 3-decimal price can miss by a few cents, so
   the difference goes to the rate's quantity-1 line (shipping, a single item), or, if there is
   none, to an explicit line titled "Ajustement d'arrondi" at that rate.
3. **Nothing is silent.** Where the source's VAT is not ``round(base * rate)`` of any base that
   keeps the total (its per-line rounding differs from a per-rate one), the remaining cents go to
   one explicit 0 % line titled "Écart d'arrondi de TVA".

So the invoice's total including VAT equals the amount charged and each rate's VAT equals the VAT
charged, to the cent, always; :func:`build_items` checks both with ``compute_totals`` before
returning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bridge.facturation.totals import (
    CENT,
    UNIT_PRICE_QUANTUM,
    VAT_QUANTUM,
    compute_totals,
    round_cent,
)

ROUNDING_TITLE = "Ajustement d'arrondi"
VAT_GAP_TITLE = "Écart d'arrondi de TVA"
ZERO = Decimal(0)


class MoneyError(ValueError):
    """The amounts cannot be made into an exact invoice (e.g. VAT charged at a 0 % rate)."""


@dataclass(frozen=True, slots=True)
class SaleLine:
    """One charged line: ``gross`` includes VAT and every discount, ``tax`` is the VAT in it."""

    title: str
    quantity: Decimal
    gross: Decimal
    tax: Decimal
    rate: Decimal  # 0.200
    fields: Mapping[str, Any] = field(default_factory=dict)  # extra item fields (category…)
    kind: str | None = None  # goods, services or other (bridge.tax.nature); None: not said

    @property
    def net(self) -> Decimal:
        return self.gross - self.tax


def build_items(
    lines: Sequence[SaleLine],
    *,
    negate: bool = False,
    currency_unit: Decimal = CENT,
    rounding_title: str = ROUNDING_TITLE,
    vat_gap_title: str = VAT_GAP_TITLE,
    keep_source_vat: bool = True,
) -> list[dict[str, Any]]:
    """Facturation.pro ``items`` whose totals equal the lines' gross and tax exactly.

    ``negate`` makes credit-note lines (negative unit prices) for the same amounts.
    ``keep_source_vat=False`` trades the VAT's exactness for fewer lines: per rate, a base whose
    Facturation.pro total equals the amount charged is used when one exists (its VAT may then
    differ by a cent from the source's per-line rounding), and the 0 % line only when none does.
    ``currency_unit`` is the source's rounding unit (1 for JPY): it bounds how far the source's
    per-line tax rounding may stray from one rate's VAT before it is an error, not rounding.
    """
    by_rate: dict[Decimal, list[SaleLine]] = {}
    for line in lines:
        by_rate.setdefault(line.rate.quantize(VAT_QUANTUM), []).append(line)
    items: list[dict[str, Any]] = []
    vat_gap = ZERO
    for rate, group in by_rate.items():
        gross = sum((line.gross for line in group), ZERO)
        tax = sum((line.tax for line in group), ZERO)
        base = None if keep_source_vat else base_for_total(gross - tax, gross, rate)
        if base is None:
            base = base_for(gross - tax, tax, rate)
        if abs(gross - tax - base) > _gap_tolerance(len(group), rate, currency_unit):
            raise MoneyError(
                f"VAT {tax} at rate {rate} does not match its base {gross - tax}: "
                "the source's tax is not this rate of these lines"
            )
        vat_gap += gross - base - round_cent(base * rate)
        items.extend(_rate_items(group, rate, base, rounding_title))
    if vat_gap:
        items.append(_item(vat_gap_title, Decimal(1), vat_gap, ZERO.quantize(VAT_QUANTUM), {}))
    _check(lines, items, check_vat=keep_source_vat)
    if negate:
        for item in items:
            item["unit_price"] = _price_str(-Decimal(item["unit_price"]))
    return items


def base_for(net: Decimal, tax: Decimal, rate: Decimal) -> Decimal:
    """The base (in cents) nearest ``net`` whose VAT, rounded the Facturation.pro way, is ``tax``."""
    if rate == 0:
        if tax != 0:
            raise MoneyError(f"VAT {tax} charged on lines at a 0 % rate")
        return net
    if round_cent(net * rate) == tax:
        return net
    centre = round_cent(tax / rate)
    reach = int((CENT / rate) / CENT) + 2
    candidates = [centre + CENT * k for k in range(-reach, reach + 1)]
    fitting = [b for b in candidates if round_cent(b * rate) == tax]
    if not fitting:
        raise MoneyError(f"no base gives VAT {tax} at rate {rate}")
    return min(fitting, key=lambda b: (abs(b - net), b))


def base_for_total(net: Decimal, gross: Decimal, rate: Decimal) -> Decimal | None:
    """The base nearest ``net`` with ``base + round(base * rate) == gross``, if there is one."""
    if rate == 0:
        return None
    reach = int((CENT / rate) / CENT) + 2
    candidates = [net + CENT * k for k in range(-reach, reach + 1)]
    fitting = [b for b in candidates if b + round_cent(b * rate) == gross]
    return min(fitting, key=lambda b: (abs(b - net), b)) if fitting else None


def _gap_tolerance(lines: int, rate: Decimal, currency_unit: Decimal) -> Decimal:
    """How far per-line rounding at the source can move the base: half a unit of tax per line."""
    if rate == 0:
        return ZERO
    return (currency_unit / 2 * (lines + 1)) / rate + CENT


def unit_price_for(quantity: Decimal, total: Decimal) -> Decimal:
    """The 3-decimal unit price whose ``quantity * price``, rounded to the cent, is nearest ``total``."""
    first = (total / quantity).quantize(UNIT_PRICE_QUANTUM, rounding=ROUND_HALF_UP)
    if round_cent(quantity * first) == total:
        return first  # already exact: no option below can be nearer (the usual case)
    options = [first + UNIT_PRICE_QUANTUM * k for k in (0, -1, 1, -2, 2, -3, 3)]
    return min(options, key=lambda u: abs(round_cent(quantity * u) - total))


def _rate_items(
    group: Sequence[SaleLine], rate: Decimal, base: Decimal, rounding_title: str
) -> list[dict[str, Any]]:
    absorber = _absorber(group)
    placed: dict[int, dict[str, Any]] = {}
    shortfall = base - sum((line.net for line in group), ZERO)
    for index, line in enumerate(group):
        if index == absorber:
            continue
        quantity = line.quantity or Decimal(1)
        price = unit_price_for(quantity, line.net)
        shortfall += line.net - round_cent(quantity * price)
        placed[index] = _item(line.title, quantity, price, rate, line.fields)
    line = group[absorber]
    quantity = line.quantity or Decimal(1)
    target = line.net + shortfall
    price = unit_price_for(quantity, target)
    placed[absorber] = _item(line.title, quantity, price, rate, line.fields)
    items = [placed[i] for i in range(len(group))]
    missing = target - round_cent(quantity * price)
    if missing:
        items.append(_item(rounding_title, Decimal(1), missing, rate, {}))
    return items


def _absorber(group: Sequence[SaleLine]) -> int:
    """The line that takes the rate's odd cents: the largest quantity-1 line, else the first."""
    singles = [i for i, line in enumerate(group) if line.quantity in (0, 1)]
    if not singles:
        return 0
    return max(singles, key=lambda i: (abs(group[i].net), -i))


def _item(
    title: str, quantity: Decimal, price: Decimal, rate: Decimal, extra: Mapping[str, Any]
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "title": title,
        "quantity": _quantity_str(quantity),
        "unit_price": _price_str(price),
        "vat": str(rate.quantize(VAT_QUANTUM)),
    }
    item.update({k: v for k, v in extra.items() if v is not None})
    return item


def _price_str(price: Decimal) -> str:
    return str(price.quantize(UNIT_PRICE_QUANTUM) + 0)  # "+ 0" turns -0.000 into 0.000


def _quantity_str(quantity: Decimal) -> str:
    text = format(quantity.normalize(), "f")
    return text


def _check(
    lines: Sequence[SaleLine], items: Sequence[Mapping[str, Any]], *, check_vat: bool
) -> None:
    """Fail loudly if the items do not reproduce the charged amounts (a bug, never expected)."""
    totals = compute_totals(items)
    gross = sum((line.gross for line in lines), ZERO)
    if totals.total_with_vat != gross:
        raise MoneyError(f"lines total {totals.total_with_vat}, expected {gross}")
    if not check_vat:
        return
    for rate, vat_amount in totals.vat_by_rate.items():
        charged = sum((ln.tax for ln in lines if ln.rate.quantize(VAT_QUANTUM) == rate), ZERO)
        if vat_amount != charged:
            raise MoneyError(f"VAT at {rate} is {vat_amount}, expected {charged}")
