"""What the ledger should hold for each source event: one document, keyed, for an amount.

The keys are the ones the built-in mappings give (``stripe:invoice:<id>``, ``stripe:checkout:<id>``,
``stripe:refund:<id>``, ``shopify:<shop>:order:<id>``, ``shopify:<shop>:refund:<id>``): the
document made for it carries that key as ``api_custom``. Amounts are totals including VAT in the
sale's currency; a credit note's is the amount given back (its document's total is negative).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from bridge.inbound.events import parse_json
from bridge.inbound.sources import Delivery
from bridge.inbound.sources.shopify import SHOP_DOMAIN
from bridge.mapping.functions import dec, minor


@dataclass(frozen=True, slots=True)
class Expected:
    key: str  # the document's api_custom
    source_id: str  # the Stripe or Shopify id of the sale or refund
    kind: Literal["sale", "refund"]
    amount: Decimal | None  # None: the source did not say (never compared, never guessed)
    currency: str
    delivery: Delivery  # what --fix stores in the inbox


def expected(delivery: Delivery) -> Expected | None:
    """The document ``delivery`` should have produced, or ``None`` if it makes none."""
    payload = parse_json(delivery.body)
    if delivery.source.value == "stripe":
        return _stripe(delivery, payload.get("type"), (payload.get("data") or {}).get("object"))
    shop = delivery.headers.get(SHOP_DOMAIN, "")
    return _shopify(delivery, shop, delivery.event_type, payload)


def _stripe(delivery: Delivery, kind: Any, o: Any) -> Expected | None:
    if not isinstance(o, dict):
        return None
    currency = str(o.get("currency") or "")
    if kind in ("invoice.paid", "invoice.payment_succeeded"):
        total = minor(o.get("total"), currency)
        if o.get("status") != "paid" or total == 0:
            return None
        return Expected(f"stripe:invoice:{o['id']}", o["id"], "sale", total, currency, delivery)
    if kind == "checkout.session.completed":
        if o.get("mode") != "payment" or o.get("invoice") or o.get("payment_status") != "paid":
            return None
        amount = minor(o.get("amount_total"), currency)
        return Expected(f"stripe:checkout:{o['id']}", o["id"], "sale", amount, currency, delivery)
    if kind == "charge.refunded":
        refunds = (o.get("refunds") or {}).get("data") or []
        if not o.get("refunded") or len(refunds) != 1:
            return None  # partial: credited through a credit note, or by hand
        if not o.get("invoice") and not o.get("payment_intent"):
            return None
        refund = refunds[0]
        amount = minor(refund.get("amount"), currency)
        key = f"stripe:refund:{refund['id']}"
        return Expected(key, refund["id"], "refund", amount, currency, delivery)
    if kind == "credit_note.created":
        if o.get("status") != "issued" or o.get("type") == "pre_payment":
            return None
        refunds = o.get("refunds") or []
        ref = refunds[0].get("refund") if refunds and isinstance(refunds[0], dict) else None
        refund_id = ref.get("id") if isinstance(ref, dict) else ref
        key = f"stripe:refund:{refund_id}" if refund_id else f"stripe:credit_note:{o['id']}"
        amount = minor(o.get("total"), currency)
        return Expected(key, o["id"], "refund", amount, currency, delivery)
    return None


def _shopify(delivery: Delivery, shop: str, topic: str, o: Any) -> Expected | None:
    if not isinstance(o, dict) or o.get("test"):
        return None
    if topic == "orders/paid":
        total = (o.get("total_price_set") or {}).get("presentment_money") or {}
        gift_cards = sum(
            (dec(_price(line)) * dec(line.get("quantity")) for line in o.get("line_items") or [] if line.get("gift_card")),
            Decimal(0),
        )  # fmt: skip
        amount = dec(total.get("amount") or o.get("total_price")) - gift_cards
        currency = str(o.get("presentment_currency") or o.get("currency") or "")
        key = f"shopify:{shop}:order:{o['id']}"
        return Expected(key, str(o["id"]), "sale", amount, currency, delivery)
    if topic == "refunds/create":
        given = [t for t in o.get("transactions") or [] if t.get("kind") == "refund"]
        amount = sum(
            (dec(t.get("amount")) for t in given if t.get("status") == "success"), Decimal(0)
        )
        currency = str(given[0].get("currency") or "") if given else ""
        key = f"shopify:{shop}:refund:{o['id']}"
        return Expected(key, str(o["id"]), "refund", amount, currency, delivery)
    return None


def _price(line: dict[str, Any]) -> Any:
    return ((line.get("price_set") or {}).get("presentment_money") or {}).get("amount") or line.get(
        "price"
    )
