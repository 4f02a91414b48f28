"""Recovery's small pieces: exact JSON bodies, the GraphQL-to-webhook shapes, pacing, the cost bucket."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from bridge.inbound.events import parse_json
from bridge.recovery.jsonbody import dump_body
from bridge.recovery.pacing import Pacer
from bridge.recovery.progress import Progress
from bridge.recovery.shopify_api import ShopifyAdmin, ShopifyApiError
from bridge.recovery.shopify_shapes import legacy_id, order_payload, refund_payload
from tests.support.fake_shopify import TOKEN, FakeShopify, fake_shopify_server, order_node, refund

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_bodies_keep_every_number_exact() -> None:
    body = b'{"a":12.50,"big":123456789012345678901,"s":"x\\u0000y","n":[0.1,-2E-3]}'
    again = dump_body(parse_json(body))
    assert parse_json(again) == parse_json(body)
    assert b"12.50" in again
    assert b"123456789012345678901" in again


def test_order_and_refund_nodes_take_the_webhook_shape() -> None:
    node = order_node(450789469, "24.00", AT)
    refund(node, 509562969, "12.00", AT)
    order = order_payload(node)
    assert order["id"] == 450789469
    assert order["financial_status"] == "partially_refunded"
    assert order["total_price_set"]["presentment_money"] == {
        "amount": "24.00",
        "currency_code": "EUR",
    }
    assert order["line_items"][0]["tax_lines"][0]["price"] == "4.00"
    assert order["billing_address"]["country_code"] == "FR"
    node["refunds"][0]["refundShippingLines"]["nodes"] = [
        {"subtotalAmountSet": {"shopMoney": {"amount": "5.00", "currencyCode": "EUR"}},
         "taxAmountSet": {"shopMoney": {"amount": "1.00", "currencyCode": "EUR"}}}
    ]  # fmt: skip
    payload = refund_payload(order["id"], node["refunds"][0])
    assert payload["id"] == 509562969
    assert payload["order_id"] == 450789469
    assert payload["transactions"] == [
        {"kind": "refund", "status": "success", "gateway": "shopify_payments", "amount": "12.00", "currency": "EUR"}
    ]  # fmt: skip
    (shipping,) = payload["order_adjustments"]
    assert (shipping["kind"], shipping["amount"], shipping["tax_amount"]) == (
        "shipping_refund",
        "-5.00",
        "-1.00",
    )
    assert legacy_id("gid://shopify/Order/1?x=1") == 1
    assert legacy_id("nonsense") is None


def test_the_pacer_spaces_requests() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = Pacer(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pacer.wait()
    assert slept == [0.25] * 4


def test_progress_logs_the_share_covered_and_an_eta_off_a_terminal() -> None:
    class Pipe:
        def isatty(self) -> bool:
            return False

    with capture_logs() as logs:
        progress = Progress("stripe", stream=Pipe())  # type: ignore[arg-type]
        progress.update(0.5, stored=10)
        progress.close()
    (line,) = logs
    assert line["event"] == "backfill.progress"
    assert line["covered_pct"] == 50.0
    assert line["stored"] == 10
    assert line["eta_s"] is not None


def test_a_throttled_query_waits_for_the_bucket_then_succeeds() -> None:
    fake = FakeShopify(maximum=100, available=0, restore_rate=100)
    fake.orders = [order_node(1, "10.00", AT)]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with fake_shopify_server(fake):
        admin = ShopifyAdmin(f"{fake.url}/admin/api/2025-10/graphql.json", TOKEN, sleep=sleep)
        fake.refilled_at = time.monotonic()  # an empty bucket: the first query costs 52 points
        pages = list(admin.orders("updated_at:>='2026-01-01T00:00:00+00:00'"))
        admin.close()
    assert fake.throttled == 1
    assert [len(nodes) for nodes, _ in pages] == [1]
    assert 0.2 < sum(waits) < 2.0  # (52 - what refilled meanwhile) / 100 points per second


def test_a_wrong_token_is_a_clear_error() -> None:
    with fake_shopify_server() as fake:
        admin = ShopifyAdmin(f"{fake.url}/admin/api/2025-10/graphql.json", "shpat_wrong")
        with pytest.raises(ShopifyApiError, match="HTTP 401"):
            admin.query("{ orders(first: 1) { nodes { id } } }", {})
        admin.close()
