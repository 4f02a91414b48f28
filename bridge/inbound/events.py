"""The one shape every inbound webhook takes once stored: what the mapping stage reads."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


def parse_json(body: bytes | str) -> Any:
    """Parse a webhook body: integers stay exact (Shopify ids exceed 2**53), decimals are ``Decimal``.

    Raises ``ValueError`` (``json.JSONDecodeError`` or ``UnicodeDecodeError``) on a malformed body.
    """
    return json.loads(body, parse_float=Decimal)


class Source(enum.StrEnum):
    STRIPE = "stripe"
    SHOPIFY = "shopify"


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A verified webhook delivery, parsed. ``payload`` keeps integers exact (Shopify ids > 2**53)."""

    source: Source
    event_id: str  # Stripe event id; Shopify X-Shopify-Event-Id (else X-Shopify-Webhook-Id)
    event_type: str  # Stripe ``type`` ("invoice.paid"); Shopify topic ("orders/paid")
    payload: dict[str, Any]
    received_at: datetime
    headers: dict[str, str] = field(default_factory=dict)  # the kept X-Shopify-* headers
    inbox_event_id: int | None = None  # the inbox row, once stored

    @property
    def shop_domain(self) -> str | None:
        """The shop, trimmed and lower-cased (rows stored before that normalisation too)."""
        domain = self.headers.get("x-shopify-shop-domain")
        return domain.strip().lower() if domain is not None else None
