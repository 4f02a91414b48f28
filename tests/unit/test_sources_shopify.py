"""Shopify HMAC verification and delivery reading, on the fixtures' vectors and real payloads."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.inbound.events import Source
from bridge.inbound.sources import WebhookRejectedError
from bridge.inbound.sources import shopify as source
from tests.support.webhooks import SHOP, ShopifyDelivery, fixture_bytes, vectors

VECTORS = vectors("shopify/hmac_vectors.json")


def _body(vector: dict[str, Any]) -> bytes:
    if "body_file" in vector:
        body = fixture_bytes(vector["body_file"])
        assert hashlib.sha256(body).hexdigest() == vector["body_sha256"]
        return body
    text: str = vector["body"]
    return text.encode()


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_published_vectors(vector: dict[str, Any]) -> None:
    body = _body(vector)
    assert source.sign(body, vector["secret"]) == vector["expected_x_shopify_hmac_sha256"]
    source.verify(body, vector["expected_x_shopify_hmac_sha256"], [vector["secret"]])


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_tampered_body_wrong_secret_and_garbage_are_rejected(vector: dict[str, Any]) -> None:
    body, header = _body(vector), vector["expected_x_shopify_hmac_sha256"]
    for bad_body, bad_header, secrets in [
        (body + b" ", header, [vector["secret"]]),
        (body, header, ["another_app_secret"]),
        (body, VECTORS["negative_cases"][0]["header"], [vector["secret"]]),
        (body, "é" + header, [vector["secret"]]),
    ]:
        with pytest.raises(WebhookRejectedError, match="invalid X-Shopify-Hmac-Sha256") as info:
            source.verify(bad_body, bad_header, secrets)
        assert info.value.status_code == 400


def test_any_configured_secret_verifies_during_a_rotation() -> None:
    vector = VECTORS["vectors"][1]
    source.verify(
        _body(vector), vector["expected_x_shopify_hmac_sha256"], ["new", "API_SECRET_KEY"]
    )


def test_missing_header_and_no_secret() -> None:
    with pytest.raises(WebhookRejectedError, match="missing X-Shopify-Hmac-Sha256"):
        source.verify(b"{}", None, ["API_SECRET_KEY"])
    with pytest.raises(WebhookRejectedError) as info:
        source.verify(b"{}", "+ihUB5l+D7QrohDEi/6NcBcJRyKssyWqos13LmnsBbs=", [])
    assert info.value.status_code == 503


def test_kept_headers_are_lower_cased_and_others_dropped() -> None:
    delivery = ShopifyDelivery(b"{}")
    headers = {k.lower(): v for k, v in delivery.headers(**{"X-Other": "x"}).items()}
    kept = source.kept_headers(headers)
    assert set(kept) == set(source.KEPT_HEADERS)
    assert kept["x-shopify-shop-domain"] == SHOP
    with pytest.raises(WebhookRejectedError, match="malformed X-Shopify-Topic"):
        source.kept_headers({"x-shopify-topic": "a" * 300})


def test_event_id_is_the_dedup_key_falling_back_to_the_webhook_id() -> None:
    kept = {"x-shopify-topic": "orders/paid", "x-shopify-webhook-id": "w1"}
    assert source.delivery(b"{}", kept).event_id == "w1"
    assert source.delivery(b"{}", {**kept, "x-shopify-event-id": "e1"}).event_id == "e1"
    with pytest.raises(WebhookRejectedError, match="missing X-Shopify-Topic"):
        source.delivery(b"{}", {"x-shopify-webhook-id": "w1"})
    with pytest.raises(WebhookRejectedError, match="Event-Id and X-Shopify-Webhook-Id"):
        source.delivery(b"{}", {"x-shopify-topic": "orders/paid"})


def test_shop_allow_list() -> None:
    source.check_shop({"x-shopify-shop-domain": SHOP.upper()}, frozenset({SHOP}))
    source.check_shop({}, frozenset())
    for kept in ({"x-shopify-shop-domain": "other.myshopify.com"}, {}):
        with pytest.raises(WebhookRejectedError, match="SHOPIFY_SHOP_DOMAINS") as info:
            source.check_shop(kept, frozenset({SHOP}))
        assert info.value.status_code == 403


def test_a_body_that_is_not_an_object_is_a_failed_delivery() -> None:
    kept = {"x-shopify-topic": "orders/paid", "x-shopify-webhook-id": "w1"}
    bad = source.delivery(b"\xff{", kept)
    assert bad.parse_error is not None
    assert bad.parse_error.startswith("invalid JSON")
    listed = source.delivery(b"[]", kept)
    assert listed.parse_error == "body is a JSON list, not an object"
    good = source.delivery(fixture_bytes("shopify/orders_paid.json"), kept)
    assert good.parse_error is None
    assert good.source is Source.SHOPIFY
    assert good.event_type == "orders/paid"


@pytest.mark.parametrize(
    "name", ["orders_paid.json", "refunds_create.json", "customers_create.json"]
)
def test_ids_beyond_2_pow_53_stay_exact(name: str) -> None:
    body = fixture_bytes(f"shopify/{name}")
    headers = {"x-shopify-topic": "orders/paid", "x-shopify-event-id": "e1", "x-other": "x"}
    event = source.parse(body, headers, datetime.now(UTC), inbox_event_id=3)
    assert event.headers == {"x-shopify-topic": "orders/paid", "x-shopify-event-id": "e1"}
    big = [int(m) for m in re.findall(rb"\b\d{16,19}\b", body) if int(m) > 2**53]
    assert big, "the fixture has ids beyond 2**53"
    found = set(_ints(event.payload))
    assert set(big) <= found
    assert event.payload["id"] == json.loads(body)["id"]  # the stdlib keeps ints exact too
    if "admin_graphql_api_id" in event.payload:
        gid = event.payload["admin_graphql_api_id"].rsplit("/", 1)[1]
        assert event.payload["id"] == int(gid)


def _ints(value: Any) -> list[int]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _ints(v)]
    if isinstance(value, list):
        return [x for v in value for x in _ints(v)]
    return [value] if isinstance(value, int) and not isinstance(value, bool) else []


def test_the_newer_header_spelling_is_accepted_and_kept_under_one_name() -> None:
    body = fixture_bytes("shopify/orders_paid.json")
    newer = {
        "shopify-hmac-sha256": source.sign(body, "API_SECRET_KEY"),
        "shopify-topic": "orders/paid",
        "shopify-shop-domain": SHOP,
        "shopify-webhook-id": "w1",
        "shopify-event-id": "e1",
        "shopify-api-version": "2025-10",
    }
    source.verify(body, source.header(newer, source.HMAC_HEADER), ["API_SECRET_KEY"])
    kept = source.kept_headers(newer)
    assert kept == {
        "x-shopify-topic": "orders/paid",
        "x-shopify-shop-domain": SHOP,
        "x-shopify-webhook-id": "w1",
        "x-shopify-event-id": "e1",
        "x-shopify-api-version": "2025-10",
    }
    assert source.delivery(body, kept).event_id == "e1"


def test_two_spellings_that_disagree_are_refused() -> None:
    with pytest.raises(WebhookRejectedError, match="X-Shopify-Topic and Shopify-Topic disagree"):
        source.kept_headers({"x-shopify-topic": "orders/paid", "shopify-topic": "orders/cancelled"})


def test_the_shop_domain_is_normalised_before_anything_uses_it() -> None:
    kept = source.kept_headers({"x-shopify-shop-domain": "  Example-Shop.MyShopify.COM "})
    assert kept["x-shopify-shop-domain"] == SHOP
    source.check_shop(kept, frozenset({SHOP}))
    event = source.parse(
        b"{}",
        {"x-shopify-topic": "orders/paid", "x-shopify-event-id": "e1",
         "x-shopify-shop-domain": "Example-Shop.myshopify.com"},
        datetime.now(UTC),
    )  # fmt: skip
    assert event.shop_domain == SHOP  # rows stored before the normalisation read the same
