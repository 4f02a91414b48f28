"""Backfill after a gap, with real processes: the bridge's web and worker, the sandbox, and local
fakes of Stripe and Shopify. Sales that also arrive by webhook *during* the backfill are invoiced
once; reconcile then finds the books clean."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.bridge_procs import (
    Webhook,
    bridge_env,
    post_all,
    running_bridge,
    sandbox_to_file,
)
from tests.support.fake_shopify import SHOP, TOKEN, FakeShopify, fake_shopify_server, order_node
from tests.support.fake_stripe import API_KEY, FakeStripe, serve_fake_stripe
from tests.support.recovery_kit import NOW, documents_by_key, stripe_sales
from tests.support.shopify_traffic import french_order
from tests.support.webhooks import SHOPIFY_SECRET, ShopifyDelivery

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SINCE = (NOW - timedelta(days=45)).date().isoformat()
STRIPE_SALES, SHOPIFY_SALES = 40, 30


def _shopify_webhook(order_id: int) -> ShopifyDelivery:
    order = french_order(order_id)
    order.update(test=False, financial_status="paid")
    return ShopifyDelivery(json.dumps(order).encode(), shop=SHOP)


def _post_shopify(url: str, deliveries: list[ShopifyDelivery]) -> None:
    with httpx.Client(timeout=10) as client:
        for d in deliveries:
            response = client.post(f"{url}/webhooks/shopify", content=d.body, headers=d.headers())
            assert response.status_code == 200, response.text


def _wait_for(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError("not reached in time")


def _cli(env: dict[str, str], *argv: str, log: Path) -> subprocess.CompletedProcess[bytes]:
    with log.open("ab") as err:
        return subprocess.run(
            [sys.executable, "-m", "bridge", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            timeout=300,
            check=False,
        )


def test_backfill_after_a_gap_invoices_every_missed_sale_exactly_once(tmp_path: Path) -> None:
    stripe = FakeStripe(page_size=10)
    stripe_sales(stripe, range(0, 25), age_days=5, by_events=True)
    stripe_sales(stripe, range(25, STRIPE_SALES), age_days=40, by_events=False)
    shopify = FakeShopify(maximum=200, available=200, restore_rate=100)
    shopify.orders = [
        order_node(5000 + i, f"{30 + i}.50", NOW - timedelta(days=3, minutes=i))
        for i in range(SHOPIFY_SALES)
    ]
    db_url = f"sqlite:///{tmp_path / 'bridge.db'}"
    with (
        serve_fake_stripe(stripe),
        fake_shopify_server(shopify),
        sandbox_to_file(tmp_path / "sandbox.log") as sandbox,
    ):
        env = bridge_env(
            db_url,
            sandbox.url,
            STRIPE_API_KEY=API_KEY,
            STRIPE_API_BASE=stripe.url,
            SHOPIFY_WEBHOOK_SECRETS=SHOPIFY_SECRET,
            SHOPIFY_SHOP_DOMAIN=SHOP,
            SHOPIFY_ADMIN_TOKEN=TOKEN,
            SHOPIFY_ADMIN_URL=shopify.url,
        )
        with running_bridge(env, tmp_path, workers=1) as bridge:
            # before the gap: the first sales arrived by webhook
            live = [Webhook(e["id"], json.dumps(e).encode()) for e in stripe.events[:5]]
            post_all(bridge.url, live, threads=2)
            _post_shopify(bridge.url, [_shopify_webhook(5000 + i) for i in range(3)])
            # the gap is over: backfill both, while late webhooks for missed sales arrive
            late_stripe = [Webhook(e["id"], json.dumps(e).encode()) for e in stripe.events[5:15]]
            late_shopify = [_shopify_webhook(5000 + i) for i in range(3, 10)]
            senders = [
                threading.Thread(target=post_all, args=(bridge.url, late_stripe), kwargs={"threads": 2}),
                threading.Thread(target=_post_shopify, args=(bridge.url, late_shopify)),
            ]  # fmt: skip
            for t in senders:
                t.start()
            for source in ("stripe", "shopify"):
                done = _cli(env, "backfill", source, "--since", SINCE, log=tmp_path / "cli.log")
                assert done.returncode == 0, (tmp_path / "cli.log").read_text()[-2000:]
                assert json.loads(done.stdout)["source"] == source
            for t in senders:
                t.join(60)

            expected = STRIPE_SALES + SHOPIFY_SALES

            def all_invoiced() -> bool:
                return len(documents_by_key(sandbox.ledger())) >= expected

            _wait_for(all_invoiced, timeout=240)
            time.sleep(2)  # anything still in flight would show up as a second document
            docs = documents_by_key(sandbox.ledger())
            assert {k: n for k, n in docs.items() if n != 1} == {}
            assert len(docs) == expected
            stripe_keys = {f"stripe:invoice:in_chaos_{o:05d}" for o in range(STRIPE_SALES)}
            shop_keys = {f"shopify:{SHOP}:order:{5000 + i}" for i in range(SHOPIFY_SALES)}
            assert set(docs) == stripe_keys | shop_keys

            for event in stripe.events:  # reconcile reads Stripe's objects as they stand
                stripe.add("/v1/invoices", event["data"]["object"])
            report = _cli(env, "reconcile", "--since", SINCE, "--json", log=tmp_path / "cli.log")
            found: dict[str, Any] = json.loads(report.stdout)
            assert sorted(found) == sorted(
                ["missing", "duplicates", "amount_mismatches", "unrefunded", "orphans"]
            )
            # the webhook copies of Shopify orders 5000-5009 carry the authored order's amounts
            # (66.20 EUR, VAT included), and the first document of a sale wins: those are amount
            # mismatches against the API's order
            assert found["missing"] == found["duplicates"] == found["unrefunded"] == []
            assert found["orphans"] == []
            webhook_first = {str(5000 + i) for i in range(10)}
            assert {e["source_id"] for e in found["amount_mismatches"]} <= webhook_first
            assert report.returncode == (1 if found["amount_mismatches"] else 0)
