"""Text made safe to send, at mapping time: what a source may carry and the API can't take.

Webhook bodies are valid JSON, but JSON can carry text no API request can: a lone surrogate
(``"\\ud800"``) can't be encoded as UTF-8 at all, and NUL and other control characters are
refused or mangled downstream. Left in a payload, such a value fails on every send, for days, while
the sale's invoice waits. So every text of a command's payload is cleaned when it is mapped:

- lone surrogates become U+FFFD (the replacement character), control characters other than tab
  and line breaks are dropped, leading and trailing spaces trimmed;
- a free text (a name, a street, a title) longer than the API's limit is cut, with an ellipsis;
- an identifier longer than its limit (a VAT number, a postcode, a currency) would be wrong if cut:
  the event is refused (:class:`~bridge.mapping.spec.MappingError`) with the field named.

The limits are those of the API's field list (``string(N)`` in the reference's ``_data/fields.yml``,
customer and invoice); ``text`` fields have none.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bridge.mapping.spec import MappingError
from bridge.outbox.commands import Command, CommandKind

ELLIPSIS = "…"
_KEEP_CONTROLS = frozenset("\t\n")
# Free texts: cut at the limit. From fields.yml, ``string(N)`` of customer and invoice.
_CUSTOMER_TEXT = {
    "company_name": 255, "civility": 255, "first_name": 255, "last_name": 255, "short_name": 255,
    "street": 255, "city": 255, "phone": 255, "fax": 255, "mobile": 255, "website": 255,
    "reference": 255, "language": 255, "field1": 255, "field2": 255, "field3": 255,
    "field4": 255, "field5": 255,
}  # fmt: skip
_INVOICE_TEXT = {
    "customer_identity": 255, "title": 255, "tax_title": 255, "activity_title": 255,
    "external_ref": 255, "payment_ref": 255, "vat_exemption": 255,
}  # fmt: skip
# Identifiers: refused when too long (cutting would make them wrong).
_CUSTOMER_IDS = {
    "zip_code": 20, "country": 2, "vat_number": 30, "siret": 100, "account_code": 11,
    "accounting_entry": 8, "currency": 3, "vat_country": 3, "electronic_address": 128,
    "api_custom": 255,
}  # fmt: skip
_INVOICE_IDS = {
    "language": 2, "currency": 3, "vat_country": 2, "pay_before": 16, "accounting_entry": 8,
    "purchase_number": 100, "api_custom": 255,
}  # fmt: skip
_ITEM_TEXT = {"measure": 32, "style": 20}
_LIMITS: dict[CommandKind, tuple[dict[str, int], dict[str, int]]] = {
    CommandKind.ENSURE_CUSTOMER: (_CUSTOMER_TEXT, _CUSTOMER_IDS),
    CommandKind.UPDATE_CUSTOMER: (_CUSTOMER_TEXT, _CUSTOMER_IDS),
    CommandKind.CREATE_INVOICE: (_INVOICE_TEXT, _INVOICE_IDS),
    CommandKind.PARTIAL_CREDIT_NOTE: (_INVOICE_TEXT, _INVOICE_IDS),
}


def clean_text(value: str) -> str:
    """``value`` without lone surrogates (U+FFFD instead), control characters or outer spaces."""
    out = []
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":
            out.append("\ufffd")
        elif category == "Cc" and ch not in _KEEP_CONTROLS:
            continue
        else:
            out.append(ch)
    return "".join(out).strip()


def cut(value: str, limit: int) -> str:
    """``value`` at most ``limit`` characters long, ending with an ellipsis when it was cut."""
    return value if len(value) <= limit else value[: limit - 1].rstrip() + ELLIPSIS


def sanitized(command: Command) -> Command:
    """``command`` with every text of its payload clean and within the API's limits.

    Raises :class:`MappingError` naming the field when an identifier is longer than the API takes.
    """
    texts, ids = _LIMITS.get(command.kind, ({}, {}))
    payload = _clean_fields(command.payload, texts, ids, "")
    items = payload.get("items")
    if isinstance(items, list):
        payload["items"] = [
            _clean_fields(item, _ITEM_TEXT, {}, f"items[{i}].")
            if isinstance(item, Mapping)
            else item
            for i, item in enumerate(items)
        ]
    return replace(command, payload=payload)


def _clean_fields(
    fields: Mapping[str, Any], texts: Mapping[str, int], ids: Mapping[str, int], where: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in fields.items():
        out[name] = (
            _clean_field(name, value, texts, ids, where) if isinstance(value, str) else value
        )
    return out


def _clean_field(
    name: str, value: str, texts: Mapping[str, int], ids: Mapping[str, int], where: str
) -> str:
    text = clean_text(value)
    if name in texts:
        return cut(text, texts[name])
    if name in ids and len(text) > ids[name]:
        raise MappingError(
            f"{where}{name}: {text[:40]!r}… is {len(text)} characters long; "
            f"the API takes at most {ids[name]}"
        )
    return text
