"""Reconcile finds each kind of discrepancy and --fix repairs what is missing; a restored (older)
database replays nothing twice."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.db.models import EventStatus
from bridge.db.state import get_state
from bridge.inbound.inbox import Inbox
from bridge.inbound.sources.stripe import delivery as stripe_delivery
from bridge.recovery.backfill import run_backfill
from bridge.recovery.cli import stripe_source
from bridge.recovery.reconcile import REPORT_KEY, QuotaGate, run_reconcile
from tests.support.fake_stripe import FakeStripe, paid_invoice_event, serve_fake_stripe
from tests.support.recovery_kit import (
    NOW,
    days_ago,
    documents_by_key,
    map_all,
    recovery_runtime,
    run_worker,
    stripe_sales,
)
from tests.support.sandbox import in_process_client, new_sandbox

SINCE = (NOW - timedelta(days=10)).date()


def _refund(fake: FakeStripe, order: int, cents: int) -> None:
    charge = {
        "id": f"ch_chaos_{order:05d}", "object": "charge", "amount": cents, "currency": "eur",
        "invoice": f"in_chaos_{order:05d}", "payment_intent": None, "refunded": True,
        "created": days_ago(2),
    }  # fmt: skip
    fake.add("/v1/charges", charge)
    fake.add(
        "/v1/refunds",
        {"id": f"re_chaos_{order:05d}", "object": "refund", "amount": cents, "currency": "eur",
         "charge": charge["id"], "status": "succeeded", "created": days_ago(1)},
    )  # fmt: skip


def test_reconcile_finds_each_discrepancy_and_fix_repairs_the_missing(sqlite_url: str) -> None:
    sandbox = new_sandbox()
    with serve_fake_stripe() as fake, recovery_runtime(sqlite_url, stripe=fake) as runtime:
        stripe_sales(fake, range(6), age_days=3, by_events=True)
        run_backfill(runtime, stripe_source(runtime.settings), SINCE)
        run_worker(runtime, sandbox)  # sales 0-5 invoiced
        for event in fake.events:
            fake.add("/v1/invoices", event["data"]["object"])
        # missing: sale 6 was never received
        fake.add(
            "/v1/invoices", paid_invoice_event(6, "cus_r6", 1006, days_ago(2))["data"]["object"]
        )
        _refund(fake, 1, 1001)  # unrefunded: refunded in Stripe, no credit note
        client = in_process_client(sandbox)
        ledger = {i["api_custom"]: i for i in sandbox.ledger()["invoices"]}
        customer = ledger["stripe:invoice:in_chaos_00002"]["customer_id"]
        today = NOW.date().isoformat()
        line = [{"title": "x", "quantity": 1, "unit_price": "10.05", "vat": "0.000"}]
        base = {"customer_id": customer, "items": line, "invoiced_on": today}
        # duplicate: a second document for sale 2; amount mismatch: sale 3 invoiced for 10.05 again
        client.create_invoice({**base, "api_custom": "stripe:invoice:in_chaos_00002"})
        # orphan: a document of the bridge's for a sale nobody knows
        client.create_invoice({**base, "api_custom": "stripe:invoice:in_ghost"})
        gate = QuotaGate(runtime, 0.5)
        report = run_reconcile(
            runtime, [stripe_source(runtime.settings, events=False)], client, SINCE, gate=gate
        )
        found = {name: [e.get("source_id") or e.get("document_id") for e in entries] for name, entries in report["report"].items()}  # fmt: skip
        assert found["missing"] == ["in_chaos_00006"]
        assert found["unrefunded"] == ["re_chaos_00001"]
        assert found["duplicates"] == ["in_chaos_00002"]
        assert found["amount_mismatches"] == ["in_chaos_00002"]  # the extra document's 10.05
        assert len(found["orphans"]) == 1
        assert report["ledger_calls"] == gate.calls >= 1
        with runtime.sessions() as session:
            stored = get_state(session, REPORT_KEY)
        assert stored is not None
        assert stored["counts"] == {k: len(v) for k, v in found.items()}

        fixed = run_reconcile(
            runtime, [stripe_source(runtime.settings, events=False)], client, SINCE, fix=True
        )
        assert fixed["fixed"] == 2
        run_worker(runtime, sandbox)
        after = run_reconcile(
            runtime, [stripe_source(runtime.settings, events=False)], client, SINCE
        )
        assert after["counts"]["missing"] == after["counts"]["unrefunded"] == 0
        assert after["counts"]["duplicates"] == 1  # never deleted: a human cancels it
        client.close()


def test_a_restored_database_replays_nothing_twice(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = new_sandbox()
    db_file = Path(sqlite_url.removeprefix("sqlite:///"))
    backup = tmp_path / "backup.db"
    with serve_fake_stripe() as fake:
        with recovery_runtime(sqlite_url, stripe=fake) as runtime:
            stripe_sales(fake, range(0, 5), age_days=4, by_events=True)
            run_backfill(runtime, stripe_source(runtime.settings), SINCE)
            run_worker(runtime, sandbox)  # sales 0-4 invoiced
            stripe_sales(fake, range(5, 10), age_days=2, by_events=True)
            run_backfill(runtime, stripe_source(runtime.settings), SINCE)
            map_all(runtime)  # sales 5-9 waiting as commands when the copy is taken
            runtime.engine.dispose()
            shutil.copy(db_file, backup)
            run_worker(runtime, sandbox)  # …then invoiced
            stripe_sales(fake, range(10, 15), age_days=1, by_events=True)
            run_backfill(runtime, stripe_source(runtime.settings), SINCE)
            run_worker(runtime, sandbox)  # sales 10-14 invoiced; then the database is lost
        assert sorted(documents_by_key(sandbox.ledger()).values()) == [1] * 15

        shutil.copy(backup, db_file)  # restored from the older copy
        monkeypatch.setenv("BRIDGE_DATABASE_URL", sqlite_url)
        assert main(["after-restore"]) == 0
        with recovery_runtime(sqlite_url, stripe=fake) as runtime:
            # a live event for sale 11 arrives after the restore (its first one was lost)
            again = dict(fake.events[11], id="evt_after_restore", type="invoice.payment_succeeded")
            Inbox(runtime.engine, busy_timeout=5).store(
                stripe_delivery(json.dumps(again).encode()), EventStatus.RECEIVED
            )
            run_worker(runtime, sandbox)
            result = run_backfill(runtime, stripe_source(runtime.settings), SINCE)
            assert result.stored == 5  # sales 10-14, unknown to the restored database
            run_worker(runtime, sandbox)
    ledger = sandbox.ledger()
    docs = documents_by_key(ledger)
    assert sorted(docs) == sorted(f"stripe:invoice:in_chaos_{o:05d}" for o in range(15))
    assert set(docs.values()) == {1}
    assert len(ledger["customers"]) == 5
