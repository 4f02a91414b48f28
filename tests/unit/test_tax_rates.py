"""The EU VAT rates table (bridge/tax/rates.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bridge.mapping.functions import FRENCH_VAT_RATES
from bridge.tax.rates import EU_VAT_RATES, RATE_QUANTUM, is_rate_of, rates_of

MEMBER_STATES = {
    *("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU"),
    *("IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"),
}


def test_the_27_member_states_and_no_other() -> None:
    assert set(EU_VAT_RATES) == MEMBER_STATES


def test_every_rate_is_a_fraction_to_the_thousandth_and_none_is_zero() -> None:
    for country in MEMBER_STATES:
        rates = rates_of(country)
        assert rates, country
        assert len(set(rates)) == len(rates), country
        for rate in rates:
            assert rate.as_tuple().exponent == -3, (country, rate)
            assert rate.quantize(RATE_QUANTUM) == rate
            assert Decimal(0) < rate < Decimal("0.300"), (country, rate)
        assert rates[0] >= Decimal("0.150"), country  # the directive's floor for a standard rate
        assert rates[0] == max(rates), country


@pytest.mark.parametrize(
    ("country", "expected"),
    [
        ("FI", ("0.255", "0.135", "0.100")),
        ("EE", ("0.240", "0.130", "0.090")),
        ("SK", ("0.230", "0.190", "0.050")),
        ("RO", ("0.210", "0.110")),
        ("LT", ("0.210", "0.120", "0.050")),
        ("DE", ("0.190", "0.070")),
        ("DK", ("0.250",)),
        ("IE", ("0.230", "0.135", "0.090", "0.048")),
        ("LU", ("0.170", "0.140", "0.080", "0.030")),
        ("AT", ("0.200", "0.130", "0.100", "0.049")),
    ],
)
def test_recent_changes(country: str, expected: tuple[str, ...]) -> None:
    assert rates_of(country) == tuple(Decimal(r) for r in expected)


def test_france_is_the_mapping_functions_table_without_zero() -> None:
    assert rates_of("FR") == tuple(r for r in FRENCH_VAT_RATES if r)
    assert Decimal("0.085") in rates_of("FR")  # overseas


def test_greece_answers_to_el_and_gr_and_codes_are_case_blind() -> None:
    assert rates_of("EL") == rates_of("GR") == rates_of("gr") == rates_of(" el ")
    assert rates_of("GR")[0] == Decimal("0.240")


@pytest.mark.parametrize("country", ["US", "GB", "XI", "CH", "NO", "", "FRA", "EU"])
def test_outside_the_eu_no_rates(country: str) -> None:
    assert rates_of(country) == ()
    assert not is_rate_of(country, Decimal("0.200"))


def test_is_rate_of() -> None:
    assert is_rate_of("DE", Decimal("0.19"))
    assert is_rate_of("DE", Decimal("0.190"))
    assert is_rate_of("EL", Decimal("0.060"))
    assert not is_rate_of("DE", Decimal("0.200"))
    assert not is_rate_of("DE", Decimal("0.1901"))
    assert not is_rate_of("FR", Decimal("0.000"))
    assert not is_rate_of("DE", Decimal("NaN"))
    assert not is_rate_of("DE", Decimal("Infinity"))
