"""Delivery outcomes against an in-memory fake of the API, on real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from structlog.testing import capture_logs

from bridge.db.models import CommandStatus, CustomerBinding, OutboxCommand
from bridge.outbox.commands import Command, CommandKind
from bridge.outbox.delivery import Outcome
from bridge.outbox.pause import paused
from bridge.runtime import Runtime
from tests.support.fake_api import FakeApi
from tests.support.outbox_kit import (
    Clock,
    customer_key,
    drain,
    invoice_key,
    put,
    refund,
    runtime_for,
    sale,
    worker_for,
)


def _rows(runtime: Runtime) -> dict[str, OutboxCommand]:
    with runtime.sessions() as session:
        rows = session.execute(select(OutboxCommand)).scalars().all()
    return {r.idempotency_key: r for r in rows}


def _step(worker: Any) -> Outcome:
    claimed = worker.outbox.claim(worker.worker_id)
    assert claimed is not None
    outcome: Outcome = worker.deliverer.deliver(claimed)
    return outcome


def test_a_sale_and_its_refund_are_delivered_in_order_with_api_ids(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url) as runtime:
        put(runtime, refund(1) + sale(1, "cus_a", "10.00"), clock())
        drain(worker_for(runtime, api, clock), clock)
        rows = _rows(runtime)
    assert {r.status for r in rows.values()} == {"done"}
    assert api.calls == ["create_customer", "create_invoice", "refund_invoice"]
    invoice = api.invoices[rows[invoice_key(1)].remote_id or 0]
    assert invoice["api_custom"] == invoice_key(1)
    assert invoice["api_id"] == Command(CommandKind.CREATE_INVOICE, invoice_key(1)).api_id
    assert invoice["customer_id"] == rows[customer_key("cus_a")].remote_id
    assert invoice["total_with_vat"] == "12.00"
    credit_note = next(i for i in api.invoices.values() if i.get("refund_of"))
    assert credit_note["refund_of"] == invoice["id"]


def test_a_returning_customer_costs_no_extra_call(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        drain(worker_for(runtime, api, clock), clock)
        # A second customer.ensure under another key, for the same bound source customer:
        again = Command(
            CommandKind.ENSURE_CUSTOMER,
            "customer:test:cus_a:v2",
            payload={"company_name": "Client cus_a"},
            meta={"binding_key": "test:cus_a"},
        )
        put(runtime, [again, *sale(2, "cus_a")], clock())
        drain(worker_for(runtime, api, clock), clock)
        rows = _rows(runtime)
        with runtime.sessions() as session:
            binding = session.get(CustomerBinding, "test:cus_a")
    assert api.calls == ["create_customer", "create_invoice", "create_invoice"]
    assert binding is not None
    assert rows["customer:test:cus_a:v2"].remote_id == binding.remote_id
    assert rows["customer:test:cus_a:v2"].result == {"id": binding.remote_id, "bound": True}


def test_transient_failures_back_off_and_an_unknown_outcome_is_looked_up(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        worker = worker_for(runtime, api, clock)
        api.fail_next("5xx_before")
        assert _step(worker) is Outcome.RETRY
        row = _rows(runtime)[customer_key("cus_a")]
        assert (row.status, row.attempts, row.outcome_unknown) == ("pending", 1, True)
        assert row.next_attempt_at > clock()
        api.fail_next("timeout_after")  # created, but the answer is lost
        drain(worker, clock)
        rows = _rows(runtime)
    assert len(api.customers) == 1
    assert len(api.invoices) == 1
    assert api.duplicates() == []
    assert "find_customers" in api.calls
    assert rows[customer_key("cus_a")].remote_id == next(iter(api.customers))


def test_a_connect_error_leaves_the_outcome_known(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url) as runtime:
        put(runtime, sale(1, "cus_a")[:1], clock())
        api.fail_next("connect")
        assert _step(worker_for(runtime, api, clock)) is Outcome.RETRY
        row = _rows(runtime)[customer_key("cus_a")]
    assert row.outcome_unknown is False


def test_a_429_waits_without_consuming_an_attempt_and_blocks_every_worker(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url) as runtime:
        put(runtime, sale(1, "cus_a") + sale(2, "cus_b"), clock())
        api.fail_next("429")
        first = worker_for(runtime, api, clock, "w1")
        assert _step(first) is Outcome.RATE_LIMITED
        row = _rows(runtime)[customer_key("cus_a")]
        assert (row.status, row.attempts) == ("pending", 0)
        second = worker_for(runtime, api, clock, "w2")
        assert _step(second) is Outcome.QUOTA_WAIT  # Retry-After (7 s) holds for everyone
        assert api.calls == ["create_customer"]
        clock.advance(7.1)
        drain(second, clock)
        assert {r.status for r in _rows(runtime).values()} == {"done"}


def test_a_422_goes_dead_with_the_api_errors(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url) as runtime:
        put(runtime, sale(1, "cus_a")[:1], clock())
        api.fail_next("422")
        with capture_logs() as logs:
            assert _step(worker_for(runtime, api, clock)) is Outcome.DEAD
        row = _rows(runtime)[customer_key("cus_a")]
    assert row.status == CommandStatus.DEAD
    assert row.result is not None
    assert row.result["errors"] == {"title": ["is missing"]}
    assert any(e["event"] == "delivery.dead" and e["log_level"] == "error" for e in logs)


def test_401_pauses_all_delivery_until_a_probe_succeeds(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        worker = worker_for(runtime, api, clock)
        api.fail_next("401", "401")
        assert _step(worker) is Outcome.PAUSED
        with runtime.sessions() as session:
            assert paused(session) is not None
        row = _rows(runtime)[customer_key("cus_a")]
        assert (row.status, row.attempts) == ("pending", 0)
        assert worker.step() is False  # paused: the probe fails (second 401), nothing claimed
        assert api.calls == ["create_customer", "account"]
        clock.advance(31)
        assert worker.step() is False  # the probe succeeds and resumes delivery
        with runtime.sessions() as session:
            assert paused(session) is None
        drain(worker, clock)
        assert {r.status for r in _rows(runtime).values()} == {"done"}


def test_a_total_that_differs_from_the_amount_charged_is_flagged_loudly(db_url: str) -> None:
    clock, api = Clock(), FakeApi(total_override="12.01")
    with runtime_for(db_url) as runtime:
        put(runtime, sale(1, "cus_a", "10.00"), clock())
        with capture_logs() as logs:
            drain(worker_for(runtime, api, clock), clock)
        row = _rows(runtime)[invoice_key(1)]
    assert row.status == "done"
    assert row.result is not None
    assert row.result["total_mismatch"] == {
        "expected_total_with_vat": "12.00",
        "actual_total_with_vat": "12.01",
        "currency": "EUR",
    }
    mismatch = [e for e in logs if e["event"] == "delivery.total_mismatch"]
    assert mismatch
    assert mismatch[0]["log_level"] == "error"


def test_ref_fields_and_templates_are_filled_from_done_commands(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    email = Command(
        CommandKind.SEND_EMAIL,
        "email:test:in_1",
        payload={"subject": "Facture {}"},
        refs={"bill_id": invoice_key(1), "subject": invoice_key(1) + "#api_custom"},
    )
    with runtime_for(db_url) as runtime:
        put(runtime, [*sale(1, "cus_a"), email], clock())
        drain(worker_for(runtime, api, clock), clock)
        rows = _rows(runtime)
    assert rows["email:test:in_1"].status == "done"
    assert api.emails == [rows[invoice_key(1)].remote_id]


def test_give_up_after_the_horizon_goes_dead(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url, retry_give_up_seconds=100.0, retry_max_delay_seconds=30.0) as runtime:
        put(runtime, sale(1, "cus_a")[:1], clock())
        api.fail_next(*["5xx_before"] * 200)
        drain(worker_for(runtime, api, clock), clock, max_steps=1000)
        row = _rows(runtime)[customer_key("cus_a")]
    assert row.status == "dead"
    assert row.last_error is not None
    assert row.last_error.startswith("gave up")
    assert api.customers == {}


def test_a_customer_update_goes_to_the_bound_customer_or_is_cancelled(db_url: str) -> None:
    clock, api = Clock(), FakeApi()

    def update(n: int, customer: str) -> Command:
        return Command(
            CommandKind.UPDATE_CUSTOMER,
            f"customer-update:test:{customer}:{n}",
            payload={"email": f"new{n}@example.com"},
            meta={"binding_key": f"test:{customer}"},
        )

    with runtime_for(db_url) as runtime:
        put(runtime, [update(1, "cus_never")], clock())
        put(runtime, sale(1, "cus_a"), clock())
        drain(worker_for(runtime, api, clock), clock)
        put(runtime, [update(2, "cus_a")], clock())
        drain(worker_for(runtime, api, clock), clock)
        rows = _rows(runtime)
    assert rows["customer-update:test:cus_never:1"].status == "cancelled"
    assert "nothing to update" in (rows["customer-update:test:cus_never:1"].last_error or "")
    assert rows["customer-update:test:cus_a:2"].status == "done"
    customer = api.customers[rows[customer_key("cus_a")].remote_id or 0]
    assert customer["email"] == "new2@example.com"
    assert "customer_id" not in customer


def test_a_credit_note_takes_fields_of_its_invoice_result(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    note = Command(
        CommandKind.PARTIAL_CREDIT_NOTE,
        "credit:test:1",
        payload={
            "information": "Avoir sur la facture {}",
            "items": [{"title": "Thing", "quantity": "-1", "unit_price": "10.00", "vat": "0.200"}],
        },
        refs={
            "customer_id": invoice_key(1) + "#customer_id",
            "information": invoice_key(1) + "#api_custom",
        },
        meta={"expected_total_with_vat": "-12.00", "currency": "EUR"},
    )
    with runtime_for(db_url) as runtime:
        put(runtime, [note, *sale(1, "cus_a", "10.00")], clock())
        drain(worker_for(runtime, api, clock), clock)
        rows = _rows(runtime)
    credit = api.invoices[rows["credit:test:1"].remote_id or 0]
    assert credit["customer_id"] == rows[customer_key("cus_a")].remote_id
    assert credit["information"] == f"Avoir sur la facture {invoice_key(1)}"
    assert credit["total_with_vat"] == "-12.00"
    assert "total_mismatch" not in (rows["credit:test:1"].result or {})


def test_a_settlement_whose_answer_was_lost_is_found_on_its_invoice(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    payment = Command(
        CommandKind.CREATE_SETTLEMENT,
        "payment:test:1",
        payload={
            "total": "12.00",
            "paid_on": "2026-11-23",
            "payment_mode": 2,
            "payment_ref": "pi_1",
        },
        refs={"invoice_id": invoice_key(1)},
    )
    with runtime_for(db_url) as runtime:
        put(runtime, [*sale(1, "cus_a"), payment], clock())
        worker = worker_for(runtime, api, clock)
        assert worker.step()
        assert worker.step()
        api.fail_next("drop_after")
        assert _step(worker) is Outcome.RETRY
        drain(worker, clock)
        row = _rows(runtime)["payment:test:1"]
    assert row.status == "done"
    assert [len(v) for v in api.settlements.values()] == [1]
    assert api.calls.count("create_settlement") == 1
    assert "get_invoice" in api.calls


def _invoiced_with_email(runtime: Runtime, api: FakeApi, clock: Clock) -> Any:
    """A sale and its invoice e-mail stored; the customer and the invoice delivered."""
    email = Command(CommandKind.SEND_EMAIL, "email:test:1", refs={"bill_id": invoice_key(1)})
    put(runtime, [*sale(1, "cus_a"), email], clock())
    worker = worker_for(runtime, api, clock)
    assert worker.step()
    assert worker.step()
    return worker


def test_an_email_whose_outcome_is_unknown_is_not_sent_again(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url) as runtime:
        worker = _invoiced_with_email(runtime, api, clock)
        api.fail_next("timeout_after")
        assert _step(worker) is Outcome.RETRY
        with capture_logs() as logs:
            drain(worker, clock)
        row = _rows(runtime)["email:test:1"]
    assert row.status == "done"
    assert len(api.emails) == 1
    assert any(e["event"] == "delivery.email_outcome_unknown" for e in logs)


def _credit(kind: CommandKind, key: str, order: int) -> Command:
    partial = kind is CommandKind.PARTIAL_CREDIT_NOTE
    return Command(
        kind,
        key,
        payload=(
            {"items": [{"title": "Thing", "quantity": "-1", "unit_price": "4.00", "vat": "0.200"}]}
            if partial
            else {"invoice_id": None}
        ),
        refs=(
            {"customer_id": invoice_key(order) + "#customer_id"}
            if partial
            else {"invoice_id": invoice_key(order)}
        ),
        meta={"credit_of": invoice_key(order)},
    )


def test_an_invoice_is_never_credited_beyond_what_was_paid(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    cancelled = _credit(CommandKind.FULL_CREDIT_NOTE, "cancel:test:1", 1)  # order cancelled: full
    refunded = _credit(CommandKind.FULL_CREDIT_NOTE, "refund:test:r1", 1)  # then refunded as well
    partial = _credit(CommandKind.PARTIAL_CREDIT_NOTE, "refund:test:r2", 2)  # a partial refund
    full_after_partial = _credit(CommandKind.FULL_CREDIT_NOTE, "refund:test:r3", 2)
    with runtime_for(db_url) as runtime:
        put(runtime, [*sale(1, "cus_a", "10.00"), *sale(2, "cus_a", "10.00")], clock())
        put(runtime, [cancelled, partial], clock())
        drain(worker_for(runtime, api, clock), clock)
        put(runtime, [refunded, full_after_partial], clock())
        drain(worker_for(runtime, api, clock), clock)
        rows = _rows(runtime)
    assert api.calls.count("refund_invoice") == 1  # the cancellation's; nothing after it
    assert api.calls.count("create_invoice") == 3  # two sales and the partial credit note
    assert rows["refund:test:r1"].status == CommandStatus.CANCELLED.value
    assert (
        rows["refund:test:r1"].last_error
        == f"{invoice_key(1)} is already fully credited by cancel:test:1"
    )
    assert rows["refund:test:r3"].status == CommandStatus.DEAD.value
    assert "already partly credited by refund:test:r2" in (rows["refund:test:r3"].last_error or "")


def test_an_email_refused_with_429_or_401_is_sent_once_the_api_accepts_it(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url) as runtime:
        worker = _invoiced_with_email(runtime, api, clock)
        api.fail_next("429")
        assert _step(worker) is Outcome.RATE_LIMITED  # the API did not process it
        assert _rows(runtime)["email:test:1"].outcome_unknown is False
        clock.advance(7.1)
        drain(worker, clock)
        row = _rows(runtime)["email:test:1"]
    assert row.status == "done"
    assert len(api.emails) == 1


def test_an_unknown_outcome_waits_for_the_server_to_settle_before_the_lookup(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        worker = worker_for(runtime, api, clock)
        api.fail_next("timeout_after")
        assert _step(worker) is Outcome.RETRY
        row = _rows(runtime)[customer_key("cus_a")]
        settle = worker.deliverer.policy.settle_seconds
        assert settle == 2 * runtime.settings.api_timeout
        assert row.outcome_unknown is True
        assert row.next_attempt_at >= clock() + timedelta(seconds=settle)


def test_a_credit_waits_while_another_credit_of_its_invoice_is_unsettled(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    cancelled = _credit(CommandKind.FULL_CREDIT_NOTE, "cancel:test:1", 1)
    refunded = _credit(CommandKind.PARTIAL_CREDIT_NOTE, "refund:test:r1", 1)
    with runtime_for(db_url) as runtime:
        put(runtime, sale(1, "cus_a", "10.00"), clock())
        worker = worker_for(runtime, api, clock)
        drain(worker, clock)
        put(runtime, [cancelled], clock())
        api.fail_next("timeout_after")  # the full credit note is created, its answer lost
        assert _step(worker) is Outcome.RETRY
        put(runtime, [refunded], clock())
        assert _step(worker) is Outcome.RETRY  # the refund waits: the cancellation is unsettled
        assert "to settle" in (_rows(runtime)["refund:test:r1"].last_error or "")
        drain(worker, clock)
        rows = _rows(runtime)
    assert rows["cancel:test:1"].status == CommandStatus.DONE.value  # found by its api_id
    assert rows["refund:test:r1"].status == CommandStatus.CANCELLED.value
    assert api.calls.count("refund_invoice") == 1
    assert api.calls.count("create_invoice") == 1  # the sale only: no second credit note
