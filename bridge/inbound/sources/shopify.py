"""Shopify webhooks: ``X-Shopify-Hmac-Sha256`` checked on the raw body, the event read from headers.

The HMAC is base64(HMAC-SHA256(app secret, raw body)), compared in constant time with each
configured secret in turn (rotation). Only the body is signed: the topic and ids come from the
``X-Shopify-*`` headers, which are kept on the inbox row under their lower-cased ``x-shopify-*``
names. Shopify's newer deliveries spell the same headers without the ``X-`` prefix
(``Shopify-Hmac-Sha256``, ``Shopify-Topic``…): both spellings are read, and stored under one name.

Because the headers are not signed, nothing they say is trusted beyond what it can decide safely:
the shop domain is normalised (trimmed, lower case) before it is checked against
``SHOPIFY_SHOP_DOMAINS`` or becomes part of a key, so a replayed body under ``Shop.MyShopify.com``
is the same shop; and each mapping checks that the body is what the topic claims
(``mappings/shopify/*.yaml``, ``fail:`` rules), so a paid order replayed as a cancellation is refused.

The dedup key is ``X-Shopify-Event-Id`` (the same event sent to two subscriptions, or redelivered,
carries the same one), falling back to ``X-Shopify-Webhook-Id`` for deliveries without it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from bridge.inbound.events import InboundEvent, Source, parse_json
from bridge.inbound.sources import Delivery, WebhookRejectedError, clean_key

HMAC_HEADER = "x-shopify-hmac-sha256"
TOPIC = "x-shopify-topic"
SHOP_DOMAIN = "x-shopify-shop-domain"
API_VERSION = "x-shopify-api-version"
WEBHOOK_ID = "x-shopify-webhook-id"
EVENT_ID = "x-shopify-event-id"
TRIGGERED_AT = "x-shopify-triggered-at"
KEPT_HEADERS = (TOPIC, SHOP_DOMAIN, API_VERSION, WEBHOOK_ID, EVENT_ID, TRIGGERED_AT)
MAX_HEADER_LENGTH = 255
_NEWER_PREFIX = "shopify-"  # the newer spelling: "shopify-topic" for "x-shopify-topic"


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Header ``name`` (an ``x-shopify-*`` name) in either spelling; the ``X-`` one wins."""
    value = headers.get(name)
    if value is None:
        value = headers.get(name.removeprefix("x-"))
    return value


def normalise_shop(domain: str) -> str:
    """A shop domain as it is keyed and allow-listed: trimmed, lower case."""
    return domain.strip().lower()


def sign(body: bytes, secret: str) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value for ``body`` (for tests, benchmarks and tools)."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(body: bytes, signature: str | None, secrets: Sequence[str]) -> None:
    """Raise :class:`WebhookRejectedError` unless ``signature`` is the HMAC of ``body`` under one of ``secrets``.

    Every secret is tried, whatever matched, so the time taken says nothing about which one did.
    """
    if not secrets:
        raise WebhookRejectedError(
            "no Shopify webhook secret is configured (SHOPIFY_WEBHOOK_SECRETS)", 503
        )
    if not signature:
        raise WebhookRejectedError("missing X-Shopify-Hmac-Sha256 header")
    # Starlette decodes header values as latin-1: encoding back gives the bytes as sent.
    received = signature.strip().encode("latin-1", "replace")
    matched = False
    for secret in secrets:
        expected = sign(body, secret).encode("ascii")
        matched |= hmac.compare_digest(expected, received)
    if not matched:
        raise WebhookRejectedError("invalid X-Shopify-Hmac-Sha256")


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``X-Shopify-*`` headers the inbox keeps, under their ``x-shopify-*`` names, the shop
    domain normalised; raise :class:`WebhookRejectedError` if absurd, or if the two spellings of
    one header disagree."""
    kept: dict[str, str] = {}
    for name in KEPT_HEADERS:
        value = header(headers, name)
        if value is None:
            continue
        newer = headers.get(name.removeprefix("x-"))
        if clean_key(value) is None or len(value) > MAX_HEADER_LENGTH:
            raise WebhookRejectedError(f"malformed {_display(name)} header")
        if newer is not None and newer != value:
            raise WebhookRejectedError(
                f"{_display(name)} and {_display(name.removeprefix('x-'))} disagree"
            )
        kept[name] = normalise_shop(value) if name == SHOP_DOMAIN else value
    return kept


def check_shop(kept: Mapping[str, str], allowed: Collection[str]) -> None:
    """Raise :class:`WebhookRejectedError` (403) if an allow-list is set and the shop isn't on it."""
    if not allowed:
        return
    domain = normalise_shop(kept.get(SHOP_DOMAIN, ""))
    if domain not in allowed:
        raise WebhookRejectedError(
            f"shop domain {domain or '(none)'!r} is not in SHOPIFY_SHOP_DOMAINS", 403
        )


def delivery(body: bytes, kept: Mapping[str, str]) -> Delivery:
    """What to store for a verified body with its kept headers.

    Raises :class:`WebhookRejectedError` when the topic or both ids are missing (no Shopify delivery lacks
    them); a body that isn't a JSON object is kept, as failed.
    """
    topic = kept.get(TOPIC)
    if topic is None:
        raise WebhookRejectedError("missing X-Shopify-Topic header")
    event_id = kept.get(EVENT_ID) or kept.get(WEBHOOK_ID)
    if event_id is None:
        raise WebhookRejectedError("missing X-Shopify-Event-Id and X-Shopify-Webhook-Id headers")
    parse_error = None
    try:
        payload: Any = parse_json(body)
    except ValueError as exc:
        parse_error = f"invalid JSON: {exc}"
    else:
        if not isinstance(payload, dict):
            parse_error = f"body is a JSON {type(payload).__name__}, not an object"
    return Delivery(Source.SHOPIFY, event_id, topic, body, dict(kept), parse_error)


def parse(
    body: bytes,
    headers: Mapping[str, str],
    received_at: datetime,
    inbox_event_id: int | None = None,
) -> InboundEvent:
    """The stored body and headers as an :class:`InboundEvent`; ``ValueError`` if unusable.

    Integers stay exact: Shopify ids exceed 2**53.
    """
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise ValueError("a Shopify webhook body must be a JSON object")
    topic = headers.get(TOPIC)
    event_id = headers.get(EVENT_ID) or headers.get(WEBHOOK_ID)
    if not topic or not event_id:
        raise ValueError("a Shopify delivery needs X-Shopify-Topic and an event or webhook id")
    return InboundEvent(
        source=Source.SHOPIFY,
        event_id=event_id,
        event_type=topic,
        payload=payload,
        received_at=received_at,
        headers={k: v for k, v in headers.items() if k in KEPT_HEADERS},
        inbox_event_id=inbox_event_id,
    )


def _display(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-")).replace("Api", "API")
