"""The mapping side of the VAT decision: from a mapped sale to :func:`bridge.tax.decide.decide` and back.

A sale's invoice gets the case's ``vat_country`` and mention (``vat_exemption``) unless the mapping
file set them itself; the customer gets its checked VAT number and, for a French business, its
SIREN or SIRET. A credit note takes both fields from the invoice it credits, when it is sent
(optional refs ``…#vat_country?``): a refund does not carry the customer's address.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from bridge.mapping.functions import country, currency_exponent, rate_fits
from bridge.mapping.mentions import FIELD as MENTION_FIELD
from bridge.mapping.money import MoneyError, SaleLine, build_items
from bridge.mapping.spec import Expr, MappingError, MappingSpec
from bridge.outbox.commands import Command, CommandKind, content_digest
from bridge.tax.decide import Buyer, TaxCase, TaxLine, TaxPolicy, TaxRefusalError, decide
from bridge.tax.numbers import (
    InvalidVatNumberError,
    parse_vat_number,
    siren_of,
    valid_siren,
    valid_siret,
)
from bridge.tax.rates import rates_of

Evaluate = Callable[[Expr, Any], Any]
INHERITED = ("vat_country", MENTION_FIELD)
VAT_NUMBER_FIELD = 30  # the customer's vat_number, string(30) (_data/fields.yml)  # a credit note is in the VAT case of its invoice


def policy_of(spec: MappingSpec) -> TaxPolicy:
    deployment = spec.deployment
    chosen = spec.zero_vat_mention
    return TaxPolicy(
        regime=deployment.vat_regime,
        home=spec.reverse_charge.home_country,
        reverse_charge=spec.reverse_charge.enabled,
        oss=deployment.oss,
        mentions=spec.mentions,
        fallback=spec.mentions[chosen] if chosen else deployment.zero_vat_mention,
        registry=deployment.registry,
        home_rates=spec.vat_rates,
    )


def tax_case(
    spec: MappingSpec,
    ev: Evaluate,
    ctx: Any,
    customer: Mapping[str, Any],
    lines: list[SaleLine],
    *,
    currency: str,
) -> tuple[TaxCase, list[SaleLine]]:
    """The sale's VAT case, and its lines with their rates made consistent (see
    :func:`consistent_rates`); a refusal is a :class:`MappingError` naming the file."""
    exprs = spec.tax_exprs
    destination = ev(exprs["destination"], ctx) if "destination" in exprs else None
    exempt = ev(exprs["exempt"], ctx) if "exempt" in exprs else None
    buyer = Buyer(
        country=customer.get("country"),
        destination=country(destination),
        business=not customer.get("individual", True),
        vat_number=customer.get("vat_number"),
        exempt_by_source=exempt not in (None, False, "", [], {}),
    )
    policy = policy_of(spec)
    lines = consistent_rates(policy, buyer.place, lines, currency)
    try:
        case = decide(policy, buyer, [TaxLine(line.rate, line.tax, line.kind) for line in lines])
    except TaxRefusalError as exc:
        raise MappingError(f"{spec.path}: {exc}") from None
    return case, lines


def consistent_rates(
    policy: TaxPolicy, place: str | None, lines: list[SaleLine], currency: str
) -> list[SaleLine]:
    """A sale's rates, all of one country's when the VAT charged allows it.

    A source that gives the VAT but not the rate (Stripe) leaves the rate to be recognised from the
    amounts; on a small line two countries' rates may both fit (0.16 on 0.82 is 19 % and 20 %).
    When the recognised rates are neither all the firm's nor all the customer's country's, each
    line is read again within one country's rates — the customer's first under ``BRIDGE_OSS``,
    the firm's first otherwise — and the first country whose rates fit every taxed line is kept.
    The VAT itself is unchanged, to the cent; rates given by the source (Shopify) always fit.
    """
    taxed = [line for line in lines if line.tax]
    abroad = tuple(rates_of(place)) if place and place != policy.home else ()
    if not taxed or not abroad:
        return lines
    rates = {line.rate for line in taxed}
    if rates <= set(policy.home_rates) or rates <= set(abroad):
        return lines
    for candidates in (abroad, policy.home_rates) if policy.oss else (policy.home_rates, abroad):
        chosen = [_fitting(line, candidates, currency) for line in taxed]
        if any(rate is None for rate in chosen):
            continue
        by_line = dict(zip(map(id, taxed), chosen, strict=True))
        relabelled = [replace(line, rate=by_line.get(id(line)) or line.rate) for line in lines]
        try:  # each rate's VAT must still be that rate of its lines, as the invoice is built
            build_items(relabelled, currency_unit=Decimal(1).scaleb(-currency_exponent(currency)))
        except MoneyError:
            continue
        return relabelled
    return lines


def _fitting(line: SaleLine, candidates: Sequence[Decimal], currency: str) -> Decimal | None:
    net = line.gross - line.tax
    best = min((r for r in candidates if r), key=lambda r: abs(line.tax - net * r), default=None)
    return best if best is not None and rate_fits(line.tax, net, best, currency) else None


def apply_case(case: TaxCase, payload: dict[str, Any], customer: dict[str, Any]) -> None:
    if case.vat_country is not None:
        payload.setdefault("vat_country", case.vat_country)
    if case.mention is not None:
        payload.setdefault(MENTION_FIELD, case.mention)
    if case.vat_number is not None:
        customer["vat_number"] = case.vat_number.text


def legal_identity(customer: dict[str, Any]) -> dict[str, Any]:
    """The customer with its VAT number normalised when well-formed and, for a French business,
    its SIREN (from the French VAT number) when no valid SIRET or SIREN was given. A SIRET that
    fails its check digit is left out rather than printed wrong."""
    number = customer.get("vat_number")
    parsed = None
    if isinstance(number, str):
        try:
            parsed = parse_vat_number(number)
            customer = {**customer, "vat_number": parsed.text}
        except InvalidVatNumberError:
            if len(number) > VAT_NUMBER_FIELD:  # a note, not a number: left out, not refused
                customer = {k: v for k, v in customer.items() if k != "vat_number"}
            # otherwise kept as the customer gave it; it makes no reverse charge (decide)
    siret = customer.get("siret")
    if siret is not None:
        digits = "".join(ch for ch in str(siret) if ch.isdigit())
        if valid_siret(digits) or valid_siren(digits):
            return {**customer, "siret": digits}
        customer = {key: value for key, value in customer.items() if key != "siret"}
    if (
        parsed is not None
        and customer.get("country") == "FR"
        and not customer.get("individual", True)
    ):
        siren = siren_of(parsed)
        if siren is not None:
            customer = {**customer, "siret": siren}
    return customer


def inherited_refs(invoice_key: str) -> dict[str, str]:
    """Refs that copy the invoice's VAT country and mention onto its credit note, when it has them."""
    return {name: f"{invoice_key}#{name}?" for name in INHERITED}


def legal_update(customer_key: str, binding: str, customer: Mapping[str, Any]) -> Command | None:
    """A business customer's legal identity written onto its Facturation.pro record before the
    invoice.

    A returning customer is bound to the record made at its first sale, which ``customer.ensure``
    does not change: when the sale gives a VAT number or a SIRET (a reverse charge depends on the
    former, the e-invoicing reform on the latter), that record must carry them, since
    Facturation.pro prints them from it. Keyed by the content, so one identity is written once.
    """
    fields = {
        name: customer[name]
        for name in ("company_name", "vat_number", "siret", "country")
        if customer.get(name)
    }
    if "vat_number" not in fields and "siret" not in fields:
        return None
    fields["individual"] = False
    return Command(
        CommandKind.UPDATE_CUSTOMER,
        f"customer-legal:{binding}:{content_digest(fields)}",
        fields,
        refs={"customer_id": customer_key},
        meta={"binding_key": binding},
    )
