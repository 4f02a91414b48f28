"""The documented list filters: ``api_id`` and ``customer_id`` exact, ``api_custom``, ``email``,
``company``, ``title``… partial and case-insensitive, ``ids=1,2``, ``bill_type``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from facturation_sandbox.records import Customer, Invoice


def _contains(haystack: Any, needle: str) -> bool:
    return haystack is not None and needle.lower() in str(haystack).lower()


def int_param(value: str | None) -> int | None:
    return int(value) if value is not None and re.fullmatch(r"-?\d+", value.strip()) else None


def _ids_param(value: str | None) -> set[int] | None:
    if value is None:
        return None
    return {int(p) for p in value.split(",") if p.strip().isdigit()}


def _exact(value: Any, query: Mapping[str, str], param: str) -> bool:
    """An exact filter: absent, or equal to a well-formed integer (``api_id=abc`` matches nothing)."""
    if param not in query:
        return True
    wanted = int_param(query[param])
    return wanted is not None and value == wanted


def customer_matches(customer: Customer, query: Mapping[str, str]) -> bool:
    fields = customer.fields
    if not _exact(fields.get("api_id"), query, "api_id"):
        return False
    ids = _ids_param(query.get("ids"))
    if ids is not None and customer.id not in ids:
        return False
    if not _exact(fields.get("category_id") or 0, query, "category_id"):
        return False
    partial = {
        "api_custom": fields.get("api_custom"),
        "company": fields.get("company_name"),
        "last_name": fields.get("last_name"),
        "email": fields.get("email"),
    }
    return not any(p in query and not _contains(v, query[p]) for p, v in partial.items())


def invoice_matches(invoice: Invoice, customer: Customer | None, query: Mapping[str, str]) -> bool:
    fields = invoice.fields
    if not _exact(fields.get("api_id"), query, "api_id"):
        return False
    ids = _ids_param(query.get("ids"))
    if ids is not None and invoice.id not in ids:
        return False
    if not _exact(fields.get("customer_id"), query, "customer_id"):
        return False
    if "full_invoice_ref" in query and invoice.invoice_ref != query["full_invoice_ref"]:
        return False
    partial = {
        "api_custom": fields.get("api_custom"),
        "invoice_ref": invoice.invoice_ref,
        "payment_ref": fields.get("payment_ref"),
        "title": fields.get("title"),
        "company": customer.fields.get("company_name") if customer else None,
        "last_name": customer.fields.get("last_name") if customer else None,
    }
    if any(p in query and not _contains(v, query[p]) for p, v in partial.items()):
        return False
    paid = fields.get("paid_on") is not None
    return {
        "": True,
        "paid": paid,
        "unpaid": not paid and not invoice.draft,
        "invoice": not invoice.draft and invoice.refund_id is None,
        "refund": invoice.refund_id is not None,
        "draft": invoice.draft,
    }.get(query.get("bill_type") or "", True)
