"""Chaos: real processes, a faulty API, duplicate webhooks, workers killed — zero lost, zero twice.

On SQLite the bridge is one ``serve`` process (web and worker); on PostgreSQL a ``web`` process and
three worker processes. The sandbox runs as its own process and injects faults on writes: 10 % 503
before the write, 5 % 502 after it, 5 % connection dropped after it, 5 % answered slower than the
client's timeout after it. 1,000 Stripe sales (250 returning French customers, VAT 20 % included)
and 100 full refunds are delivered signed, with 20 % duplicate deliveries, in shuffled order (so
some refunds arrive before their sale). Shopify traffic rides along: 100 orders (API 2025-10 shapes,
VAT included), 25 partial refunds (``refund_shipping_lines``) and 10 cancellations without refund,
duplicated and shuffled the same way (so some cancellations and refunds arrive before their order).
``serve`` (SQLite) or a random worker (PostgreSQL) is SIGKILLed at random moments ten times and
restarted. In the end the sandbox's ledger holds exactly one invoice per sale, with the amount paid
and the VAT in it, and one credit note per refund (crediting that VAT) and per cancellation — all
within ``RECOVERY_S`` of the last restart (the last kill waits for the tail of the work, with a
command in flight: see ``_wait_for_the_tail``).

Crash recovery does not wait for the lease (``BRIDGE_LEASE_SECONDS`` is the default, 120 s): on
SQLite the restarted ``serve`` takes back its predecessor's claims as it starts; on PostgreSQL a live
worker releases a killed one's claims once it is silent for ``BRIDGE_WORKER_DEAD_AFTER`` (5 s here,
heartbeat every 1 s). ``FACTURATION_TIMEOUT`` is 1 s (the sandbox's slow answers take 2 s), so an
uncertain create is looked up 2 s (process known gone) or 4 s (worker presumed dead) after release.
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
from tests.support.stripe_shapes import vat_included

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SALES, REFUNDS, KILLS = 1000, 100, 10
SHOP_ORDERS, SHOP_REFUNDS, SHOP_CANCELS = 100, 25, 10
FAULTS = "error_before=0.10,error_after=0.05,drop_after=0.05,slow_after=0.05"
DEADLINE_S = 600
RECOVERY_S = 15.0
TAIL = 20  # at most this many commands left when the last kill lands


def _outbox_state(db_url: str) -> tuple[dict[str, int], dict[str, int]]:
    engine = make_engine(db_url, busy_timeout=30.0)  # SQLite: serve holds the write lock at times
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


def _wait_for_the_tail(db_url: str, posted: threading.Event) -> None:
    """Until every webhook is in and at most ``TAIL`` commands are left, one of them in flight: the
    last kill then lands near the end, so the drain time after it measures the recovery, not the
    delivery of a backlog."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        commands, events = _outbox_state(db_url)
        in_flight = commands.get("in_flight", 0)
        left = commands.get("pending", 0) + in_flight
        tail = left == 0 or (left <= TAIL and in_flight > 0)
        if posted.is_set() and events.get("received", 0) == 0 and tail:
            return
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("database", "workers"),
    [("sqlite", 1), pytest.param("postgres", 3, marks=pytest.mark.postgres)],
)
def test_chaos(database: str, workers: int, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    serve = database == "sqlite"
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
            BRIDGE_LEASE_SECONDS="120",
            BRIDGE_HEARTBEAT_SECONDS="1",
            BRIDGE_WORKER_DEAD_AFTER="5",
            BRIDGE_POLL_INTERVAL="0.05",
            BRIDGE_LOG_LEVEL="WARNING",
        )
        with running_bridge(env, tmp_path / "logs", workers, serve=serve) as bridge:
            kills: list[float] = []
            started = time.monotonic()
            last_restart = started
            backlog: dict[str, int] = {}  # commands by state just after the last restart
            posted = threading.Event()

            def killer() -> None:
                nonlocal last_restart
                for kill in range(KILLS):
                    time.sleep(rng.uniform(2.0, 7.0))
                    if kill == KILLS - 1:
                        _wait_for_the_tail(db_url, posted)
                    slot = rng.randrange(workers)
                    bridge.kill_worker(slot)
                    kills.append(time.monotonic() - started)
                    bridge.start_worker(slot)
                    last_restart = time.monotonic()
                backlog.update(_outbox_state(db_url)[0])

            chaos = threading.Thread(target=killer)
            chaos.start()
            sent = post_all(bridge.url, hooks, threads=4)
            posted.set()
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
                time.sleep(0.2)
            drained = time.monotonic()
            elapsed = drained - started
            drain_after_last_restart = drained - last_restart
            ledger = sandbox.ledger()

    commands, events = _outbox_state(db_url)
    summary = {
        "database": database,
        "drain_after_last_restart_s": round(drain_after_last_restart, 1),
        "commands_at_last_restart": backlog,
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
    assert drain_after_last_restart <= RECOVERY_S, summary
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
    emails = Counter(str(c.get("email") or "").lower() for c in ledger["customers"])
    # 250 Stripe buyers with their own e-mails; the 40 Shopify buyers all carry the fixture's
    # e-mail, so the first one is created and the others are found by it and bound to it.
    assert len(customers) == 250 + 1
    assert max(customers.values()) == 1
    assert max(emails.values()) == 1  # never two customers for one e-mail
    for invoice in invoices:  # every invoice equals to the cent what was paid, VAT 20 % included
        order = int(invoice["api_custom"].rsplit("_", 1)[1])
        assert Decimal(invoice["total_with_vat"]) == Decimal(amounts[order]) / 100
        assert _vat(invoice) == Decimal(vat_included(amounts[order])) / 100
    sales_by_id = {i["id"]: i for i in invoices}
    for note in credit_notes:  # a full refund credits the sale's amount and VAT, no more
        sale = sales_by_id[note["refund_id"]]
        assert Decimal(note["total_with_vat"]) == -Decimal(sale["total_with_vat"])
        assert _vat(note) == -_vat(sale)


def _vat(document: dict[str, Any]) -> Decimal:
    return Decimal(document["total_with_vat"]) - Decimal(document["total"])


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
