"""Admin GraphQL order nodes -> the REST-like JSON of the webhooks the mappings read.

The conversion, field by field (GraphQL -> webhook):

- ids: ``gid://shopify/Order/450789469`` -> ``450789469`` (an exact integer, as in webhooks);
- camelCase -> snake_case; enums lower-cased (``displayFinancialStatus: PARTIALLY_REFUNDED`` ->
  ``financial_status: "partially_refunded"``, transaction ``kind``/``status`` likewise);
- money bags ``{shopMoney, presentmentMoney}`` -> ``{shop_money, presentment_money}`` with
  ``currency_code``, and the plain field (``price``, ``amount``…) from the shop money;
- ``originalUnitPriceSet`` -> line ``price``/``price_set``; ``discountAllocations.allocatedAmountSet``
  -> ``discount_allocations[].amount_set``; ``originalPriceSet`` -> shipping ``price_set``;
- a refund's ``refundShippingLines`` -> ``order_adjustments`` of kind ``shipping_refund`` and its
  ``orderAdjustments`` -> kind ``refund_discrepancy``, amounts *negative* as in REST;
- a refund's transactions: ``amount`` and ``currency`` from the presentment money.

A refund's ``processed_at`` is its ``createdAt`` (the GraphQL object has no separate field).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

_GID = re.compile(r"^gid://shopify/[A-Za-z]+/(\d+)")


def legacy_id(gid: Any) -> int | None:
    """The numeric id of a GraphQL global id (``None`` if there is none)."""
    match = _GID.match(str(gid or ""))
    return int(match.group(1)) if match else None


def _money(bag: Any) -> dict[str, Any] | None:
    if not isinstance(bag, dict):
        return None
    return {
        side: {"amount": m.get("amount"), "currency_code": m.get("currencyCode")}
        for side, key in (("shop_money", "shopMoney"), ("presentment_money", "presentmentMoney"))
        if isinstance(m := bag.get(key), dict)
    }


def _shop_amount(bag: Any) -> Any:
    return ((bag or {}).get("shopMoney") or {}).get("amount")


def _negated(bag: Any) -> dict[str, Any] | None:
    """A money bag with every amount made negative (REST's sign for money given back)."""
    out = _money(bag)
    for side in (out or {}).values():
        side["amount"] = str(-abs(Decimal(str(side["amount"] or "0"))))
    return out


def _nodes(connection: Any) -> list[dict[str, Any]]:
    if isinstance(connection, list):
        return [n for n in connection if isinstance(n, dict)]
    nodes = (connection or {}).get("nodes") or []
    return [n for n in nodes if isinstance(n, dict)]


def _lower(value: Any) -> str | None:
    return str(value).lower() if value else None


def _tax_lines(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"rate": t.get("rate"), "price": _shop_amount(t.get("priceSet")), "price_set": _money(t.get("priceSet"))}
        for t in _nodes(node.get("taxLines"))
    ]  # fmt: skip


def _discounts(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"amount": _shop_amount(d.get("allocatedAmountSet")), "amount_set": _money(d.get("allocatedAmountSet"))}
        for d in _nodes(node.get("discountAllocations"))
    ]  # fmt: skip


def _address(node: Any) -> dict[str, Any] | None:
    if not isinstance(node, dict):
        return None
    return {
        "first_name": node.get("firstName"),
        "last_name": node.get("lastName"),
        "company": node.get("company"),
        "phone": node.get("phone"),
        "address1": node.get("address1"),
        "address2": node.get("address2"),
        "zip": node.get("zip"),
        "city": node.get("city"),
        "country_code": node.get("countryCodeV2"),
    }


def order_payload(node: dict[str, Any]) -> dict[str, Any]:
    """An order node as the ``orders/paid`` (or ``orders/cancelled``) webhook body."""
    customer = node.get("customer")
    return {
        "id": legacy_id(node.get("id")),
        "admin_graphql_api_id": node.get("id"),
        "name": node.get("name"),
        "email": node.get("email"),
        "test": bool(node.get("test")),
        "created_at": node.get("createdAt"),
        "processed_at": node.get("processedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "currency": node.get("currencyCode"),
        "presentment_currency": node.get("presentmentCurrencyCode"),
        "taxes_included": bool(node.get("taxesIncluded")),
        "financial_status": _lower(node.get("displayFinancialStatus")),
        "payment_gateway_names": list(node.get("paymentGatewayNames") or []),
        "total_price": _shop_amount(node.get("totalPriceSet")),
        "total_price_set": _money(node.get("totalPriceSet")),
        "customer": {
            "id": legacy_id(customer.get("id")),
            "first_name": customer.get("firstName"),
            "last_name": customer.get("lastName"),
            "email": customer.get("email"),
        }
        if isinstance(customer, dict)
        else None,
        "billing_address": _address(node.get("billingAddress")),
        "line_items": [
            {
                "id": legacy_id(line.get("id")),
                "name": line.get("name"),
                "title": line.get("title"),
                "quantity": line.get("quantity"),
                "gift_card": bool(line.get("isGiftCard")),
                "price": _shop_amount(line.get("originalUnitPriceSet")),
                "price_set": _money(line.get("originalUnitPriceSet")),
                "discount_allocations": _discounts(line),
                "tax_lines": _tax_lines(line),
            }
            for line in _nodes(node.get("lineItems"))
        ],
        "shipping_lines": [
            {
                "title": line.get("title"),
                "is_removed": bool(line.get("isRemoved")),
                "price": _shop_amount(line.get("originalPriceSet")),
                "price_set": _money(line.get("originalPriceSet")),
                "discount_allocations": _discounts(line),
                "tax_lines": _tax_lines(line),
            }
            for line in _nodes(node.get("shippingLines"))
        ],
        "refunds": [{"id": legacy_id(r.get("id"))} for r in _nodes(node.get("refunds"))],
    }


def refund_payload(order_id: int | None, node: dict[str, Any]) -> dict[str, Any]:
    """A refund node (of order ``order_id``) as the ``refunds/create`` webhook body."""
    shipping: list[dict[str, Any]] = [
        {
            "kind": "shipping_refund",
            "reason": "Shipping refund",
            "amount_set": _negated(s.get("subtotalAmountSet")),
            "tax_amount_set": _negated(s.get("taxAmountSet")),
        }
        for s in _nodes(node.get("refundShippingLines"))
    ]
    adjustments: list[dict[str, Any]] = [
        {
            "kind": "refund_discrepancy",
            "reason": a.get("reason"),
            "amount_set": _negated(a.get("amountSet")),
            "tax_amount_set": _negated(a.get("taxAmountSet")),
        }
        for a in _nodes(node.get("orderAdjustments"))
    ]
    for adjustment in [*shipping, *adjustments]:
        for field in ("amount", "tax_amount"):
            bag: dict[str, Any] = adjustment.get(f"{field}_set") or {}
            adjustment[field] = (bag.get("shop_money") or {}).get("amount", "0")
    return {
        "id": legacy_id(node.get("id")),
        "order_id": order_id,
        "created_at": node.get("createdAt"),
        "processed_at": node.get("createdAt"),
        "note": node.get("note"),
        "refund_line_items": [
            {
                "quantity": item.get("quantity"),
                "subtotal": _shop_amount(item.get("subtotalSet")),
                "subtotal_set": _money(item.get("subtotalSet")),
                "total_tax": _shop_amount(item.get("totalTaxSet")),
                "total_tax_set": _money(item.get("totalTaxSet")),
                "line_item": {
                    "name": (item.get("lineItem") or {}).get("name"),
                    "title": (item.get("lineItem") or {}).get("title"),
                    "tax_lines": [
                        {"rate": t.get("rate")} for t in _nodes((item.get("lineItem") or {}).get("taxLines"))
                    ],
                },
            }
            for item in _nodes(node.get("refundLineItems"))
        ],
        "order_adjustments": [*shipping, *adjustments],
        "transactions": [
            {
                "kind": _lower(t.get("kind")),
                "status": _lower(t.get("status")),
                "gateway": t.get("gateway"),
                "amount": ((t.get("amountSet") or {}).get("presentmentMoney") or {}).get("amount"),
                "currency": ((t.get("amountSet") or {}).get("presentmentMoney") or {}).get("currencyCode"),
            }
            for t in _nodes(node.get("transactions"))
        ],
    }  # fmt: skip
