"""A cancellation is decided when it is delivered, not when it is mapped (SQLite; PostgreSQL with
three workers mapping and delivering in parallel).

Each order's ``orders/cancelled`` is stored before its ``orders/paid`` (Shopify does not promise
the order of deliveries), and replays of the paid order under other letter cases of the shop
domain and the newer header spelling are stored too. Every order must end with exactly one
invoice and one full credit note of it, and nothing in the outbox cancelled or dead.
"""

from __future__ import annotations

import copy
import json
import random
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from bridge.config import Settings
from bridge.db.models import EventStatus, InboxEvent, OutboxCommand
from bridge.inbound.inbox import Inbox
from bridge.inbound.sources import shopify as shopify_source
from bridge.mapping.engine import MappingEngine
from bridge.outbox.worker import Worker
from bridge.runtime import Runtime
from tests.support.fake_api import FakeApi
from tests.support.outbox_kit import runtime_for
from tests.support.webhooks import fixture_bytes

SHOP = "maison-colombe.myshopify.com"
ORDERS = 8
DEADLINE_S = 240.0  # generous: the machine is shared


def _order(n: int, *, cancelled: bool) -> bytes:
    order: dict[str, Any] = json.loads(
        fixture_bytes("authored/shopify_orders_paid_fr_taxes_included.json")
    )
    order = copy.deepcopy(order)
    order["id"] = 7_000_000_000_000_000_000 + n
    order["name"] = f"#{3000 + n}"
    order["customer"]["id"] = 8_000_000_000_000_000_000 + n
    if cancelled:
        order["cancelled_at"] = "2026-05-07T09:30:00+02:00"
        order["cancel_reason"] = "customer"
    return json.dumps(order).encode()


def _deliver(inbox: Inbox, body: bytes, topic: str, event_id: str, headers: dict[str, str]) -> None:
    kept = shopify_source.kept_headers(
        {**headers, "x-shopify-topic": topic, "x-shopify-event-id": event_id}
    )
    delivery = shopify_source.delivery(body, kept)
    inbox.store(delivery, EventStatus.RECEIVED)


def _store_traffic(runtime: Runtime) -> None:
    inbox = Inbox(runtime.engine, busy_timeout=5.0)
    for n in range(ORDERS):
        # the cancellation first, then the sale, then replays under other spellings of the shop
        _deliver(inbox, _order(n, cancelled=True), "orders/cancelled", f"c{n}",
                 {"x-shopify-shop-domain": SHOP})  # fmt: skip
        _deliver(inbox, _order(n, cancelled=False), "orders/paid", f"p{n}",
                 {"x-shopify-shop-domain": SHOP})  # fmt: skip
        _deliver(inbox, _order(n, cancelled=False), "orders/paid", f"p{n}-replay",
                 {"x-shopify-shop-domain": SHOP.upper()})  # fmt: skip
        _deliver(inbox, _order(n, cancelled=False), "orders/paid", f"p{n}-newer",
                 {"shopify-shop-domain": " Maison-Colombe.myshopify.com "})  # fmt: skip


def _settled(runtime: Runtime) -> bool:
    with runtime.sessions() as session:
        waiting_events = session.execute(
            select(InboxEvent.id).where(InboxEvent.status == EventStatus.RECEIVED.value)
        ).first()
        waiting_commands = session.execute(
            select(OutboxCommand.id).where(OutboxCommand.status.in_(["pending", "in_flight"]))
        ).first()
    return waiting_events is None and waiting_commands is None


def _run_workers(runtime: Runtime, api: FakeApi, count: int) -> None:
    mapper = MappingEngine.load(Settings(), network=False)
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop(name: str, seed: int) -> None:
        worker = Worker(runtime, api, mapper, worker_id=name, rng=random.Random(seed))
        try:
            while not stop.is_set():
                if not worker.step():
                    time.sleep(0.02)
        except BaseException as exc:  # surfaced by the test below
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(f"w{i}", i)) for i in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline and not errors and not _settled(runtime):
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    assert _settled(runtime), "the outbox did not settle before the deadline"


@pytest.mark.parametrize(
    ("database", "workers"),
    [("sqlite_url", 1), pytest.param("pg_url", 3, marks=pytest.mark.postgres)],
)
def test_a_cancellation_mapped_before_its_sale_credits_the_invoice_once(
    request: pytest.FixtureRequest, database: str, workers: int
) -> None:
    url: str = request.getfixturevalue(database)
    api = FakeApi()
    with runtime_for(url, lease_seconds=60.0) as runtime:
        _store_traffic(runtime)
        _run_workers(runtime, api, workers)
        with runtime.sessions() as session:
            rows = session.execute(select(OutboxCommand)).scalars().all()
            events = session.execute(select(InboxEvent)).scalars().all()
    assert {e.status for e in events} == {EventStatus.MAPPED.value}
    assert {r.status for r in rows} == {"done"}, [(r.idempotency_key, r.last_error) for r in rows]
    assert api.duplicates() == []
    by_custom = api.by_custom()
    for n in range(ORDERS):
        order_id = 7_000_000_000_000_000_000 + n
        invoice = by_custom[f"shopify:{SHOP}:order:{order_id}"]
        credit = by_custom[f"shopify:{SHOP}:cancel:{order_id}"]
        assert credit["refund_of"] == invoice["id"]
    invoices = [i for i in api.invoices.values() if not i.get("refund_of")]
    credits = [i for i in api.invoices.values() if i.get("refund_of")]
    assert (len(invoices), len(credits)) == (ORDERS, ORDERS)
    # Every order's customer has the fixture's e-mail: created once, then found by it and bound.
    assert api.calls.count("create_customer") == 1
    assert len(api.customers) == 1
