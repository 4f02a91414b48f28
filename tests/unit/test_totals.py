from __future__ import annotations

from decimal import Decimal

import pytest

from bridge.facturation.totals import compute_totals, line_total, to_decimal


def test_reference_example_two_lines_at_20_percent() -> None:
    items = [
        {"quantity": "1.0", "unit_price": "500", "vat": "0.200"},
        {"quantity": "1.0", "unit_price": "200", "vat": "0.200"},
    ]
    totals = compute_totals(items)
    assert totals.total == Decimal("700.00")
    assert totals.vat_by_rate == {Decimal("0.200"): Decimal("140.00")}
    assert totals.total_with_vat == Decimal("840.00")


def test_vat_is_per_rate_on_the_sum_of_rounded_lines() -> None:
    # 3 x 0.333 = 0.999 -> 1.00 per line; VAT on 2.00 at 5.5 % = 0.11 (not 2 x 0.055 -> 0.12)
    items = [
        {"quantity": "3", "unit_price": "0.333", "vat": "0.055"},
        {"quantity": "3", "unit_price": "0.333", "vat": "0.055"},
        {"quantity": "1", "unit_price": "15.750", "vat": "0.200"},
    ]
    totals = compute_totals(items)
    assert totals.vat_by_rate == {
        Decimal("0.055"): Decimal("0.11"),
        Decimal("0.200"): Decimal("3.15"),
    }
    assert totals.total_with_vat == Decimal("2.00") + Decimal("0.11") + Decimal("15.75") + Decimal(
        "3.15"
    )


def test_half_up_rounding_and_optional_lines() -> None:
    assert line_total("1", "0.005") == Decimal("0.01")
    assert line_total("-1", "0.005") == Decimal("-0.01")
    totals = compute_totals([{"quantity": 1, "unit_price": "10", "vat": "0.2", "optional": True}])
    assert totals.total_with_vat == Decimal(0)


def test_floats_are_refused() -> None:
    with pytest.raises(TypeError):
        to_decimal(0.1)
