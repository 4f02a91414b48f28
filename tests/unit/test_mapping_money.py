"""The exactness strategy: lines that Facturation.pro totals to exactly what was charged."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from bridge.facturation.totals import compute_totals
from bridge.mapping.money import (
    ROUNDING_TITLE,
    VAT_GAP_TITLE,
    MoneyError,
    SaleLine,
    base_for,
    build_items,
    unit_price_for,
)

D = Decimal


def line(gross: str, tax: str, rate: str, quantity: int = 1, title: str = "x") -> SaleLine:
    return SaleLine(title, D(quantity), D(gross), D(tax), D(rate))


def test_a_plain_inclusive_price_becomes_its_net_price() -> None:
    items = build_items([line("39.00", "6.50", "0.200")])
    assert items == [{"title": "x", "quantity": "1", "unit_price": "32.500", "vat": "0.200"}]


def test_the_classic_one_cent_gap_is_closed() -> None:
    # 3 x 9.99 incl. 20 %: a naive 8.325 -> 8.33 x 3 = 24.99 + 5.00 = 29.99, not 29.97.
    items = build_items([line("29.97", "5.00", "0.200", quantity=3)])
    totals = compute_totals(items)
    assert totals.total_with_vat == D("29.97")
    assert totals.total_vat == D("5.00")


def test_quantities_above_ten_get_an_explicit_rounding_line() -> None:
    # 47 x 0.37 net: no 3-decimal unit price gives 17.39 exactly for 47 units.
    items = build_items([line("20.87", "3.48", "0.200", quantity=47)])
    totals = compute_totals(items)
    assert totals.total_with_vat == D("20.87")
    assert totals.total_vat == D("3.48")
    assert all(Decimal(i["unit_price"]).as_tuple().exponent >= -3 for i in items)


def test_a_quantity_one_line_absorbs_odd_cents_before_a_rounding_line_is_added() -> None:
    items = build_items(
        [line("20.87", "3.48", "0.200", quantity=47), line("5.90", "0.98", "0.200")]
    )
    assert [i["title"] for i in items] == ["x", "x"]
    assert compute_totals(items).total_with_vat == D("26.77")


def test_per_line_vat_rounding_at_the_source_is_kept_with_an_explicit_zero_rate_line() -> None:
    # Two lines of 0.12 net whose VAT was rounded per line (0.02 + 0.02), where 20 % of the
    # rate's base 0.24 would be 0.05: the VAT charged (0.04) is kept, the cents are shown.
    lines = [line("0.14", "0.02", "0.200"), line("0.14", "0.02", "0.200")]
    items = build_items(lines)
    totals = compute_totals(items)
    assert totals.total_with_vat == D("0.28")
    assert totals.vat_by_rate[D("0.200")] == D("0.04")
    assert items[-1]["title"] == VAT_GAP_TITLE
    assert items[-1]["vat"] == "0.000"


def test_credit_notes_are_negative_and_exact() -> None:
    items = build_items(
        [line("18.90", "3.15", "0.200"), line("7.50", "0.39", "0.055")], negate=True
    )
    totals = compute_totals(items)
    assert totals.total_with_vat == D("-26.40")
    assert totals.total_vat == D("-3.54")
    assert all(D(i["unit_price"]) <= 0 for i in items)


def test_vat_at_a_zero_rate_is_refused() -> None:
    with pytest.raises(MoneyError, match="0 %"):
        build_items([line("12.00", "2.00", "0")])


def test_a_tax_unrelated_to_the_rate_is_refused() -> None:
    with pytest.raises(MoneyError, match="does not match"):
        build_items([line("598.94", "11.94", "0.060", quantity=3)])


def test_base_for_and_unit_price_for() -> None:
    assert base_for(D("32.50"), D("6.50"), D("0.200")) == D("32.50")
    assert base_for(D("0.02"), D("0.01"), D("0.200")) == D("0.03")
    price = unit_price_for(D(3), D("24.98"))
    assert price == D("8.327")
    assert ROUNDING_TITLE


def test_fewer_lines_when_the_source_vat_need_not_be_kept() -> None:
    lines = [line("0.14", "0.02", "0.200"), line("0.14", "0.02", "0.200")]
    items = build_items(lines, keep_source_vat=False)
    totals = compute_totals(items)
    assert totals.total_with_vat == D("0.28")
    assert totals.vat_by_rate[D("0.200")] == D("0.05")  # Facturation.pro's VAT on 0.23
    assert VAT_GAP_TITLE not in {i["title"] for i in items}


RATES = ["0.200", "0.100", "0.055", "0.021", "0.000"]


@st.composite
def charged_lines(draw: st.DrawFn) -> list[SaleLine]:
    out = []
    inclusive = draw(st.booleans())
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        rate = D(draw(st.sampled_from(RATES)))
        quantity = draw(st.integers(min_value=1, max_value=50))
        base = D(draw(st.integers(min_value=0, max_value=500_000))) / 100
        tax = (base * rate / (1 + rate) if inclusive else base * rate).quantize(D("0.01"))
        gross = base if inclusive else base + tax
        out.append(SaleLine("x", D(quantity), gross, tax, rate))
    return out


@settings(max_examples=2000, deadline=None)
@given(lines=charged_lines(), keep=st.booleans())
def test_any_charged_lines_total_exactly(lines: list[SaleLine], keep: bool) -> None:
    items = build_items(lines, keep_source_vat=keep)
    totals = compute_totals(items)
    assert totals.total_with_vat == sum((ln.gross for ln in lines), D(0))
    if keep:
        assert totals.total_vat == sum((ln.tax for ln in lines), D(0))
    else:
        event(f"VAT gap line: {VAT_GAP_TITLE in {i['title'] for i in items}}")
