"""Why an invoice carries no VAT: the legal mentions, and how an invoice at 0 % gets one.

A French invoice without VAT must say why (CGI, annexe II, art. 242 nonies A). The texts go in the invoice's
``vat_exemption`` field ("Motif d'exonération de TVA", Facturation.pro ``_data/fields.yml``). A
mapping file picks one by name with ``policy.zero_vat_mention`` and may reword any of them under
``policy.mentions``; ``BRIDGE_VAT_REGIME=franchise`` puts the franchise one on every invoice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

FRANCHISE = "franchise"
MENTIONS: Mapping[str, str] = {
    FRANCHISE: "TVA non applicable, art. 293 B du CGI",
    "intra_eu_goods": "Exonération de TVA, art. 262 ter, I du CGI",
    "eu_services": "Autoliquidation (art. 283-2 du CGI, art. 196 de la directive 2006/112/CE)",
    "export": "Exonération de TVA, art. 262 I du CGI",
    "outside_eu_services": "TVA non applicable, art. 259-1 du CGI",
    "out_of_scope": "Opération hors champ de la TVA",
}
FIELD = "vat_exemption"


def all_zero_rate(items: Sequence[Mapping[str, Any]]) -> bool:
    """Every item is at 0 % (an invoice with one taxed line needs no invoice mention)."""
    return bool(items) and all(Decimal(str(item["vat"])) == 0 for item in items)


def missing_mention(payload: Mapping[str, Any]) -> bool:
    """``payload`` is an invoice at 0 % on every line that does not say why."""
    return all_zero_rate(payload.get("items") or ()) and not payload.get(FIELD)
