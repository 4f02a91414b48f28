"""How the providers' answers about our webhook endpoints are judged."""

from __future__ import annotations

from bridge.watch.endpoints import shopify_state, stripe_state

NEEDED = {"invoice.paid", "charge.refunded"}
OURS = "https://bridge.example.com/webhooks/stripe"


def _endpoint(
    url: str = OURS, status: str = "enabled", events: list[str] | None = None
) -> dict[str, object]:
    return {"id": "we_1", "url": url, "status": status, "enabled_events": events or ["*"]}


def test_an_enabled_endpoint_listening_to_everything_is_ok() -> None:
    assert stripe_state([_endpoint()], NEEDED, None).state == "ok"


def test_no_endpoint_at_this_bridge_is_missing() -> None:
    other = _endpoint(url="https://elsewhere.example.com/hooks")
    assert stripe_state([other], NEEDED, None).state == "missing"
    assert stripe_state([], NEEDED, None).state == "missing"


def test_the_public_url_picks_the_endpoint_exactly() -> None:
    assert stripe_state([_endpoint()], NEEDED, "https://bridge.example.com").state == "ok"
    assert stripe_state([_endpoint()], NEEDED, "https://other.example.com").state == "missing"


def test_a_disabled_endpoint_says_so() -> None:
    result = stripe_state([_endpoint(status="disabled")], NEEDED, None)
    assert (result.state, result.detail) == ("disabled", "endpoint we_1 is disabled")
    assert not result.ok


def test_event_types_not_listened_to_are_named() -> None:
    result = stripe_state([_endpoint(events=["invoice.paid"])], NEEDED, None)
    assert (result.state, result.not_subscribed) == ("incomplete", ["charge.refunded"])


def test_shopify_subscriptions_per_topic() -> None:
    uri = "https://bridge.example.com/webhooks/shopify"
    subs = [{"id": "gid://1", "topic": "ORDERS_PAID", "uri": uri}]
    assert shopify_state(subs, {"ORDERS_PAID"}, None).state == "ok"
    missing = shopify_state(subs, {"ORDERS_PAID", "REFUNDS_CREATE"}, None)
    assert (missing.state, missing.not_subscribed) == ("incomplete", ["REFUNDS_CREATE"])
    assert shopify_state([], {"ORDERS_PAID"}, None).state == "missing"
