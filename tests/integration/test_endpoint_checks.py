"""The worker asks Stripe and Shopify (local fakes over real HTTP) whether our webhooks are still
registered, keeps the answer for status, and alerts when one is missing or disabled."""

from __future__ import annotations

from datetime import timedelta

from bridge.admin.operations import status
from bridge.config import Settings, load_settings
from bridge.watch.alerts import Watch
from bridge.watch.conditions import WatchLimits
from bridge.watch.endpoints import check_endpoints
from tests.integration.test_alerts import LIMITS, Recorder
from tests.support.fake_shopify import SHOP, TOKEN, FakeShopify, fake_shopify_server
from tests.support.fake_stripe import API_KEY, FakeStripe, serve_fake_stripe
from tests.support.outbox_kit import Clock, runtime_for

PUBLIC = "https://bridge.example.com"


def _settings(stripe_url: str, shopify_url: str) -> Settings:
    return load_settings(
        STRIPE_API_KEY=API_KEY,
        STRIPE_API_BASE=stripe_url,
        STRIPE_WEBHOOK_SECRETS="whsec_test",
        SHOPIFY_WEBHOOK_SECRETS="shopify_secret",
        SHOPIFY_SHOP_DOMAIN=SHOP,
        SHOPIFY_ADMIN_TOKEN=TOKEN,
        SHOPIFY_ADMIN_URL=shopify_url,
        BRIDGE_PUBLIC_URL=PUBLIC,
    )


def test_endpoints_are_checked_through_the_providers_apis(db_url: str) -> None:
    stripe, shopify = FakeStripe(), FakeShopify()
    stripe.add(
        "/v1/webhook_endpoints",
        {
            "id": "we_ours",
            "object": "webhook_endpoint",
            "url": f"{PUBLIC}/webhooks/stripe",
            "status": "disabled",  # what Stripe does after days of failed deliveries
            "enabled_events": ["*"],
            "created": 1_764_000_000,
        },
    )
    shopify.subscriptions = [
        {
            "id": "gid://shopify/WebhookSubscription/1",
            "topic": topic,
            "uri": f"{PUBLIC}/webhooks/shopify",
        }
        for topic in (
            "ORDERS_PAID",
            "REFUNDS_CREATE",
            "ORDERS_CANCELLED",
            "CUSTOMERS_UPDATE",
            "ORDERS_EDITED",
        )
    ]
    clock = Clock()
    with serve_fake_stripe(stripe), fake_shopify_server(shopify):
        settings = _settings(stripe.url, shopify.url)
        results = check_endpoints(settings)
        assert results["stripe"].state == "disabled"
        assert results["shopify"].state == "ok", results["shopify"].detail
        assert "/v1/webhook_endpoints" in stripe.paths
        with runtime_for(db_url) as runtime:
            recorder = Recorder()
            watch = Watch(
                runtime.sessions,
                recorder,
                WatchLimits(backlog_s=3600, silence=None, sources=()),
                every_s=60,
                repeat=timedelta(hours=6),
                clock=clock,
                check_endpoints=lambda: check_endpoints(settings),
                endpoints_every_s=3600,
            )
            watch.tick()
            assert recorder.sent == [("the stripe webhook endpoint is disabled", "failure")]
            with runtime.sessions() as session:
                shown = status(session, clock())["webhook_endpoints"]
            assert shown["sources"]["stripe"]["detail"] == "endpoint we_ours is disabled"
            assert shown["sources"]["shopify"]["state"] == "ok"

            calls = len(stripe.paths)
            clock.advance(61)
            watch.tick()  # an hour has not passed: the providers are not asked again
            assert len(stripe.paths) == calls
            stripe.objects["/v1/webhook_endpoints"][0]["status"] = "enabled"
            clock.advance(3600)
            watch.tick()
            assert len(stripe.paths) > calls
            assert recorder.sent[-1] == ("resolved: endpoint:stripe:disabled", "success")


def test_without_api_credentials_nothing_is_guessed() -> None:
    settings = load_settings(STRIPE_WEBHOOK_SECRETS="whsec_test", SHOPIFY_WEBHOOK_SECRETS="s")
    results = check_endpoints(settings)
    assert {k: v.state for k, v in results.items()} == {
        "stripe": "unchecked",
        "shopify": "unchecked",
    }
    assert LIMITS.sources == ("stripe", "shopify")
