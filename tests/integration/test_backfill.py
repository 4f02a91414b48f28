"""Backfill against the local fakes of Stripe and Shopify: every missed sale invoiced exactly once."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from bridge.db.models import EventStatus, InboxEvent, OutboxCommand
from bridge.db.state import get_state
from bridge.inbound.inbox import Inbox
from bridge.inbound.sources import stripe as stripe_source
from bridge.outbox.commands import Priority
from bridge.recovery.backfill import run_backfill
from bridge.recovery.cli import shopify_source
from bridge.recovery.cli import stripe_source as stripe_backfill_source
from bridge.recovery.stripe_api import StripeListError
from tests.support.fake_shopify import SHOP, FakeShopify, fake_shopify_server, order_node, refund
from tests.support.fake_stripe import FakeStripe, serve_fake_stripe
from tests.support.recovery_kit import (
    NOW,
    documents_by_key,
    map_all,
    recovery_runtime,
    run_worker,
    stripe_sales,
)
from tests.support.sandbox import new_sandbox

SINCE = (NOW - timedelta(days=60)).date()


def _receive_by_webhook(runtime, fake: FakeStripe, orders: range) -> None:  # type: ignore[no-untyped-def]
    inbox = Inbox(runtime.engine, busy_timeout=5)
    for event in fake.events:
        if int(event["data"]["object"]["id"].rsplit("_", 1)[1]) in orders:
            body = json.dumps(event).encode()
            inbox.store(stripe_source.delivery(body), EventStatus.RECEIVED)


def test_stripe_backfill_invoices_every_missed_sale_once(sqlite_url: str) -> None:
    sandbox = new_sandbox()
    with serve_fake_stripe(FakeStripe(page_size=7)) as fake:
        stripe_sales(fake, range(0, 20), age_days=5, by_events=True)  # Events API
        stripe_sales(fake, range(20, 30), age_days=45, by_events=False)  # older: invoice list
        with recovery_runtime(sqlite_url, stripe=fake) as runtime:
            _receive_by_webhook(runtime, fake, range(0, 8))  # received live before the gap
            run_worker(runtime, sandbox)
            source = stripe_backfill_source(runtime.settings)
            result = run_backfill(runtime, source, SINCE)
            assert result.stored == 22  # 12 events + 10 invoices; the 8 received are the same rows
            assert result.already_there == 8
            map_all(runtime)
            with runtime.sessions() as session:
                rows = session.execute(select(OutboxCommand)).scalars().all()
                backfilled = [r for r in rows if r.inbox_event_id and r.inbox_event_id > 8]
                assert backfilled
                assert all(r.outcome_unknown for r in backfilled)
                assert all(r.priority == Priority.BACKFILL for r in backfilled)
            run_worker(runtime, sandbox)
            again = run_backfill(runtime, stripe_backfill_source(runtime.settings), SINCE)
            assert again.stored == 0
            run_worker(runtime, sandbox)
    docs = documents_by_key(sandbox.ledger())
    assert {k: n for k, n in docs.items() if n != 1} == {}
    assert sorted(docs) == sorted(f"stripe:invoice:in_chaos_{o:05d}" for o in range(30))


def test_an_interrupted_stripe_backfill_resumes_from_its_cursor(sqlite_url: str) -> None:
    # 4 (empty) object lists for the older part of the period, then 3 pages of events, then 500s
    with serve_fake_stripe(FakeStripe(page_size=5, fail_after=7)) as fake:
        stripe_sales(fake, range(0, 30), age_days=3, by_events=True)
        with recovery_runtime(sqlite_url, stripe=fake) as runtime:
            with pytest.raises(StripeListError):
                run_backfill(runtime, stripe_backfill_source(runtime.settings), SINCE)
            with runtime.sessions() as session:
                cursor = get_state(session, "backfill.stripe")
            assert cursor is not None
            assert (cursor["stored"], cursor["done"]) == (15, False)
            fake.fail_after = None
            calls_before = len(fake.paths)
            result = run_backfill(runtime, stripe_backfill_source(runtime.settings), SINCE)
            assert result.resumed
            assert result.stored == 30
            assert len(fake.paths) - calls_before == 3  # event pages 4 to 6 only: no listing again
            with runtime.sessions() as session:
                assert session.query(InboxEvent).count() == 30


def test_shopify_backfill_converts_orders_and_refunds_within_the_cost_limit(
    sqlite_url: str,
) -> None:
    sandbox = new_sandbox()
    fake = FakeShopify(maximum=120, available=120, restore_rate=400)
    orders = [
        order_node(9000 + i, f"{20 + i}.00", NOW - timedelta(days=2, minutes=i)) for i in range(60)
    ]
    refund(orders[3], 77001, "23.00", NOW - timedelta(days=1))  # refunded in full
    old = order_node(8000, "50.00", NOW - timedelta(days=90))  # before the period…
    refund(old, 77002, "10.00", NOW - timedelta(days=1))  # …refunded in it: only the refund
    fake.orders = [*orders, old]
    with fake_shopify_server(fake), recovery_runtime(sqlite_url, shopify=fake) as runtime:
        result = run_backfill(runtime, shopify_source(runtime.settings), SINCE)
        assert result.counts == {"orders/paid": 60, "refunds/create": 2}
        assert fake.throttled == 0  # it waited for the bucket instead
        run_worker(runtime, sandbox)
    docs = documents_by_key(sandbox.ledger())
    assert docs[f"shopify:{SHOP}:order:9003"] == 1
    assert docs[f"shopify:{SHOP}:refund:77001"] == 1
    assert f"shopify:{SHOP}:order:8000" not in docs  # never invoiced: no credit note either
    assert sum(k.startswith(f"shopify:{SHOP}:order:") for k in docs) == 60
    totals = {
        i["api_custom"]: Decimal(str(i["total_with_vat"])) for i in sandbox.ledger()["invoices"]
    }
    assert totals[f"shopify:{SHOP}:order:9003"] == Decimal("23.00")
    assert totals[f"shopify:{SHOP}:refund:77001"] == Decimal("-23.00")


def test_since_must_be_a_date() -> None:
    from bridge.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["backfill", "stripe", "--since", "yesterday"])
    assert exc.value.code == 2
    assert date.fromisoformat(SINCE.isoformat()) == SINCE
