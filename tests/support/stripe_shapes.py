"""The typical test sale: a French consumer paying a price that includes 20 % French VAT.

Stripe's raw fixtures (``event_invoice.paid.json``) carry no tax and no address; a French invoice
at 0 % must say why, so traffic built from them is made French here, in Stripe's current invoice
shape (``stripe/_invoice.py``, ``_invoice_line_item.py``): the customer's ``customer_address`` in
FR, on each line ``taxes[]`` of type ``tax_rate_details`` (inclusive, standard rated), and the
invoice's ``total_taxes``, ``total_excluding_tax`` and ``subtotal_excluding_tax``. The older
``tax_amounts`` / ``tax_rates`` / ``total_tax_amounts`` / ``tax`` fields are dropped, as the current
API has them no more. Amounts are unchanged: the customer pays what the line said.
"""

from __future__ import annotations

import copy
from typing import Any

TAX_RATE = "txr_test_fr_tva_20_inclusive"
FRENCH_ADDRESS: dict[str, str | None] = {
    "city": "Lyon",
    "country": "FR",
    "line1": "12 rue de la République",
    "line2": None,
    "postal_code": "69002",
    "state": None,
}


def vat_included(minor: int) -> int:
    """The 20 % VAT inside ``minor`` (cents, or yen): ``minor - round(minor / 1.2)``, halves up.

    Integer arithmetic only: ``round(minor * 10 / 12)`` is ``(minor * 10 + 6) // 12``.
    """
    return minor - (minor * 10 + 6) // 12


def french_vat_included(invoice: dict[str, Any]) -> dict[str, Any]:
    """A copy of the Stripe ``invoice`` billed to a French address, each line's amount including
    20 % VAT (after the line's discounts); totals and amounts paid stay as they were."""
    out = copy.deepcopy(invoice)
    out["customer_address"] = dict(FRENCH_ADDRESS)
    out["customer_tax_exempt"] = "none"
    tax_total = taxable_total = 0
    for line in out["lines"]["data"]:
        charged = line["amount"] - sum(d["amount"] for d in line.get("discount_amounts") or [])
        tax = vat_included(charged)
        line["taxes"] = [_tax(tax, charged - tax)]
        for legacy in ("tax_amounts", "tax_rates"):
            line.pop(legacy, None)
        tax_total += tax
        taxable_total += charged - tax
    for legacy in ("tax", "total_tax_amounts"):
        out.pop(legacy, None)
    out["total_taxes"] = [_tax(tax_total, taxable_total)]
    out["total_excluding_tax"] = out["total"] - tax_total
    out["subtotal_excluding_tax"] = out["subtotal"] - tax_total
    return out


def _tax(amount: int, taxable: int) -> dict[str, Any]:
    return {
        "amount": amount,
        "tax_behavior": "inclusive",
        "tax_rate_details": {"tax_rate": TAX_RATE},
        "taxability_reason": "standard_rated",
        "taxable_amount": taxable,
        "type": "tax_rate_details",
    }
