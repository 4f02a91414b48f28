"""Signed webhook deliveries for tests and benchmarks, built from the fixtures' real payloads."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stripe

from bridge.inbound.sources.shopify import sign as shopify_sign
from tests.support.stripe_shapes import french_vat_included

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
STRIPE_SECRET = "whsec_test_secret"  # stripe-python's test secret (signature_vectors.json)
SHOPIFY_SECRET = "API_SECRET_KEY"  # shopify-api-ruby's test secret (hmac_vectors.json)
SHOP = "example-shop.myshopify.com"


def fixture_bytes(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def vectors(relative: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / relative).read_text())
    return loaded


def stripe_header(body: bytes, secret: str = STRIPE_SECRET, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` for ``body``, made by Stripe's own library."""
    stamp = int(time.time()) if timestamp is None else timestamp
    header: str = stripe.WebhookSignature.generate_signature_header(
        body.decode("utf-8"), secret, stamp
    )
    return header


def stripe_event(event_type: str = "invoice.paid", event_id: str | None = None) -> bytes:
    """The real ``invoice.paid`` event with a fresh id and the given type, re-serialised, made a
    French consumer's sale (20.00 EUR, VAT 20 % included: :func:`french_vat_included`)."""
    event = json.loads(fixture_bytes("stripe/event_invoice.paid.json"))
    event["id"] = event_id or f"evt_{uuid.uuid4().hex[:24]}"
    event["type"] = event_type
    invoice = event["data"]["object"]
    invoice["currency"] = "eur"
    for line in invoice["lines"]["data"]:
        line["currency"] = "eur"
    event["data"]["object"] = french_vat_included(invoice)
    return json.dumps(event, indent=2).encode()


def shopify_headers(
    body: bytes, topic: str, event_id: str, shop: str = "maison-colombe.myshopify.com"
) -> dict[str, str]:
    """The headers Shopify sends with ``body`` (API 2025-10), signed with the test secret."""
    return {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": shopify_sign(body, SHOPIFY_SECRET),
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Webhook-Id": f"wh-{event_id}",
    }


@dataclass
class ShopifyDelivery:
    body: bytes
    topic: str = "orders/paid"
    event_id: str | None = field(default_factory=lambda: str(uuid.uuid4()))
    webhook_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    shop: str = SHOP
    secret: str = SHOPIFY_SECRET

    def headers(self, **overrides: str) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Hmac-Sha256": shopify_sign(self.body, self.secret),
            "X-Shopify-Topic": self.topic,
            "X-Shopify-Shop-Domain": self.shop,
            "X-Shopify-API-Version": "2026-04",
            "X-Shopify-Webhook-Id": self.webhook_id,
            "X-Shopify-Triggered-At": "2026-11-23T21:00:00.000000Z",
        }
        if self.event_id is not None:
            headers["X-Shopify-Event-Id"] = self.event_id
        headers.update(overrides)
        return headers
