"""Chaos: real processes, a faulty API, duplicate webhooks, workers killed — zero lost, zero twice.

The bridge runs as a ``web`` process and worker processes (one on SQLite, three on PostgreSQL);
the sandbox runs as its own process and injects faults on writes: 10 % 503 before the write, 5 %
502 after it, 5 % connection dropped after it, 5 % answered slower than the client's timeout after
it. 1,000 Stripe sales (250 returning customers) and 100 full refunds are delivered signed, with
20 % duplicate deliveries, in shuffled order (so some refunds arrive before their sale); a worker is
SIGKILLed at random moments ten times and restarted. Shopify traffic rides along: 100 orders
(API 2025-10 shapes, VAT included), 25 partial refunds (``refund_shipping_lines``) and 10
cancellations without refund, duplicated and shuffled the same way (so some cancellations and
refunds arrive before their order). In the end the sandbox's ledger holds exactly one invoice per
sale, with the amount paid, and one credit note per refund and per cancellation.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bridge.db import make_engine
from bridge.db.models import InboxEvent, OutboxCommand
from tests.support import shopify_traffic as shp
from tests.support.bridge_procs import (
    Webhook,
    bridge_env,
    invoice_custom,
    post_all,
    refund_custom,
    running_bridge,
    sandbox_to_file,
    traffic,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SALES, REFUNDS, KILLS = 1000, 100, 10
SHOP_ORDERS, SHOP_REFUNDS, SHOP_CANCELS = 100, 25, 10
FAULTS = "error_before=0.10,error_after=0.05,drop_after=0.05,slow_after=0.05"
DEADLINE_S = 600


def _outbox_state(db_url: str) -> tuple[dict[str, int], dict[str, int]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            commands = dict(
                conn.execute(
                    select(OutboxCommand.status, func.count()).group_by(OutboxCommand.status)
                ).all()
            )
            events = dict(
                conn.execute(
                    select(InboxEvent.status, func.count()).group_by(InboxEvent.status)
                ).all()
            )
    finally:
        engine.dispose()
    return {str(k): int(v) for k, v in commands.items()}, {
        str(k): int(v) for k, v in events.items()
    }


@pytest.mark.parametrize(
    ("database", "workers"),
    [("sqlite", 1), pytest.param("postgres", 3, marks=pytest.mark.postgres)],
)
def test_chaos(database: str, workers: int, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    db_url = (
        f"sqlite:///{tmp_path / 'bridge.db'}"
        if database == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    hooks, amounts, refunded = traffic(
        SALES, REFUNDS, duplicates=0.20, customers=250, seed=20261123
    )
    rng = random.Random(7)
    shop_hooks, shop_refunded, shop_cancelled = shp.shopify_traffic(
        SHOP_ORDERS, SHOP_REFUNDS, SHOP_CANCELS, customers=40, seed=20261124
    )
    shopify = [Webhook(event_id, body, topic) for topic, event_id, body in shop_hooks]
    shopify += rng.sample(shopify, len(shopify) // 5)
    hooks = hooks + shopify
    rng.shuffle(hooks)
    with sandbox_to_file(
        tmp_path / "logs" / "sandbox.log",
        "--faults",
        FAULTS,
        "--seed",
        "11",
        "--slow-seconds",
        "2",
        "--rate-limit",
        "1000000",
        "--daily-limit",
        "10000000",
    ) as sandbox:
        env = bridge_env(
            db_url,
            sandbox.url,
            FACTURATION_TIMEOUT="1",
            FACTURATION_RATE_LIMIT="1000000",
            FACTURATION_DAILY_LIMIT="10000000",
            BRIDGE_RETRY_BASE_SECONDS="0.05",
            BRIDGE_RETRY_MAX_DELAY_SECONDS="1",
            BRIDGE_LEASE_SECONDS="4",
            BRIDGE_POLL_INTERVAL="0.05",
            BRIDGE_LOG_LEVEL="WARNING",
        )
        with running_bridge(env, tmp_path / "logs", workers) as bridge:
            kills: list[float] = []
            started = time.monotonic()

            def killer() -> None:
                for _ in range(KILLS):
                    time.sleep(rng.uniform(2.0, 7.0))
                    slot = rng.randrange(workers)
                    bridge.kill_worker(slot)
                    kills.append(time.monotonic() - started)
                    bridge.start_worker(slot)

            chaos = threading.Thread(target=killer)
            chaos.start()
            sent = post_all(bridge.url, hooks, threads=4)
            chaos.join()

            deadline = time.monotonic() + DEADLINE_S
            while time.monotonic() < deadline:
                commands, events = _outbox_state(db_url)
                if (
                    events.get("received", 0) == 0
                    and commands.get("pending", 0) == 0
                    and commands.get("in_flight", 0) == 0
                ):
                    break
                time.sleep(1.0)
            elapsed = time.monotonic() - started
            ledger = sandbox.ledger()

    commands, events = _outbox_state(db_url)
    summary = {
        "elapsed_s": round(elapsed, 1),
        "kills_at_s": [round(k, 1) for k in kills],
        "deliveries": len(hooks),
        "sender_retries": sent["retries"],
        "commands": commands,
        "events": events,
        "faults": ledger["counters"]["faults"],
    }
    print(summary)

    assert len(kills) == KILLS
    assert sent["sent"] == len(hooks)
    assert events == {"mapped": SALES + REFUNDS + len(shop_hooks)}, summary
    assert set(commands) == {"done"}, summary
    assert sum(ledger["counters"]["faults"].values()) > 0  # the chaos really happened

    stripe_docs = [i for i in ledger["invoices"] if i["api_custom"].startswith("stripe:")]
    invoices = [i for i in stripe_docs if not i.get("refund_id")]
    credit_notes = [i for i in stripe_docs if i.get("refund_id")]
    by_custom = Counter(i["api_custom"] for i in invoices)
    assert len(invoices) == SALES, "an invoice is missing or duplicated"
    assert set(by_custom) == {invoice_custom(o) for o in range(SALES)}
    assert max(by_custom.values()) == 1
    notes_by_custom = Counter(i["api_custom"] for i in credit_notes)
    assert len(credit_notes) == REFUNDS
    assert set(notes_by_custom) == {refund_custom(o) for o in refunded}
    shop_documents = SHOP_ORDERS + SHOP_REFUNDS + SHOP_CANCELS
    assert len(ledger["invoices"]) == SALES + REFUNDS + shop_documents
    assert len(Counter(i["api_id"] for i in ledger["invoices"])) == SALES + REFUNDS + shop_documents
    _check_shopify(ledger, shop_refunded, shop_cancelled)
    customers = Counter(c["api_custom"] for c in ledger["customers"])
    assert len(customers) == 250 + 40
    assert max(customers.values()) == 1
    for invoice in invoices:  # every invoice equals to the cent what was paid
        order = int(invoice["api_custom"].rsplit("_", 1)[1])
        assert Decimal(invoice["total_with_vat"]) == Decimal(amounts[order]) / 100


def _check_shopify(ledger: dict[str, Any], refunded: list[int], cancelled: list[int]) -> None:
    """One invoice per order for what was paid, one credit note per refund and per cancellation."""
    by_custom = Counter(i["api_custom"] for i in ledger["invoices"])
    docs = {i["api_custom"]: i for i in ledger["invoices"]}
    for n in range(SHOP_ORDERS):
        assert by_custom[shp.order_custom(n)] == 1
        assert Decimal(docs[shp.order_custom(n)]["total_with_vat"]) == Decimal(shp.ORDER_TOTAL)
    for n in refunded:
        assert by_custom[shp.refund_custom(n)] == 1
        assert Decimal(docs[shp.refund_custom(n)]["total_with_vat"]) == Decimal(shp.REFUND_TOTAL)
    for n in cancelled:
        assert by_custom[shp.cancel_custom(n)] == 1
        assert docs[shp.cancel_custom(n)]["refund_id"] == docs[shp.order_custom(n)]["id"]
