"""The named functions mapping files call: each one, with its edge cases."""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

import jmespath
import pytest

from bridge.mapping.functions import (
    FunctionError,
    MappingFunctions,
    country,
    currency_exponent,
    decimal_str,
    dsum,
    dsumprod,
    email_key,
    fmt,
    is_eu,
    local_date,
    minor,
    shopify_refund_taxes_included,
    text,
    vat,
    vat_rate,
    vat_rate_of_gross,
)

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [(1999, "eur", "19.99"), (1999, "JPY", "1999"), (1990, "kwd", "1.990"), (0, "usd", "0.00")],
)
def test_minor_units_follow_the_currency_exponent(
    amount: int, currency: str, expected: str
) -> None:
    assert minor(amount, currency) == Decimal(expected)
    assert str(minor(amount, currency)) == expected


def test_minor_refuses_floats_and_fractions() -> None:
    with pytest.raises(FunctionError):
        minor(19.99, "eur")
    with pytest.raises(FunctionError):
        minor(Decimal("19.5"), "eur")
    assert currency_exponent("xof") == 0


def test_sums_are_exact() -> None:
    assert dsum(["0.1", "0.2", None, 3]) == Decimal("3.3")
    assert dsumprod([["9.99", 3], ["1.50", 2]]) == Decimal("32.97")
    assert decimal_str("3.5") == "3.50"
    with pytest.raises(FunctionError):
        dsum([0.1])


def test_local_date_is_the_merchant_calendar_day() -> None:
    # 23:30 UTC on 31 May is 1 June in Paris (summer time, UTC+2).
    assert local_date(1780270200, PARIS) == "2026-06-01"
    assert local_date("2026-05-31T23:30:00Z", PARIS) == "2026-06-01"
    assert local_date("2026-01-31T23:30:00+00:00", PARIS) == "2026-02-01"
    assert local_date(None, PARIS) is None
    with pytest.raises(FunctionError):
        local_date("2026-05-31T23:30:00", PARIS)  # no zone: ambiguous


def test_country_and_eu() -> None:
    assert country(" fr ") == "FR"
    assert country("France") is None
    assert country(None) is None
    assert is_eu("de")
    assert not is_eu("GB")


@pytest.mark.parametrize(
    ("tax", "base", "currency", "expected"),
    [
        ("6.50", "32.50", "EUR", "0.200"),
        ("1.17", "21.33", "EUR", "0.055"),  # per-line rounding at the source
        ("0.21", "10.00", "EUR", "0.021"),
        ("0", "10.00", "EUR", "0.000"),
        ("91", "909", "JPY", "0.100"),
        ("0", "0", "EUR", "0.000"),
    ],
)
def test_vat_rate_snaps_to_a_known_rate(tax: str, base: str, currency: str, expected: str) -> None:
    assert vat_rate(tax, base, currency) == expected


def test_vat_rate_refuses_a_rate_it_does_not_know() -> None:
    with pytest.raises(FunctionError, match="not one of the known VAT rates"):
        vat_rate("6.00", "100.00", "USD")  # 6 % is no French rate
    with pytest.raises(FunctionError):
        vat_rate("1.00", "0", "EUR")
    assert vat_rate("6.00", "100.00", "USD", [Decimal("0.06")]) == "0.060"
    assert vat_rate_of_gross("6.50", "39.00", "EUR") == "0.200"


def test_vat_writes_rates_the_facturation_way() -> None:
    assert vat(Decimal("0.2")) == "0.200"
    assert vat("5.5") == "0.055"
    assert vat(0) == "0.000"


def test_email_key_is_normalised_and_not_the_address() -> None:
    key = email_key(" Client@Example.ORG ")
    assert key == email_key("client@example.org")
    assert key is not None
    assert "example" not in key
    assert email_key("not an e-mail") is None


def test_text_and_fmt_keep_big_integers_exact() -> None:
    assert text(820982911946154508) == "820982911946154508"
    assert fmt("shopify:{}:order:{}", "s.myshopify.com", 820982911946154508) == (
        "shopify:s.myshopify.com:order:820982911946154508"
    )


def test_shopify_refund_taxes_included_reads_the_transactions() -> None:
    lines = [{"subtotal": "18.90", "total_tax": "3.15"}]
    paid_back = {"transactions": [{"kind": "refund", "status": "success", "amount": "18.90"}]}
    assert shopify_refund_taxes_included({"refund_line_items": lines, **paid_back})
    paid_back = {"transactions": [{"kind": "refund", "status": "success", "amount": "22.05"}]}
    assert not shopify_refund_taxes_included({"refund_line_items": lines, **paid_back})


def test_functions_are_callable_from_jmespath_with_tables() -> None:
    options = jmespath.Options(
        custom_functions=MappingFunctions(PARIS, {"modes": {"card": 2, "paypal": 1}})
    )
    data = {"pm": "paypal", "amount": 1999, "currency": "eur"}
    assert jmespath.search("table('modes', pm, `99`)", data, options=options) == 1
    assert jmespath.search("table('modes', 'cash', `99`)", data, options=options) == 99
    assert jmespath.search("minor(amount, currency)", data, options=options) == Decimal("19.99")
    with pytest.raises(FunctionError, match="no table"):
        jmespath.search("table('nope', pm, `1`)", data, options=options)
