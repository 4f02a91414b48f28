"""Shared pieces for backfill and reconcile tests: settings for the fakes, a worker, the ledger."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.mapping.engine import MappingEngine
from bridge.mapping.stage import Stage
from bridge.outbox.worker import Worker
from bridge.runtime import Runtime
from facturation_sandbox import Sandbox
from tests.support.fake_shopify import SHOP, TOKEN, FakeShopify
from tests.support.fake_stripe import API_KEY, FakeStripe, paid_invoice_event, succeeded_intent
from tests.support.outbox_kit import settings_for
from tests.support.sandbox import in_process_client

NOW = datetime.now(UTC).replace(microsecond=0)


def days_ago(days: float) -> int:
    return int((NOW - timedelta(days=days)).timestamp())


@contextmanager
def recovery_runtime(
    url: str,
    stripe: FakeStripe | None = None,
    shopify: FakeShopify | None = None,
    **overrides: Any,
) -> Iterator[Runtime]:
    extra: dict[str, Any] = dict(overrides)
    if stripe is not None:
        extra.update(stripe_api_key=API_KEY, stripe_api_base=stripe.url, stripe_backfill_rate=100)
    if shopify is not None:
        extra.update(
            shopify_shop_domain=SHOP, shopify_admin_token=TOKEN, shopify_admin_url=shopify.url
        )
    runtime = Runtime.open(settings_for(url, **extra))
    try:
        yield runtime
    finally:
        runtime.close()


def run_worker(runtime: Runtime, sandbox: Sandbox, *, max_steps: int = 5000) -> int:
    """Map and deliver everything waiting, against the in-process sandbox."""
    client = in_process_client(sandbox)
    mapper = MappingEngine.load(runtime.settings, network=False)
    worker = Worker(runtime, client, mapper, worker_id="w", rng=random.Random(1))
    try:
        for step in range(max_steps):
            if not worker.step():
                return step
    finally:
        client.close()
    raise AssertionError(f"worker still busy after {max_steps} steps")


def map_all(runtime: Runtime) -> None:
    """Run only the mapping stage: received events become commands, nothing is delivered."""
    stage = Stage(runtime.sessions, MappingEngine.load(runtime.settings, network=False))
    while stage.run_once():
        pass


def documents_by_key(ledger: dict[str, Any]) -> Counter[str]:
    return Counter(str(i.get("api_custom")) for i in ledger["invoices"])


def stripe_sales(fake: FakeStripe, orders: range, *, age_days: float, by_events: bool) -> None:
    """Paid invoices in the fake: as events (last 30 days) or as invoice objects (older)."""
    for order in orders:
        event = paid_invoice_event(order, f"cus_r{order % 5}", 1000 + order, days_ago(age_days))
        intent = event["data"]["object"]["payment_intent"]  # one for all: the fixture's
        fake.payment_intents.setdefault(intent, succeeded_intent(intent, "card", 1000 + order))
        if by_events:
            fake.events.append(event)
        else:
            fake.add("/v1/invoices", event["data"]["object"])
