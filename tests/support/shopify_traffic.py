"""Shopify orders, refunds and cancellations for end-to-end tests, from the authored 2025-10 payloads.

Order ``n`` is the authored French order #2071 (66.20 EUR incl. VAT) under its own ids; a refund
gives back one candle and the shipping (24.80 EUR, ``refund_shipping_lines``); a cancellation
refunds nothing and is credited in full. Refunded and cancelled orders are kept apart (crediting one
order both ways is the credit policy's business, tested elsewhere).
"""

from __future__ import annotations

import copy
import json
import random
from decimal import Decimal
from typing import Any

from tests.support.webhooks import fixture_bytes

SHOP = "maison-colombe.myshopify.com"
ORDER_TOTAL = "66.20"
REFUND_TOTAL = "-24.80"
_ORDER_BASE = 6_100_000_000_000_000_000
_REFUND_BASE = 6_200_000_000_000_000_000


def order_id(n: int) -> int:
    return _ORDER_BASE + n


def order_custom(n: int) -> str:
    return f"shopify:{SHOP}:order:{order_id(n)}"


def refund_custom(n: int) -> str:
    return f"shopify:{SHOP}:refund:{_REFUND_BASE + n}"


def cancel_custom(n: int) -> str:
    return f"shopify:{SHOP}:cancel:{order_id(n)}"


def french_order(order_id: int) -> dict[str, Any]:
    """The authored French order #2071 (taxes included, billed in FR) under ``order_id``."""
    order: dict[str, Any] = copy.deepcopy(_ORDER)
    order["id"] = order_id
    return order


def candle_order(
    order_id: int,
    address: dict[str, Any],
    *,
    quantity: int = 1,
    rate: str = "0.2",
    tax: str = "",
    notes: tuple[dict[str, str], ...] = (),
) -> dict[str, Any]:
    """A paid order of ``quantity`` candles at 23.80 each, VAT included: ``tax`` per candle at
    ``rate`` ("" or "0.00": none), shipped and billed to ``address``, with note attributes."""
    taxed = tax not in ("", "0.00")
    total_tax = Decimal(tax) * quantity if taxed else Decimal("0.00")
    return {
        "id": order_id,
        "name": f"#{order_id % 10_000}",
        "email": "einkauf@kerzenhaus.example",
        "customer": {"id": 7102938475610293847},
        "currency": "EUR",
        "presentment_currency": "EUR",
        "financial_status": "paid",
        "test": False,
        "taxes_included": True,
        "processed_at": "2026-11-30T10:00:00+01:00",
        "payment_gateway_names": ["shopify_payments"],
        "billing_address": address,
        "shipping_address": address,
        "note_attributes": list(notes),
        "line_items": [
            {
                "id": order_id + 1,
                "name": "Bougie parfumée « Figuier »",
                "price": "23.80",
                "quantity": quantity,
                "gift_card": False,
                "requires_shipping": True,
                "discount_allocations": [],
                "tax_lines": [{"price": str(total_tax), "rate": rate}] if taxed else [],
            }
        ],
        "shipping_lines": [],
        "total_price": str(Decimal("23.80") * quantity),
        "total_tax": str(total_tax),
    }


def _order(n: int, customers: int, *, cancelled: bool) -> bytes:
    order = french_order(order_id(n))
    order["name"] = f"#S{n:04d}"
    order["customer"]["id"] = 6_300_000_000_000_000_000 + n % customers
    if cancelled:
        order["cancelled_at"] = "2026-05-07T09:30:00+02:00"
        order["cancel_reason"] = "customer"
    return json.dumps(order).encode()


def _refund(n: int) -> bytes:
    refund: dict[str, Any] = copy.deepcopy(_REFUND)
    refund["id"] = _REFUND_BASE + n
    refund["order_id"] = order_id(n)
    return json.dumps(refund).encode()


def shopify_traffic(
    orders: int, refunds: int, cancels: int, *, customers: int, seed: int
) -> tuple[list[tuple[str, str, bytes]], list[int], list[int]]:
    """``(topic, event id, body)`` deliveries, unshuffled; the refunded and the cancelled orders."""
    rng = random.Random(seed)
    chosen = rng.sample(range(orders), refunds + cancels)
    refunded, cancelled = chosen[:refunds], chosen[refunds:]
    out = [
        ("orders/paid", f"shp-paid-{n}", _order(n, customers, cancelled=False))
        for n in range(orders)
    ]
    out += [("refunds/create", f"shp-refund-{n}", _refund(n)) for n in refunded]
    out += [
        ("orders/cancelled", f"shp-cancel-{n}", _order(n, customers, cancelled=True))
        for n in cancelled
    ]
    return out, refunded, cancelled


_ORDER: dict[str, Any] = json.loads(
    fixture_bytes("authored/shopify_orders_paid_fr_taxes_included.json")
)
_REFUND: dict[str, Any] = json.loads(
    fixture_bytes("authored/shopify_refunds_create_fr_shipping_lines_2025_10.json")
)
