"""The VAT decision, case by case: the invoice's country of VAT, its mention, or a refusal."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bridge.mapping.mentions import MENTIONS
from bridge.tax.decide import (
    GOODS,
    OTHER,
    SERVICES,
    Buyer,
    TaxLine,
    TaxPolicy,
    TaxRefusalError,
    decide,
)
from bridge.tax.numbers import VatNumber
from bridge.tax.vies import VatRegistryUnavailableError

DE_VAT = "DE 136 695 976"  # well-formed: DE and 9 digits
NORMAL = TaxPolicy()


def line(rate: str, tax: str = "0", kind: str | None = GOODS) -> TaxLine:
    return TaxLine(Decimal(rate), Decimal(tax), kind)


def test_a_french_consumer_sale_at_french_rates_is_french_vat_without_mention() -> None:
    case = decide(NORMAL, Buyer("FR"), [line("0.200", "2.00"), line("0.055", "0.11")])
    assert (case.vat_country, case.mention) == (None, None)


@pytest.mark.parametrize(
    ("country", "rates"),
    [("DE", ["0.190", "0.070"]), ("BE", ["0.210", "0.060"]), ("IT", ["0.220"])],
)
def test_a_consumer_in_another_eu_country_at_its_rates_is_that_country_s_vat(
    country: str, rates: list[str]
) -> None:
    case = decide(NORMAL, Buyer(country), [line(rate, "1.00") for rate in rates])
    assert case.vat_country == country
    assert case.mention is None


def test_the_destination_of_the_goods_is_where_the_consumer_s_vat_is_due() -> None:
    buyer = Buyer("FR", destination="DE")
    assert decide(NORMAL, buyer, [line("0.190", "1.90")]).vat_country == "DE"


def test_a_rate_both_countries_have_is_french_unless_the_firm_is_in_the_oss() -> None:
    italian = Buyer("IT")
    at_ten = [line("0.100", "1.00")]
    assert decide(NORMAL, italian, at_ten).vat_country is None
    assert decide(TaxPolicy(oss=True), italian, at_ten).vat_country == "IT"
    # 20 % is not an Italian rate: French VAT, registered or not (below the OSS threshold)
    assert decide(TaxPolicy(oss=True), italian, [line("0.200", "2.00")]).vat_country is None


def test_rates_of_neither_country_are_refused_with_the_rates_named() -> None:
    with pytest.raises(TaxRefusalError, match=r"VAT rates 19 % are not FR's \(customer in US\)"):
        decide(NORMAL, Buyer("US"), [line("0.190", "1.90")])
    with pytest.raises(TaxRefusalError, match="not FR's nor DE's"):
        decide(NORMAL, Buyer("DE"), [line("0.270", "2.70")])


@pytest.mark.parametrize(
    ("kinds", "names"),
    [
        ([GOODS], ["intra_eu_goods"]),
        ([SERVICES], ["eu_services"]),
        ([GOODS, SERVICES, OTHER], ["intra_eu_goods", "eu_services"]),
    ],
)
def test_an_eu_business_without_vat_gets_the_reverse_charge_mention_of_what_it_bought(
    kinds: list[str], names: list[str]
) -> None:
    buyer = Buyer("DE", business=True, vat_number=DE_VAT)
    case = decide(NORMAL, buyer, [line("0", kind=kind) for kind in kinds])
    assert case.mention == " ; ".join(MENTIONS[name] for name in names)
    assert case.vat_number is not None
    assert case.vat_number.text == "DE136695976"
    assert case.vat_country is None


def test_vat_charged_to_an_eu_business_is_refused() -> None:
    buyer = Buyer("DE", business=True, vat_number=DE_VAT)
    with pytest.raises(TaxRefusalError, match=r"reverse charge.*DE136695976"):
        decide(NORMAL, buyer, [line("0.190", "1.90")])


def test_a_malformed_or_foreign_vat_number_makes_no_reverse_charge() -> None:
    for number in ("DE12345", "BE0123456789"):  # too short; a Belgian number for a German firm
        buyer = Buyer("DE", business=True, vat_number=number)
        with pytest.raises(TaxRefusalError, match="no VAT on any line"):
            decide(NORMAL, buyer, [line("0")])
        assert decide(NORMAL, buyer, [line("0.190", "1.90")]).vat_country == "DE"


def test_the_shop_saying_reverse_charge_without_a_number_is_refused() -> None:
    buyer = Buyer("DE", business=True, exempt_by_source=True)
    with pytest.raises(TaxRefusalError, match="no valid VAT number"):
        decide(NORMAL, buyer, [line("0")])


def test_a_french_business_with_a_vat_number_is_not_reverse_charged() -> None:
    buyer = Buyer("FR", business=True, vat_number="FR40303265045")
    assert decide(NORMAL, buyer, [line("0.200", "2.00")]).vat_country is None
    with pytest.raises(TaxRefusalError, match="no VAT on any line"):
        decide(NORMAL, buyer, [line("0")])


def test_exports() -> None:
    goods = decide(NORMAL, Buyer("US"), [line("0"), line("0", kind=OTHER)])
    assert goods.mention == MENTIONS["export"]
    business = Buyer("CH", business=True)
    services = decide(NORMAL, business, [line("0", kind=SERVICES), line("0")])
    assert services.mention == f"{MENTIONS['export']} ; {MENTIONS['outside_eu_services']}"
    with pytest.raises(TaxRefusalError, match="no VAT on any line"):  # services to a consumer
        decide(NORMAL, Buyer("US"), [line("0", kind=SERVICES)])


def test_a_line_of_unknown_nature_is_not_guessed_when_the_mention_depends_on_it() -> None:
    with pytest.raises(TaxRefusalError, match="goods or services"):
        decide(NORMAL, Buyer("US"), [line("0", kind=None)])


def test_franchise_always_states_art_293_b() -> None:
    franchise = TaxPolicy(regime="franchise")
    for buyer in (Buyer("FR"), Buyer("DE", business=True, vat_number=DE_VAT), Buyer(None)):
        case = decide(franchise, buyer, [line("0.200", "2.00"), line("0")])
        assert case.mention == MENTIONS["franchise"]
        assert case.vat_country is None


def test_any_other_zero_invoice_takes_the_configured_mention_or_is_refused() -> None:
    exempt = TaxPolicy(fallback="Exonération de TVA, art. 261-4-4° du CGI")
    assert decide(exempt, Buyer("FR"), [line("0")]).mention == exempt.fallback
    with pytest.raises(TaxRefusalError, match="BRIDGE_ZERO_VAT_MENTION"):
        decide(NORMAL, Buyer(None), [line("0")])


def test_a_zero_rounded_vat_at_a_real_rate_is_taxed() -> None:
    """0.01 at 20 % carries 0.00 of VAT: still a taxed line, no mention needed."""
    assert decide(NORMAL, Buyer("FR"), [line("0.200", "0")]).mention is None


class Registry:
    def __init__(self, answer: bool | None) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def is_registered(self, number: VatNumber) -> bool:
        self.asked.append(number.text)
        if self.answer is None:
            raise VatRegistryUnavailableError("VIES: MS_UNAVAILABLE")
        return self.answer


def test_vies_is_asked_only_when_it_decides_the_case() -> None:
    buyer = Buyer("DE", business=True, vat_number=DE_VAT)
    registered = Registry(True)
    policy = TaxPolicy(registry=registered)
    assert decide(policy, buyer, [line("0")]).mention == MENTIONS["intra_eu_goods"]
    decide(policy, Buyer("FR"), [line("0.200", "2.00")])
    assert registered.asked == ["DE136695976"]
    with pytest.raises(TaxRefusalError, match="not registered according to VIES"):
        decide(TaxPolicy(registry=Registry(False)), buyer, [line("0")])
    with pytest.raises(VatRegistryUnavailableError):  # retryable: the event waits
        decide(TaxPolicy(registry=Registry(None)), buyer, [line("0")])


def test_goods_to_an_eu_business_are_exempt_only_when_they_leave_for_another_member_state() -> None:
    shipped = Buyer("DE", destination="CH", business=True, vat_number=DE_VAT)
    assert decide(NORMAL, shipped, [line("0")]).mention == MENTIONS["export"]
    kept_in_france = Buyer("DE", destination="FR", business=True, vat_number=DE_VAT)
    with pytest.raises(TaxRefusalError, match="must leave FR"):
        decide(NORMAL, kept_in_france, [line("0")])
    services = decide(NORMAL, kept_in_france, [line("0", kind=SERVICES)])
    assert services.mention == MENTIONS["eu_services"]  # taxed where the business is


def test_tips_vouchers_and_disbursements_alone_are_out_of_scope() -> None:
    for buyer in (Buyer("FR"), Buyer("DE", business=True, vat_number=DE_VAT), Buyer(None)):
        case = decide(NORMAL, buyer, [line("0", kind=OTHER), line("0", kind=OTHER)])
        assert case.mention == MENTIONS["out_of_scope"]


def test_a_vat_number_that_is_not_text_makes_no_reverse_charge() -> None:
    buyer = Buyer("DE", business=True, vat_number=136695976)  # type: ignore[arg-type]
    assert decide(NORMAL, buyer, [line("0.190", "1.90")]).vat_country == "DE"


def test_the_mapping_file_s_rates_are_the_firm_s() -> None:
    """A rate the file adds with vat_rates: (a change of law) is French VAT, not a refusal."""
    policy = TaxPolicy(home_rates=(Decimal("0.200"), Decimal("0.130")))
    assert decide(policy, Buyer("FR"), [line("0.130", "1.30")]).vat_country is None
    with pytest.raises(TaxRefusalError, match="are not FR's"):
        decide(NORMAL, Buyer("FR"), [line("0.130", "1.30")])
