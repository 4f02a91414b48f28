"""Are the webhooks still registered? Checked through Stripe's and Shopify's own APIs.

Stripe disables an endpoint after days of failed deliveries, and Shopify deletes a subscription after
repeated failures: from then on nothing arrives, and nothing on our side fails. So the worker asks,
at start and every hour:

- **Stripe** (``STRIPE_API_KEY``): ``GET /v1/webhook_endpoints`` — an ``enabled`` endpoint whose URL
  is ``BRIDGE_PUBLIC_URL/webhooks/stripe`` (or, without that setting, any URL ending in
  ``/webhooks/stripe``) listening to every Stripe event the mappings handle (or ``*``);
- **Shopify** (``SHOPIFY_SHOP_DOMAIN`` + ``SHOPIFY_ADMIN_TOKEN``): the Admin GraphQL
  ``webhookSubscriptions`` — one subscription per topic the mappings handle, to that URL.

Each source's result is one :class:`EndpointState`: ``ok``, ``missing``, ``disabled``,
``incomplete`` (some event types or topics not subscribed), ``error`` (the provider's API could not
be read) or ``unchecked`` (no API credentials: the check is skipped, never guessed). The results are
kept in ``bridge_state`` (``webhook_endpoints``), shown by ``status`` and raise an alert when not ok.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from bridge.config import ConfigError, Settings
from bridge.mapping.files import all_mapping_files
from bridge.recovery.shopify_api import ShopifyAdmin, ShopifyApiError
from bridge.recovery.stripe_api import StripeListError, StripeLists

STATE_KEY = "webhook_endpoints"
PATHS = {"stripe": "/webhooks/stripe", "shopify": "/webhooks/shopify"}

SUBSCRIPTIONS_QUERY = """
query Subscriptions($first: Int!, $after: String) {
  webhookSubscriptions(first: $first, after: $after) {
    nodes { id topic uri }
    pageInfo { hasNextPage endCursor }
  }
}
"""


@dataclass(frozen=True, slots=True)
class EndpointState:
    source: str
    state: str  # ok, missing, disabled, incomplete, error, unchecked
    detail: str
    not_subscribed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state in ("ok", "unchecked")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def handled_types(settings: Settings) -> dict[str, set[str]]:
    """The event types (Stripe) and topics (Shopify, ``ORDERS_PAID`` style) the mappings handle."""
    out: dict[str, set[str]] = {"stripe": set(), "shopify": set()}
    for source, stem in all_mapping_files(settings.mappings_dir):
        if source == "stripe":
            out["stripe"].add(stem)
        elif source == "shopify":
            out["shopify"].add(stem.upper())
    return out


def _our_url(url: str, source: str, public_url: str | None) -> bool:
    if public_url:
        return url.rstrip("/") == public_url.rstrip("/") + PATHS[source]
    return url.rstrip("/").endswith(PATHS[source])


def stripe_state(
    endpoints: Iterable[dict[str, Any]], needed: set[str], public_url: str | None
) -> EndpointState:
    """Judge Stripe's webhook endpoints (the objects of ``GET /v1/webhook_endpoints``)."""
    ours = [e for e in endpoints if _our_url(str(e.get("url") or ""), "stripe", public_url)]
    if not ours:
        return EndpointState("stripe", "missing", "no webhook endpoint points at this bridge")
    enabled = [e for e in ours if e.get("status") == "enabled"]
    if not enabled:
        return EndpointState(
            "stripe", "disabled", f"endpoint {ours[0].get('id')} is {ours[0].get('status')}"
        )
    listened: set[str] = set()
    for e in enabled:
        listened.update(str(t) for t in e.get("enabled_events") or [])
    missing = [] if "*" in listened else sorted(needed - listened)
    if missing:
        return EndpointState(
            "stripe", "incomplete", f"not subscribed to {', '.join(missing)}", missing
        )
    return EndpointState("stripe", "ok", f"endpoint {enabled[0].get('id')} enabled")


def shopify_state(
    subscriptions: Iterable[dict[str, Any]], needed: set[str], public_url: str | None
) -> EndpointState:
    """Judge Shopify's webhook subscriptions (nodes of ``webhookSubscriptions``)."""
    ours = [s for s in subscriptions if _our_url(str(s.get("uri") or ""), "shopify", public_url)]
    if not ours:
        return EndpointState("shopify", "missing", "no webhook subscription points at this bridge")
    missing = sorted(needed - {str(s.get("topic")) for s in ours})
    if missing:
        return EndpointState(
            "shopify", "incomplete", f"not subscribed to {', '.join(missing)}", missing
        )
    return EndpointState("shopify", "ok", f"{len(ours)} subscription(s) to this bridge")


def check_stripe(settings: Settings, needed: set[str]) -> EndpointState:
    try:
        lists = StripeLists.from_settings(settings)
    except ConfigError:
        return EndpointState("stripe", "unchecked", "STRIPE_API_KEY not set")
    try:
        endpoints = [o for page, _ in lists.iterate("/v1/webhook_endpoints", {}) for o in page.data]
    except StripeListError as exc:
        return EndpointState("stripe", "error", str(exc))
    return stripe_state(endpoints, needed, settings.public_url)


def check_shopify(settings: Settings, needed: set[str]) -> EndpointState:
    try:
        admin = ShopifyAdmin.from_settings(settings)
    except ConfigError:
        return EndpointState(
            "shopify", "unchecked", "SHOPIFY_SHOP_DOMAIN or SHOPIFY_ADMIN_TOKEN not set"
        )
    nodes: list[dict[str, Any]] = []
    after: str | None = None
    try:
        while True:
            data = admin.query(SUBSCRIPTIONS_QUERY, {"first": 100, "after": after})
            found = data.get("webhookSubscriptions") or {}
            nodes.extend(n for n in found.get("nodes") or [] if isinstance(n, dict))
            info = found.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            after = info.get("endCursor")
    except ShopifyApiError as exc:
        return EndpointState("shopify", "error", str(exc))
    finally:
        admin.close()
    return shopify_state(nodes, needed, settings.public_url)


def check_endpoints(settings: Settings) -> dict[str, EndpointState]:
    """Check each source whose webhook secret is configured (the others receive nothing)."""
    needed = handled_types(settings)
    out: dict[str, EndpointState] = {}
    if settings.stripe_webhook_secrets:
        out["stripe"] = check_stripe(settings, needed["stripe"])
    if settings.shopify_webhook_secrets:
        out["shopify"] = check_shopify(settings, needed["shopify"])
    return out
