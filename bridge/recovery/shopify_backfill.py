"""Shopify as a backfill source: orders and their refunds through the Admin GraphQL API.

Orders updated since the date are read oldest first (a refund or a cancellation updates its order).
Each yields, in the shape of the webhook and with the topic header it would carry:

- ``orders/paid`` for an order created since the date and paid (``PAID``, ``PARTIALLY_REFUNDED``,
  ``REFUNDED``): an order older than the date is not invoiced by a backfill;
- ``refunds/create`` for each refund created since the date;
- ``orders/cancelled`` for an order cancelled since the date.

The inbox key is ``backfill:<topic>:<id>`` (a webhook's X-Shopify-Event-Id can't be known); what
keeps a sale from being invoiced twice is the commands' keys, from the order and refund ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

from bridge.inbound.events import Source
from bridge.inbound.sources import Delivery
from bridge.inbound.sources.shopify import EVENT_ID, SHOP_DOMAIN, TOPIC
from bridge.recovery.backfill import ORIGIN, Batch, covered_share
from bridge.recovery.jsonbody import dump_body
from bridge.recovery.shopify_api import ShopifyAdmin
from bridge.recovery.shopify_shapes import legacy_id, order_payload, refund_payload

PAID = {"PAID", "PARTIALLY_REFUNDED", "REFUNDED"}


def _at(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def deliveries_for(node: dict[str, Any], shop: str, since: datetime) -> list[Delivery]:
    """The webhooks an order node stands for, since ``since``."""
    order_id = legacy_id(node.get("id"))
    out: list[Delivery] = []
    created = _at(node.get("processedAt") or node.get("createdAt"))
    if created and created >= since and node.get("displayFinancialStatus") in PAID:
        out.append(_delivery(shop, "orders/paid", order_id, order_payload(node)))
    for refund in node.get("refunds") or []:
        at = _at(refund.get("createdAt"))
        if at and at >= since:
            payload = refund_payload(order_id, refund)
            out.append(_delivery(shop, "refunds/create", payload["id"], payload))
    cancelled = _at(node.get("cancelledAt"))
    if cancelled and cancelled >= since:
        out.append(_delivery(shop, "orders/cancelled", order_id, order_payload(node)))
    return out


def _delivery(shop: str, topic: str, object_id: Any, payload: dict[str, Any]) -> Delivery:
    headers = {TOPIC: topic, SHOP_DOMAIN: shop, EVENT_ID: f"backfill:{topic}:{object_id}"}
    return Delivery(
        Source.SHOPIFY, headers[EVENT_ID], topic, dump_body(payload), {**headers, **ORIGIN}
    )


class ShopifyBackfill:
    """Batches of Shopify deliveries since a date; the cursor is ``{"after": endCursor}``."""

    name = "shopify"

    def __init__(
        self,
        admin: ShopifyAdmin,
        shop: str,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.admin = admin
        self.shop = shop
        self.now = now

    def batches(self, since: date, resume: dict[str, Any] | None) -> Iterator[Batch]:
        start = datetime(since.year, since.month, since.day, tzinfo=UTC)
        end = self.now().timestamp()
        search = f"updated_at:>='{start.isoformat()}'"
        after = (resume or {}).get("after")
        for nodes, cursor in self.admin.orders(search, after=after):
            deliveries = [d for n in nodes for d in deliveries_for(n, self.shop, start)]
            last = _at(nodes[-1].get("createdAt")) if nodes else None
            at = last.timestamp() if last else end
            covered = covered_share(start.timestamp(), end, at, newest_first=False)
            yield Batch(deliveries, {"after": cursor}, covered, seen=len(nodes))
