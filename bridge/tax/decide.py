"""Which VAT case a sale is, and what its invoice must say: the country of its rates, its mention.

A French invoice is right for the accountant when its VAT is the VAT of the right country and, when
it carries none, it says why (CGI, annexe II, art. 242 nonies A). :func:`decide` takes what the
mapping read from the sale — the customer (country, business or not, VAT number), where it goes,
each line's rate, VAT and kind (goods or services) — and the deployment's choices, and gives:

- the invoice's ``vat_country`` when its rates are another EU country's (a one-stop-shop sale to a
  consumer there), else ``None`` (the firm's own country);
- its ``vat_exemption`` mention when every line is at 0 %: franchise en base, intra-EU supply of
  goods or services to a business with a valid VAT number (reverse charge), export outside the EU;
- or a :class:`TaxRefusalError` saying what the bridge will not guess: VAT charged to an EU business
  under reverse charge, rates that are neither the firm's country's nor the customer's, an invoice
  without VAT that nothing explains.

Pure: the one outside question, whether a VAT number is registered (VIES), is asked through the
:class:`~bridge.tax.vies.VatRegistry` given, only when the answer decides the case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from bridge.mapping.functions import EU_COUNTRIES, FRENCH_VAT_RATES
from bridge.mapping.mentions import FRANCHISE, MENTIONS
from bridge.tax.numbers import InvalidVatNumberError, VatNumber, parse_vat_number
from bridge.tax.rates import rates_of
from bridge.tax.vies import VatRegistry

GOODS = "goods"
SERVICES = "services"
OTHER = "other"  # a disbursement, a tip, a voucher: neither a supply of goods nor of services
KINDS = (GOODS, SERVICES, OTHER)


class TaxRefusalError(ValueError):
    """The sale can't be invoiced as it is; the message says why and what would settle it."""


@dataclass(frozen=True, slots=True)
class TaxPolicy:
    """The deployment's and the mapping file's choices (``BRIDGE_*`` settings, ``policy:``)."""

    regime: str = "normal"  # BRIDGE_VAT_REGIME: normal or franchise
    home: str = "FR"  # the firm's country (policy.reverse_charge.home_country)
    reverse_charge: bool = True  # policy.reverse_charge.enabled
    oss: bool = False  # BRIDGE_OSS: registered to the one-stop shop
    mentions: Mapping[str, str] = field(default_factory=lambda: dict(MENTIONS))
    fallback: str | None = (
        None  # the text of any other 0 % invoice (policy / BRIDGE_ZERO_VAT_MENTION)
    )
    registry: VatRegistry | None = None  # BRIDGE_VIES_URL
    home_rates: tuple[Decimal, ...] = FRENCH_VAT_RATES  # the mapping file's vat_rates


@dataclass(frozen=True, slots=True)
class Buyer:
    country: str | None  # billing country, ISO alpha-2
    destination: str | None = None  # where the goods go or the consumer is, if not ``country``
    business: bool = False
    vat_number: str | None = None
    exempt_by_source: bool = False  # the shop itself says reverse charge / tax exempt

    @property
    def place(self) -> str | None:
        return self.destination or self.country


@dataclass(frozen=True, slots=True)
class TaxLine:
    rate: Decimal
    tax: Decimal
    kind: str | None  # GOODS, SERVICES, OTHER; None: the mapping did not say


@dataclass(frozen=True, slots=True)
class TaxCase:
    vat_country: str | None = None
    mention: str | None = None
    vat_number: VatNumber | None = None  # the buyer's, checked, when it decided the case


def decide(policy: TaxPolicy, buyer: Buyer, lines: Sequence[TaxLine]) -> TaxCase:
    if policy.regime == FRANCHISE:
        return TaxCase(mention=policy.mentions[FRANCHISE])
    number = eu_vat_number(buyer, policy.home) if policy.reverse_charge else None
    taxed = [line for line in lines if line.tax != 0 or line.rate != 0]
    if taxed:
        if number is not None:
            raise TaxRefusalError(
                f"VAT was charged to an EU business customer under reverse charge "
                f"(VAT number {number.text}): the customer owes that VAT, not you; refund it "
                f"in the shop and invoice without VAT"
            )
        return TaxCase(
            vat_country=vat_country(policy, buyer, {line.rate for line in taxed if line.rate})
        )
    if all(line.kind == OTHER for line in lines):  # tips, vouchers, disbursements only
        return TaxCase(mention=policy.mentions["out_of_scope"])
    if number is not None:
        _check_registered(policy.registry, number)
        return TaxCase(
            mention=_reverse_charge_mention(policy, lines, number, buyer.place),
            vat_number=number,
        )
    if buyer.exempt_by_source and buyer.business and _in_eu_abroad(buyer.country, policy.home):
        raise TaxRefusalError(
            f"the shop sold without VAT to a business in {buyer.country} (reverse charge) but no "
            f"valid VAT number of that country was found ({buyer.vat_number or 'none'}): the "
            f"invoice must show it; add it to the customer and replay the event"
        )
    place = buyer.place
    if place is not None and place not in EU_COUNTRIES:
        exported = _export_mention(policy, lines, buyer)
        if exported is not None:
            return TaxCase(mention=exported)
    if policy.fallback:
        return TaxCase(mention=policy.fallback)
    raise TaxRefusalError(
        f"no VAT on any line and no legal reason for it (customer in {place or 'an unknown country'}"
        f"{', a business' if buyer.business else ''}): a French invoice without VAT must say why. "
        f"If you are under the franchise en base set BRIDGE_VAT_REGIME=franchise; if your sales are "
        f"exempt, set the mention with BRIDGE_ZERO_VAT_MENTION or the mapping's "
        f"policy.zero_vat_mention (see docs/tax.md)"
    )


def eu_vat_number(buyer: Buyer, home: str) -> VatNumber | None:
    """The buyer's VAT number when it makes the sale a reverse-charge one: a business in another
    EU country whose number is well-formed and of that country."""
    if not isinstance(buyer.vat_number, str) or not _in_eu_abroad(buyer.country, home):
        return None
    try:
        number = parse_vat_number(buyer.vat_number)
    except InvalidVatNumberError:
        return None
    return number if _same_country(number.country, buyer.country) else None


def vat_country(policy: TaxPolicy, buyer: Buyer, rates: Iterable[Decimal]) -> str | None:
    """The country whose VAT the invoice's rates are: ``None`` for the firm's own country."""
    charged = sorted(set(rates))
    home_rates = policy.home_rates if policy.home == "FR" else rates_of(policy.home)
    at_home = all(rate in home_rates for rate in charged)
    place = buyer.place
    if place is not None and _in_eu_abroad(place, policy.home):
        abroad = all(rate in rates_of(place) for rate in charged)
        if abroad and (policy.oss or not at_home):
            return place
    if at_home:
        return None
    shown = ", ".join(f"{(rate * 100).normalize():f} %" for rate in charged)
    raise TaxRefusalError(
        f"VAT rates {shown} are not {policy.home}'s"
        + (f" nor {place}'s" if place and place in EU_COUNTRIES and place != policy.home else "")
        + f" (customer in {place or 'an unknown country'}): check the shop's tax settings"
    )


def _check_registered(registry: VatRegistry | None, number: VatNumber) -> None:
    if registry is not None and not registry.is_registered(number):
        raise TaxRefusalError(
            f"VAT number {number.text} is not registered according to VIES: no reverse charge "
            f"without a valid number; correct it on the customer and replay the event"
        )


def _reverse_charge_mention(
    policy: TaxPolicy, lines: Sequence[TaxLine], number: VatNumber, place: str | None
) -> str:
    """Services to an EU business are taxed where it is established (reverse charge); goods are
    exempt as an intra-EU supply only when they leave France for another member state: goods
    shipped outside the EU are an export, goods that stay in France owe French VAT."""
    kinds = _kinds(lines, f"a sale to an EU business ({number.text})")
    texts = []
    if GOODS in kinds:
        if place is not None and place not in EU_COUNTRIES:
            texts.append(policy.mentions["export"])
        elif place is not None and place != policy.home:
            texts.append(policy.mentions["intra_eu_goods"])
        else:
            raise TaxRefusalError(
                f"goods sold without VAT to an EU business ({number.text}) but delivered in "
                f"{place or 'an unknown country'}: an intra-EU supply must leave {policy.home}; "
                f"goods delivered there owe its VAT"
            )
    if SERVICES in kinds:
        texts.append(policy.mentions["eu_services"])
    return " ; ".join(texts)


def _export_mention(policy: TaxPolicy, lines: Sequence[TaxLine], buyer: Buyer) -> str | None:
    """Goods leaving the EU are exempt (art. 262 I); services to a business outside the EU are
    outside French VAT (art. 259-1). Services to a consumer there depend on the service: not
    guessed (``None``: the fallback mention or a refusal)."""
    kinds = _kinds(lines, f"a sale to a customer in {buyer.place}")
    if SERVICES in kinds and not buyer.business:
        return None
    texts = [policy.mentions["export"]] if GOODS in kinds else []
    if SERVICES in kinds:
        texts.append(policy.mentions["outside_eu_services"])
    return " ; ".join(texts) or policy.mentions["export"]


def _kinds(lines: Sequence[TaxLine], what: str) -> set[str]:
    kinds = {line.kind for line in lines}
    if None in kinds:
        raise TaxRefusalError(
            f"{what} without VAT: its mention depends on whether each line is goods or services, "
            f"and a line does not say (set its nature in the mapping: docs/mappings.md)"
        )
    return {kind for kind in kinds if kind is not None}


def _in_eu_abroad(country: str | None, home: str) -> bool:
    return country is not None and country in EU_COUNTRIES and country != home


def _same_country(prefix: str, country: str | None) -> bool:
    return {"EL": "GR", "XI": "GB"}.get(prefix, prefix) == country
