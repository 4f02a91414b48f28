"""A refund's credit note, split like the sale: exact lines for an amount given back.

A refund often says only how much was given back (Stripe's Refunds API and Dashboard, a Checkout
payment): the credit note must still carry VAT, split like the original invoice as Stripe Tax does.
:func:`proportional_credit_items` takes the original invoice's Facturation.pro ``items`` (as they
were sent) and the amount refunded including VAT, and returns credit-note items (negative unit
prices) such that, computed the Facturation.pro way (:mod:`bridge.facturation.totals`):

- the credit note's total including VAT is exactly minus the amount refunded;
- the amount is shared between the invoice's VAT rates in proportion to each rate's total including
  VAT, to the currency's unit (largest remainder: the shares add up exactly);
- each rate's lines plus their VAT equal its share, the VAT being the rate applied to the lines
  (within a cent of the share's proportional part of the rate's VAT); where no base makes a share
  exact at its rate, :func:`bridge.mapping.money.build_items` puts the odd cent on an explicit
  0 % line, never silently.

Pure and source-independent: Stripe and Shopify refunds use it alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from bridge.facturation.totals import CENT, VAT_QUANTUM, compute_totals
from bridge.mapping.money import MoneyError, SaleLine, base_for_total, build_items

REFUND_TITLE = "Remboursement (TVA {rate} %)"


def rate_totals(items: Sequence[Mapping[str, Any]]) -> dict[Decimal, tuple[Decimal, Decimal]]:
    """Per VAT rate of ``items``: (total including VAT, VAT), as Facturation.pro computes them."""
    totals = compute_totals(items)
    out: dict[Decimal, tuple[Decimal, Decimal]] = {}
    for rate, vat_amount in totals.vat_by_rate.items():
        base = compute_totals(
            [i for i in items if Decimal(str(i.get("vat"))).quantize(VAT_QUANTUM) == rate]
        ).total
        out[rate] = (base + vat_amount, vat_amount)
    return out


def share(amount: Decimal, weights: Sequence[Decimal], unit: Decimal = CENT) -> list[Decimal]:
    """``amount`` split in proportion to ``weights``, in multiples of ``unit``, adding up exactly.

    Each share is the floor of its exact part; the units left go to the largest remainders (ties:
    the earlier weight). ``amount`` must be a multiple of ``unit`` and the weights' sum non-zero.
    """
    total = sum(weights, Decimal(0))
    if total == 0:
        raise MoneyError("nothing to split in proportion to: the original total is 0")
    units = amount / unit
    if units != units.to_integral_value():
        raise MoneyError(f"{amount} is not a multiple of the currency unit {unit}")
    exact = [units * w / total for w in weights]
    floors = [e.to_integral_value(rounding=ROUND_FLOOR) for e in exact]
    left = int(units - sum(floors, Decimal(0)))
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [f * unit for f in floors]


def proportional_credit_items(
    original: Sequence[Mapping[str, Any]],
    refunded: Decimal,
    *,
    currency_unit: Decimal = CENT,
    title: str = REFUND_TITLE,
) -> list[dict[str, Any]]:
    """Credit-note items for ``refunded`` (> 0, including VAT), split like ``original``'s rates."""
    if refunded <= 0:
        raise MoneyError(f"amount refunded must be positive, got {refunded}")
    per_rate = rate_totals(original)
    paid = sum((gross for gross, _ in per_rate.values()), Decimal(0))
    if refunded > paid:
        raise MoneyError(f"refund of {refunded} is more than the {paid} invoiced")
    rates = [rate for rate, (gross, _) in per_rate.items() if gross != 0]
    shares = _reachable(rates, share(refunded, [per_rate[r][0] for r in rates], currency_unit))
    lines = []
    for rate, part in zip(rates, shares, strict=True):
        if part == 0:
            continue
        gross, vat_amount = per_rate[rate]
        tax = (part * vat_amount / gross).quantize(CENT, rounding=ROUND_HALF_UP)
        percent = format((rate * 100).normalize(), "f")
        lines.append(
            SaleLine(title.format(rate=percent), Decimal(1), gross=part, tax=tax, rate=rate)
        )
    # keep_source_vat=False: the VAT here is a proportional estimate, not VAT a source charged, so
    # a base that makes the share exact at its own rate is preferred to a 0 % "écart" line.
    items = build_items(lines, negate=True, currency_unit=currency_unit, keep_source_vat=False)
    if compute_totals(items).total_with_vat != -refunded:  # build_items checks it; be loud anyway
        raise MoneyError(f"credit lines do not total -{refunded}")
    return items


def _exact_at(rate: Decimal, gross: Decimal) -> bool:
    """Some base plus its VAT at ``rate`` (rounded the Facturation.pro way) makes ``gross``."""
    net = (gross / (1 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)
    return rate == 0 or base_for_total(net, gross, rate) is not None


def _reachable(rates: Sequence[Decimal], shares: list[Decimal]) -> list[Decimal]:
    """Move a cent between two rates' shares where that makes both exact at their rate (at 20 %,
    4 € 41 is no base plus its VAT: 3.67 + 0.73 = 4.40, 3.68 + 0.74 = 4.42), keeping the sum."""
    out = list(shares)
    for i, rate in enumerate(rates):
        if out[i] == 0 or _exact_at(rate, out[i]):
            continue
        for j, other in enumerate(rates):
            if j == i:
                continue
            for step in (CENT, -CENT):
                a, b = out[i] + step, out[j] - step
                if a > 0 and b >= 0 and _exact_at(rate, a) and (b == 0 or _exact_at(other, b)):
                    out[i], out[j] = a, b
                    break
            else:
                continue
            break
    return out
