"""Drafts before finalising, on real SQLite and PostgreSQL: against the sandbox (which may be told to
round VAT per line, i.e. to total differently from the bridge's prediction) and against the
in-memory fake with crashes and lost answers between the two steps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bridge.db.models import InvoiceShape, OutboxCommand
from bridge.facturation.totals import compute_totals
from bridge.outbox.commands import Command, CommandKind
from bridge.outbox.finalise import invoice_shape
from bridge.runtime import Runtime
from bridge.watch.conditions import WatchLimits, current_conditions
from tests.support.fake_api import Crash, FakeApi
from tests.support.outbox_kit import (
    Clock,
    customer_key,
    drain,
    invoice_key,
    put,
    runtime_for,
    sale,
    worker_for,
)
from tests.support.sandbox import in_process_client, new_sandbox

LEASE = 30.0
# Three 0.03 lines at 20 %: VAT per rate is round(0.09 * 0.2) = 0.02, per line 3 * round(0.006) = 0.03.
ROUNDING_ITEMS = [
    {"title": "Sticker", "quantity": "1", "unit_price": "0.03", "vat": "0.200"},
    {"title": "Sticker", "quantity": "1", "unit_price": "0.03", "vat": "0.200"},
    {"title": "Sticker", "quantity": "1", "unit_price": "0.03", "vat": "0.200"},
    {"title": "Book", "quantity": "1", "unit_price": "10.00", "vat": "0.055"},
]


def rounding_sale(order: int, customer: str = "cus_a") -> list[Command]:
    """A sale whose total depends on how VAT is rounded (per rate or per line)."""
    ensure, invoice = sale(order, customer)
    total = compute_totals(ROUNDING_ITEMS).total_with_vat
    payload = {**invoice.payload, "items": ROUNDING_ITEMS, "currency": "EUR"}
    meta = {"expected_total_with_vat": str(total), "currency": "EUR"}
    return [ensure, Command(invoice.kind, invoice.key, payload, invoice.refs, meta=meta)]


def _rows(runtime: Runtime) -> dict[str, OutboxCommand]:
    with runtime.sessions() as session:
        return {r.idempotency_key: r for r in session.execute(select(OutboxCommand)).scalars()}


def _shapes(runtime: Runtime) -> dict[str, tuple[int, int]]:
    with runtime.sessions() as session:
        rows = session.execute(select(InvoiceShape)).scalars().all()
    return {r.shape: (r.confirmed, r.mismatched) for r in rows}


def test_the_shape_of_an_invoice_names_what_its_total_depends_on() -> None:
    plain = [{"quantity": "2", "unit_price": "10.00", "vat": "0.200"}]
    assert invoice_shape({"items": plain, "currency": "eur"}) == "invoice EUR 0.200 exact"
    assert invoice_shape({"items": ROUNDING_ITEMS}) == "invoice EUR 0.055+0.200 rounding"
    thirds = [{"quantity": "3", "unit_price": "3.333", "vat": "0.200"}]  # 9.999 -> 10.00
    assert invoice_shape({"items": thirds, "currency": "USD"}) == "invoice USD 0.200 rounding"
    credit = [{"quantity": "-1", "unit_price": "10.00", "vat": "0.200"}]
    assert invoice_shape({"items": credit}) == "credit EUR 0.200 exact"


def test_an_unconfirmed_shape_is_drafted_checked_and_then_finalised(db_url: str) -> None:
    clock, sandbox = Clock(), new_sandbox()
    with runtime_for(db_url, shape_confirmations=20) as runtime:
        put(runtime, rounding_sale(1), clock())
        with in_process_client(sandbox) as api:
            drain(worker_for(runtime, api, clock), clock)
        rows = _rows(runtime)
        shapes = _shapes(runtime)
    ledger = sandbox.ledger()
    [invoice] = ledger["invoices"]
    assert invoice["draft"] is False
    assert invoice["invoice_ref"]
    assert Decimal(invoice["total_with_vat"]) == compute_totals(ROUNDING_ITEMS).total_with_vat
    assert rows[invoice_key(1)].status == "done"
    assert rows[invoice_key(1)].remote_id == invoice["id"]
    assert shapes == {"invoice EUR 0.055+0.200 rounding": (1, 0)}
    # customer, draft, finalise: one call more than a confirmed shape costs
    assert ledger["counters"]["by_status"] == {"200": 1, "201": 2}


def test_a_server_that_rounds_differently_leaves_no_finalised_invoice(db_url: str) -> None:
    clock, sandbox = Clock(), new_sandbox(vat_rounding="per-line")
    with runtime_for(db_url, shape_confirmations=20) as runtime:
        put(runtime, rounding_sale(1), clock())
        with in_process_client(sandbox) as api:
            drain(worker_for(runtime, api, clock), clock)
        row = _rows(runtime)[invoice_key(1)]
        shapes = _shapes(runtime)
        with runtime.sessions() as session:
            limits = WatchLimits(backlog_s=3600, silence=None, sources=())
            found = {c.key: c for c in current_conditions(session, clock(), limits, clock())}
    [draft] = sandbox.ledger()["invoices"]
    assert draft["draft"] is True
    assert draft["invoice_ref"] is None
    expected = compute_totals(ROUNDING_ITEMS).total_with_vat
    assert Decimal(draft["total_with_vat"]) == expected + Decimal("0.01")
    assert row.status == "dead"
    assert row.last_error is not None
    assert row.last_error.startswith("total mismatch")
    assert f"paid {expected} EUR" in row.last_error
    assert f"draft invoice {draft['id']}" in row.last_error
    assert row.result is not None
    assert row.result["draft_id"] == draft["id"]
    assert shapes == {"invoice EUR 0.055+0.200 rounding": (0, 1)}
    alert = found["total_mismatch"]
    assert alert.title.startswith("total mismatch: 1 invoice(s) left as drafts")
    assert f"draft invoice {draft['id']}" in alert.detail
    assert invoice_key(1) in alert.detail


def test_a_shape_confirmed_n_times_is_created_in_one_call(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url, shape_confirmations=2) as runtime:
        worker = worker_for(runtime, api, clock)
        for order in (1, 2, 3):
            put(runtime, sale(order, "cus_a"), clock())
            drain(worker, clock)
        assert api.calls == [
            "create_customer",
            *["create_invoice", "update_invoice"] * 2,  # drafted, checked, finalised
            "create_invoice",  # confirmed twice: final at once
        ]
        # A new mix of rates is a new shape: drafted again.
        _ensure, invoice = sale(4, "cus_a")
        items = [*invoice.payload["items"], {"quantity": "1", "unit_price": "5", "vat": "0.055"}]
        total = compute_totals(items).total_with_vat
        put(
            runtime,
            [
                Command(
                    invoice.kind,
                    invoice.key,
                    {**invoice.payload, "items": items},
                    invoice.refs,
                    meta={"expected_total_with_vat": str(total), "currency": "EUR"},
                )
            ],
            clock(),
        )
        drain(worker, clock)
        shapes = _shapes(runtime)
    assert api.calls[-2:] == ["create_invoice", "update_invoice"]
    assert all(i["draft"] is False for i in api.invoices.values())
    assert api.duplicates() == []
    assert shapes == {"invoice EUR 0.200 exact": (2, 0), "invoice EUR 0.055+0.200 exact": (1, 0)}


def _one_final_invoice(runtime: Runtime, api: FakeApi) -> dict[str, Any]:
    rows = _rows(runtime)
    assert {r.status for r in rows.values()} == {"done"}
    assert api.duplicates() == []
    [invoice] = api.invoices.values()
    assert invoice["draft"] is False
    assert rows[invoice_key(1)].remote_id == invoice["id"]
    return invoice


@pytest.mark.parametrize(
    ("step", "fault"),
    [
        ("draft", "crash_after"),  # the draft exists, the process died before recording
        ("draft", "timeout_after"),  # the draft exists, its answer was lost
        ("finalise", "crash_before"),  # between the draft and its finalise
        ("finalise", "connect"),  # the finalise never left: the draft must not be made again
        ("finalise", "timeout_after"),  # finalised, answer lost: read back, not sent again
        ("finalise", "crash_after"),  # finalised, the process died before recording
    ],
)
def test_a_failure_between_or_during_the_two_steps_neither_duplicates_nor_loses(
    db_url: str, step: str, fault: str
) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url, shape_confirmations=20, lease_seconds=LEASE) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        worker = worker_for(runtime, api, clock, "w1")
        assert worker.step()  # the customer
        api.fail_on("create_invoice" if step == "draft" else "update_invoice", fault)
        if fault.startswith("crash"):
            with pytest.raises(Crash):
                worker.step()
            clock.advance(LEASE + 1)  # the process is gone; its lease runs out
            worker = worker_for(runtime, api, clock, "w2")
        drain(worker, clock)
        invoice = _one_final_invoice(runtime, api)
        shapes = _shapes(runtime)
    assert invoice["customer_id"] == _customer_id(api)
    assert api.calls.count("create_invoice") == 1
    assert "find_invoices" in api.calls  # the unknown outcome was settled by reading it back
    assert shapes.get("invoice EUR 0.200 exact", (0, 0))[1] == 0  # no mismatch counted


def _customer_id(api: FakeApi) -> int:
    [customer_id] = api.customers
    return customer_id


def test_a_partial_credit_note_is_checked_like_an_invoice(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url, shape_confirmations=20) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        items = [{"title": "Refund", "quantity": "-1", "unit_price": "10.00", "vat": "0.200"}]
        credit = Command(
            CommandKind.PARTIAL_CREDIT_NOTE,
            "credit:test:1",
            {"items": items},
            refs={"customer_id": customer_key("cus_a")},
            meta={"expected_total_with_vat": "-12.00", "currency": "EUR"},
        )
        put(runtime, [credit], clock())
        drain(worker_for(runtime, api, clock), clock)
        assert _rows(runtime)["credit:test:1"].status == "done"
        shapes = _shapes(runtime)
    assert shapes["credit EUR 0.200 exact"] == (1, 0)
    assert all(i["draft"] is False for i in api.invoices.values())
