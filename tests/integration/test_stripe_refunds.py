"""Stripe refunds through the real mapping and delivery, on SQLite and PostgreSQL.

Payloads in the current API's shapes (tests/fixtures/authored/, API 2025-08-27.basil); Stripe's
look-ups answered from fixed data (:class:`FixedStripeApi`); Facturation.pro an in-memory fake of
the client interface. Each refund is one credit note, split like the sale, exact to the cent; the
same refund arriving through several events is credited once; nothing is credited beyond what was
paid; a refund whose sale never arrives goes dead after the configured wait, with the reason.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bridge.admin.operations import status
from bridge.config import Settings
from bridge.db.models import OutboxCommand
from bridge.facturation.totals import compute_totals
from bridge.inbound.events import InboundEvent, Source, parse_json
from bridge.mapping.engine import MappingEngine
from bridge.mapping.samples import FixedStripeApi
from bridge.runtime import Runtime
from tests.support.fake_api import FakeApi
from tests.support.outbox_kit import Clock, drain, put, runtime_for, worker_for

AUTHORED = Path(__file__).resolve().parents[1] / "fixtures" / "authored"
PI, INVOICE = "pi_1Rk2demoRenewal000000000", "in_1Rk2demoRenewal0000000000"
SALE_KEY = f"stripe:invoice:{INVOICE}"


def _event(name: str, **changes: Any) -> InboundEvent:
    payload = parse_json((AUTHORED / name).read_bytes())
    payload["data"]["object"].update(changes)
    return InboundEvent(
        Source.STRIPE, str(payload["id"]), payload["type"], payload, datetime.now(UTC), {}
    )


def _mapper(**answers: Any) -> MappingEngine:
    engine = MappingEngine.load(Settings(), network=False)
    engine.stripe_api = FixedStripeApi(invoices_by_payment_intent={PI: INVOICE}, **answers)
    return engine


def _map(engine: MappingEngine, *events: InboundEvent) -> list[Any]:
    return [c for e in events for c in engine.map_event(e).commands]


def _rows(runtime: Runtime) -> dict[str, OutboxCommand]:
    with runtime.sessions() as session:
        return {r.idempotency_key: r for r in session.execute(select(OutboxCommand)).scalars()}


def test_partial_refunds_are_credit_notes_split_like_the_sale(db_url: str) -> None:
    engine, clock, api = _mapper(), Clock(), FakeApi()
    sale = _event("stripe_invoice.paid_renewal_taxes_included.json")
    first = _event("stripe_refund.created_partial_basil.json")
    second = _event("stripe_refund.updated_succeeded_basil.json")
    again = _event("stripe_charge.refunded_partial_basil.json")  # the second refund, again
    engine.stripe_api = FixedStripeApi(
        invoices_by_payment_intent={PI: INVOICE},
        refunds_by_charge={
            "ch_1Rk2demoRenewal000000000": [
                {"id": "re_1Rk2demoRefundSepa0000000", "amount": 500, "status": "succeeded"},
                {"id": "re_1Rk2demoRefundPart1000000", "amount": 1000, "status": "succeeded"},
            ]
        },
    )
    with runtime_for(db_url) as runtime:
        put(runtime, _map(engine, first), clock())  # the refund before its sale: it waits
        put(runtime, _map(engine, sale, second, again), clock())
        drain(worker_for(runtime, api, clock), clock)
        rows = _rows(runtime)
    assert {k: (r.status, r.last_error) for k, r in rows.items() if r.status != "done"} == {}
    notes = [i for i in api.invoices.values() if str(i["api_custom"]).startswith("stripe:refund")]
    assert sorted(i["api_custom"] for i in notes) == [
        "stripe:refund:re_1Rk2demoRefundPart1000000",
        "stripe:refund:re_1Rk2demoRefundSepa0000000",
    ]
    sale_items = api.invoices[rows[SALE_KEY].remote_id or 0]["items"]
    for note, amount in zip(
        sorted(notes, key=lambda i: i["api_custom"]), ("10.00", "5.00"), strict=True
    ):
        totals = compute_totals(note["items"])
        assert totals.total_with_vat == -Decimal(amount)
        assert set(totals.vat_by_rate) == set(compute_totals(sale_items).vat_by_rate)
        assert note["customer_id"] == rows[SALE_KEY].result["customer_id"]  # type: ignore[index]


def test_a_refund_beyond_what_was_paid_goes_dead_with_the_reason(db_url: str) -> None:
    engine, clock, api = _mapper(), Clock(), FakeApi()
    sale = _event("stripe_invoice.paid_renewal_taxes_included.json")
    big = _event("stripe_refund.created_partial_basil.json", amount=3500)
    other = _event("stripe_refund.created_partial_basil.json", id="re_other", amount=1000)
    with runtime_for(db_url) as runtime:
        put(runtime, _map(engine, sale, big), clock())
        drain(worker_for(runtime, api, clock), clock)
        put(runtime, _map(engine, other), clock())
        drain(worker_for(runtime, api, clock), clock)
        rows = _rows(runtime)
    dead = rows["stripe:refund:re_other"]
    assert dead.status == "dead"
    assert "more than was paid" in (dead.last_error or "")
    assert rows["stripe:refund:re_1Rk2demoRefundPart1000000"].status == "done"


def test_a_refund_whose_sale_never_arrives_goes_dead_after_the_wait(db_url: str) -> None:
    engine, clock, api = _mapper(), Clock(), FakeApi()
    refund = _event("stripe_refund.created_partial_basil.json")
    with runtime_for(db_url, dependency_wait_seconds=3600.0) as runtime:
        put(runtime, _map(engine, refund), clock())
        worker = worker_for(runtime, api, clock)
        drain(worker, clock)
        with runtime.sessions() as session:
            waiting = status(session, clock())
        assert waiting["commands_waiting_for_a_missing_dependency"] == 1
        assert _rows(runtime)["stripe:refund:re_1Rk2demoRefundPart1000000"].status == "pending"
        clock.advance(3601)
        worker.step()
        row = _rows(runtime)["stripe:refund:re_1Rk2demoRefundPart1000000"]
        with runtime.sessions() as session:
            after = status(session, clock())
    assert row.status == "dead"
    assert f"{SALE_KEY} (never arrived)" in (row.last_error or "")
    assert after["commands_waiting_for_a_missing_dependency"] == 0
    assert after["commands"]["dead"] == 1


def test_an_existing_customer_with_the_same_email_is_bound(db_url: str) -> None:
    engine, clock, api = _mapper(), Clock(), FakeApi()
    api.customers[7] = {"id": 7, "email": "xsophie.garnier@example.net", "last_name": "X"}
    api.customers[9] = {"id": 9, "email": "Sophie.Garnier@Example.NET", "last_name": "Garnier"}
    sale = _event("stripe_invoice.paid_renewal_taxes_included.json")
    with runtime_for(db_url) as runtime:
        put(runtime, _map(engine, sale), clock())
        drain(worker_for(runtime, api, clock), clock)
        rows = _rows(runtime)
    assert "create_customer" not in api.calls
    assert rows["customer:stripe:cus_1Rk2demoCustomer"].remote_id == 9
    assert api.invoices[rows[SALE_KEY].remote_id or 0]["customer_id"] == 9


def test_customer_lookup_can_be_turned_off(db_url: str) -> None:
    engine, clock, api = _mapper(), Clock(), FakeApi()
    api.customers[9] = {"id": 9, "email": "sophie.garnier@example.net", "last_name": "Garnier"}
    sale = _event("stripe_invoice.paid_renewal_taxes_included.json")
    with runtime_for(db_url, customer_lookup_by_email=False) as runtime:
        put(runtime, _map(engine, sale), clock())
        drain(worker_for(runtime, api, clock), clock)
    assert api.calls.count("create_customer") == 1
    assert "find_customers" not in api.calls


def test_the_fixture_is_the_current_api_shape() -> None:
    payload = json.loads((AUTHORED / "stripe_charge.refunded_partial_basil.json").read_text())
    assert payload["api_version"].endswith(".basil")
    assert "invoice" not in payload["data"]["object"]
