"""The mapping side of the VAT decision: from a mapped sale to :func:`bridge.tax.decide.decide` and back.

A sale's invoice gets the case's ``vat_country`` and mention (``vat_exemption``) unless the mapping
file set them itself; the customer gets its checked VAT number and, for a French business, its
SIREN or SIRET. A credit note takes both fields from the invoice it credits, when it is sent
(optional refs ``…#vat_country?``): a refund does not carry the customer's address.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bridge.mapping.functions import country
from bridge.mapping.mentions import FIELD as MENTION_FIELD
from bridge.mapping.money import SaleLine
from bridge.mapping.spec import Expr, MappingError, MappingSpec
from bridge.tax.decide import Buyer, TaxCase, TaxLine, TaxPolicy, TaxRefusalError, decide
from bridge.tax.numbers import (
    InvalidVatNumberError,
    parse_vat_number,
    siren_of,
    valid_siren,
    valid_siret,
)

Evaluate = Callable[[Expr, Any], Any]
INHERITED = ("vat_country", MENTION_FIELD)  # a credit note is in the VAT case of its invoice


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
    )


def tax_case(
    spec: MappingSpec,
    ev: Evaluate,
    ctx: Any,
    customer: Mapping[str, Any],
    lines: list[SaleLine],
) -> TaxCase:
    """The sale's VAT case; a refusal is a :class:`MappingError` naming the file."""
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
    taxed = [TaxLine(line.rate, line.tax, line.kind) for line in lines]
    try:
        return decide(policy_of(spec), buyer, taxed)
    except TaxRefusalError as exc:
        raise MappingError(f"{spec.path}: {exc}") from None


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
            pass  # kept as the customer gave it; it makes no reverse charge (bridge.tax.decide)
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
