"""The webhook receiver as a real ``facturation-bridge web`` process, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bridge.db import make_engine
from bridge.db.models import InboxEvent
from tests.support.procs import free_port, wait_http
from tests.support.webhooks import (
    SHOPIFY_SECRET,
    STRIPE_SECRET,
    ShopifyDelivery,
    fixture_bytes,
    stripe_event,
    stripe_header,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("BRIDGE_", "STRIPE_", "SHOPIFY_"))
        },
        "BRIDGE_DATABASE_URL": db_url,
        "STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
        "SHOPIFY_WEBHOOK_SECRETS": SHOPIFY_SECRET,
        "BRIDGE_LOG_FORMAT": "json",
    }
    log = (tmp_path / "web.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "web", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        cwd=tmp_path,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()


def _stored(db_url: str) -> list[InboxEvent]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(InboxEvent.__table__).order_by(InboxEvent.id)).all()
            return [InboxEvent(**row._mapping) for row in rows]
    finally:
        engine.dispose()


async def _race(url: str, body: bytes, headers: dict[str, str], n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=n)) as client:
        return list(
            await asyncio.gather(
                *(client.post(url, content=body, headers=headers) for _ in range(n))
            )
        )


def test_concurrent_identical_deliveries_over_http_store_one_row(web: str, db_url: str) -> None:
    stripe_body = stripe_event()
    stripe_answers = asyncio.run(
        _race(
            f"{web}/webhooks/stripe",
            stripe_body,
            {"Stripe-Signature": stripe_header(stripe_body)},
            12,
        )
    )
    shop_body = fixture_bytes("shopify/orders_paid.json")
    shop_answers = asyncio.run(
        _race(f"{web}/webhooks/shopify", shop_body, ShopifyDelivery(shop_body).headers(), 12)
    )
    for answers in (stripe_answers, shop_answers):
        assert [a.status_code for a in answers] == [200] * 12
        assert sorted(a.json()["status"] for a in answers) == ["duplicate"] * 11 + ["stored"]
    rows = _stored(db_url)
    assert [(r.source, r.body) for r in rows] == [("stripe", stripe_body), ("shopify", shop_body)]
    assert rows[1].headers["x-shopify-topic"] == "orders/paid"


def test_bad_input_over_real_http(web: str, db_url: str) -> None:
    body = stripe_event()
    with httpx.Client(base_url=web) as client:
        bad = client.post(
            "/webhooks/stripe", content=body, headers={"Stripe-Signature": "t=1,v1=00"}
        )
        assert bad.status_code == 400
        huge = client.post("/webhooks/shopify", content=b"x" * (1024 * 1024 + 1))
        assert huge.status_code == 413
        assert client.get("/webhooks/shopify").status_code == 405
        ok = client.post(
            "/webhooks/stripe", content=body, headers={"Stripe-Signature": stripe_header(body)}
        )
        assert ok.status_code == 200
    assert [r.event_id for r in _stored(db_url)] == [json.loads(body)["id"]]
