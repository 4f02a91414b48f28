"""The API's checks on customers and invoices, as the sandbox applies them (422 on failure).

Emulated: a customer needs a company or a last name; currencies, languages and payment modes
from the documented lists; payment terms in the documented notation; an invoice needs at least one
line, each with a known VAT rate (French rates, or 0 to 30 % with a foreign ``vat_country``). Not
emulated, and refused so that nobody relies on a guess: a global rebate (``rebate_percentage``),
the additional tax (``tax_percent``) and ``subsidy`` lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from facturation_sandbox.validate import BLANK, Errors, check_choice, read_fields
from facturation_sandbox.values import (
    CURRENCIES,
    FRENCH_VAT_RATES,
    ITEM_FIELDS,
    ITEM_STYLES,
    LANGUAGES,
    MAX_FOREIGN_VAT,
    NATURES,
    PAY_BEFORE_PATTERN,
    PAYMENT_MODES,
)

DEFAULT_VAT = Decimal("0.200")
DEFAULT_NATURE = 9  # "Non applicable", as in every example of the reference
_EMAILS = re.compile(r"[^@\s,;]+@[^@\s,;]+(\s*[,;]\s*[^@\s,;]+@[^@\s,;]+)*")


def check_term(fields: Mapping[str, Any], errors: Errors) -> None:
    value = fields.get("pay_before")
    if value and not re.fullmatch(PAY_BEFORE_PATTERN, str(value)):
        errors.add("pay_before", "n'est pas un délai de paiement valide")


def check_customer(fields: Mapping[str, Any], errors: Errors) -> None:
    if not (fields.get("company_name") or fields.get("last_name")):
        errors.add("company_name", BLANK)
    check_choice(fields, "currency", CURRENCIES, errors)
    check_choice(fields, "language", LANGUAGES, errors)
    check_term(fields, errors)
    email = fields.get("email")
    if email and not _EMAILS.fullmatch(email):
        errors.add("email", "n'est pas valide")


def check_invoice(
    fields: Mapping[str, Any], errors: Errors, *, customer_exists: bool, required: bool
) -> None:
    if fields.get("customer_id") is None:
        if required:
            errors.add("customer_id", BLANK)
    elif not customer_exists:
        errors.add("customer", "doit exister")
    check_choice(fields, "currency", CURRENCIES, errors)
    check_choice(fields, "language", LANGUAGES, errors)
    check_term(fields, errors)
    check_choice(fields, "payment_mode", PAYMENT_MODES, errors)
    for field in ("rebate_percentage", "tax_percent"):
        if fields.get(field):
            errors.add(field, "n'est pas émulé par le bac à sable (seule la valeur 0 l'est)")


def read_items(
    raw: Any,
    fields: Mapping[str, Any],
    errors: Errors,
    *,
    existing: Mapping[int, dict[str, Any]],
    next_id: Callable[[], int],
) -> list[dict[str, Any]]:
    """An invoice's lines from a request: the complete list, as the reference asks for.

    A line with an ``id`` updates that line (or removes it with ``_destroy``); a line without one is
    new; existing lines not listed are dropped.
    """
    if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
        errors.add(
            "items", "doit contenir au moins une ligne" if raw is None else "doit être une liste"
        )
        return []
    foreign = (fields.get("vat_country") or "FR") != "FR"
    items: list[dict[str, Any]] = []
    for position, entry in enumerate(raw, start=1):
        item = read_fields(entry, ITEM_FIELDS, errors, prefix="items.")
        if item.get("id") is not None:
            if item["id"] not in existing:
                errors.add("items.id", "n'existe pas")
                continue
            if str(entry.get("_destroy", "")) in ("1", "true", "True"):
                continue
            item = {**existing[item["id"]], **item}
        else:
            item["id"] = next_id()
        item.setdefault("position", position)
        if item.get("quantity") is None:
            item["quantity"] = Decimal(1)
        if item.get("unit_price") is None:
            item["unit_price"] = Decimal(0)
        if item.get("vat") is None:
            item["vat"] = DEFAULT_VAT
        item["nature"] = item.get("nature") or DEFAULT_NATURE
        check_choice(item, "nature", NATURES, errors)
        if (item.get("style") or "") not in ITEM_STYLES:
            errors.add("items.style", "n'est pas inclus(e) dans la liste (ou pas émulé)")
        vat = item["vat"]
        known = (0 <= vat <= MAX_FOREIGN_VAT) if foreign else vat in FRENCH_VAT_RATES
        if not known:
            errors.add("items.vat", "n'est pas un taux de TVA valide")
        items.append(item)
    if not items:
        errors.add("items", "doit contenir au moins une ligne")
    return items
