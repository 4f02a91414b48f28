"""Properties of refunds credited by amount (Stripe Refunds API, Dashboard, Checkout refunds).

For any invoice (lines at several French VAT rates, any quantities and prices, a zero-decimal
currency too) and any refunds of it: each credit note is exact to the cent, its VAT split adds up
to the refund, and several partial refunds never credit more in total than was paid.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.facturation.totals import compute_totals
from bridge.mapping.money import SaleLine, build_items
from bridge.mapping.refunds import proportional_credit_items, rate_totals
from bridge.outbox.commands import CommandKind
from bridge.outbox.credit_policy import CreditAction, CreditSibling, decide_credit

EXAMPLES = settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
RATES = [Decimal(r) for r in ("0.200", "0.100", "0.055", "0.021", "0.000")]


@st.composite
def invoices(draw: st.DrawFn) -> tuple[list[dict[str, str]], Decimal]:
    """Exact invoice items (as the bridge builds them) and the currency unit."""
    unit = draw(st.sampled_from([Decimal("0.01"), Decimal(1)]))
    lines = []
    for _ in range(draw(st.integers(1, 5))):
        rate = draw(st.sampled_from(RATES))
        net = Decimal(draw(st.integers(1, 500_000))) * unit
        tax = (net * rate).quantize(unit)
        quantity = Decimal(draw(st.integers(1, 12)))
        lines.append(SaleLine("article", quantity, gross=net + tax, tax=tax, rate=rate))
    return build_items(lines, currency_unit=unit), unit


@st.composite
def refunds(draw: st.DrawFn) -> tuple[list[dict[str, str]], Decimal, list[Decimal]]:
    """An invoice and 1-4 refunds of it that, together, never exceed what was paid."""
    items, unit = draw(invoices())
    paid = compute_totals(items).total_with_vat
    left, amounts = paid, []
    for _ in range(draw(st.integers(1, 4))):
        if left < unit:
            break
        amount = Decimal(draw(st.integers(1, int(left / unit)))) * unit
        amounts.append(amount)
        left -= amount
    return items, unit, amounts


@EXAMPLES
@given(refunds())
def test_each_credit_note_is_exact_and_split_like_the_sale(
    case: tuple[list[dict[str, str]], Decimal, list[Decimal]],
) -> None:
    items, unit, amounts = case
    invoiced = rate_totals(items)
    for amount in amounts:
        credit = proportional_credit_items(items, amount, currency_unit=unit)
        totals = compute_totals(credit)
        assert totals.total_with_vat == -amount  # exact to the cent
        split = rate_totals(credit)
        assert sum((gross for gross, _ in split.values()), Decimal(0)) == -amount
        for rate, (gross, _vat) in split.items():  # rates of the sale only (or the 0 % gap line)
            assert rate in invoiced or rate == 0
            if rate in invoiced and rate != 0:
                share = amount * invoiced[rate][0] / sum(g for g, _ in invoiced.values())
                assert abs(-gross - share) <= unit + Decimal("0.02")  # proportional, to a unit


@EXAMPLES
@given(refunds(), st.integers(0, 10_000))
def test_partial_refunds_never_credit_more_than_was_paid(
    case: tuple[list[dict[str, str]], Decimal, list[Decimal]], extra: int
) -> None:
    """The credit policy, fed each credit's amount as it is sent, lets exactly the refunds that
    fit through, and refuses one more that would go beyond what was paid."""
    items, unit, amounts = case
    paid = compute_totals(items).total_with_vat
    done: list[CreditSibling] = []
    for i, amount in enumerate(amounts):
        decision = decide_credit(
            CommandKind.PARTIAL_CREDIT_NOTE, "sale", done, amount=amount, paid=paid
        )
        assert decision.action is CreditAction.PROCEED
        credit = proportional_credit_items(items, amount, currency_unit=unit)
        assert compute_totals(credit).total_with_vat == -amount
        done.append(CreditSibling(CommandKind.PARTIAL_CREDIT_NOTE, f"r{i}", True, amount))
    credited_total = sum(amounts, Decimal(0))
    assert credited_total <= paid
    over = paid - credited_total + Decimal(extra + 1) * unit
    refused = decide_credit(CommandKind.PARTIAL_CREDIT_NOTE, "sale", done, amount=over, paid=paid)
    assert refused.action is CreditAction.DEAD
    assert "more than was paid" in refused.reason
