"""The sandbox's records as the API writes them: decimals as strings, dates as ``AAAA-MM-JJ``.

Decimals follow the reference's examples: the shortest form with at least one decimal ("700.0",
"1458.27", "-700.0"), except VAT rates, always with three ("0.200"). Totals come from
:func:`bridge.facturation.totals.compute_totals`, the rule the bridge predicts invoices with (or VAT
per line, with ``--vat-rounding per-line``: see ``Invoice.totals``).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bridge.facturation.totals import compute_totals
from facturation_sandbox.values import CUSTOMER_FIELDS, INVOICE_FIELDS, ITEM_FIELDS

if TYPE_CHECKING:
    from facturation_sandbox.records import Customer, Invoice, Settlement

VAT_QUANTUM = Decimal("0.001")


def fmt_decimal(value: Decimal) -> str:
    if value == 0:
        return "0.0"
    text = format(value.normalize(), "f")
    return text if "." in text else text + ".0"


def plain(value: Any) -> Any:
    """A stored value as JSON: Decimal -> "700.0", date -> "2013-07-29"."""
    if isinstance(value, Decimal):
        return fmt_decimal(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def customer_json(customer: Customer) -> dict[str, Any]:
    out: dict[str, Any] = {"id": customer.id}
    for field in CUSTOMER_FIELDS:
        out[field] = plain(customer.fields.get(field))
    out["last_invoiced_on"] = plain(customer.last_invoiced_on)
    out["last_paid_on"] = plain(customer.last_paid_on)
    out["created_at"] = plain(customer.created_at)
    out["updated_at"] = plain(customer.updated_at)
    out["soft_deleted"] = False
    out["hard_delete_on"] = None
    return dict(sorted(out.items()))


def item_json(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {field: plain(item.get(field)) for field in ITEM_FIELDS}
    out["optional"] = bool(item.get("optional"))
    vat = item.get("vat")
    out["vat"] = str(vat.quantize(VAT_QUANTUM)) if isinstance(vat, Decimal) else None
    if item.get("style"):
        out["total"] = "0.0"
    else:
        out["total"] = fmt_decimal(compute_totals([item]).total)
    return dict(sorted(out.items()))


def settlement_json(settlement: Settlement) -> dict[str, Any]:
    return {
        "id": settlement.id,
        "invoice_id": settlement.invoice_id,
        "total": fmt_decimal(settlement.total),
        "payment_mode": settlement.payment_mode,
        "paid_on": plain(settlement.paid_on),
        "payment_ref": settlement.payment_ref,
    }


def invoice_json(
    invoice: Invoice,
    *,
    customer: Customer | None,
    settlements: list[Settlement],
    with_items: bool,
    with_settlements: bool,
) -> dict[str, Any]:
    totals = invoice.totals()
    out: dict[str, Any] = {"id": invoice.id}
    for field in INVOICE_FIELDS:
        out[field] = plain(invoice.fields.get(field))
    name = customer.display_name() if customer else None
    out.update(
        customer_identity=name,
        customer_name=name,
        draft=invoice.draft,
        external=False,
        invoice_ref=invoice.invoice_ref,
        full_invoice_ref=invoice.invoice_ref,
        refund_id=invoice.refund_id,
        quote_id=None,
        recurring_invoice_id=None,
        total=fmt_decimal(totals.total),
        total_with_vat=fmt_decimal(totals.total_with_vat),
        balance=fmt_decimal(invoice.balance(settlements)),
        exchange_rate=None,
        estimated_rate=None,
        estimated_total_in_main_currency=None,
        public_download_url=None,
        pay_url=None,
        soft_deleted=False,
        hard_delete_on=None,
        created_at=plain(invoice.created_at),
        updated_at=plain(invoice.updated_at),
    )
    if with_items:
        out["items"] = [item_json(item) for item in invoice.items]
        out["files"] = []
    if with_settlements:
        out["settlements"] = [settlement_json(s) for s in settlements]
    return dict(sorted(out.items()))
