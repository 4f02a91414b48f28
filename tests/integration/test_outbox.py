"""The outbox on real SQLite and PostgreSQL: idempotent enqueue, dependencies, claim, lease, fencing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from bridge.db.models import CommandStatus, OutboxCommand
from bridge.outbox.commands import Command, CommandKind
from bridge.outbox.enqueue import enqueue
from bridge.outbox.queue import Outbox
from tests.support.outbox_kit import (
    Clock,
    customer_key,
    invoice_key,
    put,
    refund,
    refund_key,
    runtime_for,
    sale,
)


def _statuses(runtime: object) -> dict[str, str]:
    with runtime.sessions() as session:  # type: ignore[attr-defined]
        rows = session.execute(select(OutboxCommand.idempotency_key, OutboxCommand.status)).all()
    return {key: status for key, status in rows}


def test_enqueue_is_idempotent_on_the_key(db_url: str) -> None:
    clock = Clock()
    with runtime_for(db_url) as runtime:
        with runtime.sessions.begin() as session:
            first = enqueue(session, sale(1, "cus_a"), now=clock())
        with runtime.sessions.begin() as session:
            again = enqueue(session, [*sale(1, "cus_a"), *sale(2, "cus_a")], now=clock())
        assert (first.inserted, first.existing) == (2, 0)
        assert (again.inserted, again.existing) == (1, 3)  # only invoice 2 is new
        assert len(_statuses(runtime)) == 3


def test_a_dependent_waits_for_its_dependency_even_before_it_exists(db_url: str) -> None:
    clock = Clock()
    with runtime_for(db_url) as runtime:
        outbox = Outbox(runtime.sessions, lease_seconds=30, clock=clock)
        put(runtime, refund(7), clock())  # the refund arrives before its order
        assert outbox.claim("w") is None
        put(runtime, sale(7, "cus_b"), clock())
        first = outbox.claim("w")
        assert first is not None
        assert first.key == customer_key("cus_b")
        assert outbox.claim("w") is None  # the invoice waits for the customer
        assert outbox.complete(first, remote_id=11, result={"id": 11})
        second = outbox.claim("w")
        assert second is not None
        assert second.key == invoice_key(7)
        assert outbox.claim("w") is None  # the refund waits for the invoice
        assert outbox.complete(second, remote_id=12, result={"id": 12})
        third = outbox.claim("w")
        assert third is not None
        assert third.key == refund_key(7)


def test_claim_sets_lease_and_token_and_an_expired_lease_is_claimable_again(db_url: str) -> None:
    clock = Clock()
    with runtime_for(db_url) as runtime:
        outbox = Outbox(runtime.sessions, lease_seconds=30, clock=clock)
        put(runtime, sale(1, "cus_a")[:1], clock())
        first = outbox.claim("w1")
        assert first is not None
        assert first.lease_token == 1
        with runtime.sessions() as session:
            row = session.execute(select(OutboxCommand)).scalar_one()
            assert row.status == CommandStatus.IN_FLIGHT
            assert row.leased_by == "w1"
            assert row.lease_expires_at == clock() + timedelta(seconds=30)
        clock.advance(29)
        assert outbox.claim("w2") is None  # still leased
        clock.advance(2)
        second = outbox.claim("w2")
        assert second is not None
        assert second.id == first.id
        assert second.lease_token == 2


def test_a_late_worker_cannot_overwrite_a_newer_attempt(db_url: str) -> None:
    clock = Clock()
    with runtime_for(db_url) as runtime:
        outbox = Outbox(runtime.sessions, lease_seconds=30, clock=clock)
        put(runtime, sale(1, "cus_a")[:1], clock())
        late = outbox.claim("slow")
        assert late is not None
        clock.advance(31)
        fresh = outbox.claim("fast")
        assert fresh is not None
        assert not outbox.complete(late, remote_id=1, result={"id": 1})
        assert not outbox.retry_later(late, wait_s=1, error="x", consume_attempt=True)
        assert not outbox.kill(late, error="x")
        assert outbox.complete(fresh, remote_id=2, result={"id": 2})
        with runtime.sessions() as session:
            row = session.execute(select(OutboxCommand)).scalar_one()
        assert (row.status, row.remote_id, row.attempts) == ("done", 2, 0)


def test_live_goes_before_backfill(db_url: str) -> None:
    clock = Clock()
    with runtime_for(db_url) as runtime:
        outbox = Outbox(runtime.sessions, lease_seconds=30, clock=clock)
        put(runtime, sale(1, "cus_old", backfill=True)[:1], clock())
        clock.advance(1)
        put(runtime, sale(2, "cus_new")[:1], clock())
        claimed = outbox.claim("w")
        assert claimed is not None
        assert claimed.key == customer_key("cus_new")


def test_retry_later_and_kill_record_attempts_and_errors(db_url: str) -> None:
    clock = Clock()
    with runtime_for(db_url) as runtime:
        outbox = Outbox(runtime.sessions, lease_seconds=30, clock=clock)
        put(runtime, sale(1, "cus_a")[:1], clock())
        c = outbox.claim("w")
        assert c is not None
        assert outbox.retry_later(c, wait_s=10, error="503", consume_attempt=True)
        assert outbox.claim("w") is None  # not due yet
        clock.advance(10)
        c = outbox.claim("w")
        assert c is not None
        assert c.attempts == 1
        assert outbox.retry_later(c, wait_s=0, error="429", consume_attempt=False)
        c = outbox.claim("w")
        assert c is not None
        assert c.attempts == 1
        assert outbox.kill(c, error="422: invalid", result={"errors": {"x": ["bad"]}})
        with runtime.sessions() as session:
            row = session.execute(select(OutboxCommand)).scalar_one()
        assert (row.status, row.attempts, row.last_error) == ("dead", 2, "422: invalid")
        assert row.result == {"errors": {"x": ["bad"]}}


def test_decimal_payloads_are_stored_as_exact_strings(db_url: str) -> None:
    from decimal import Decimal

    clock = Clock()
    command = Command(
        CommandKind.CREATE_INVOICE,
        "invoice:test:dec",
        payload={"items": [{"unit_price": Decimal("0.105"), "quantity": 3}]},
        meta={"expected_total_with_vat": Decimal("0.38")},
    )
    with runtime_for(db_url) as runtime:
        put(runtime, [command], clock())
        with runtime.sessions() as session:
            row = session.execute(select(OutboxCommand)).scalar_one()
    assert row.payload == {"items": [{"unit_price": "0.105", "quantity": 3}]}
    assert row.meta == {"expected_total_with_vat": "0.38"}


@pytest.mark.postgres
def test_concurrent_claims_on_postgres_never_take_the_same_command(pg_url: str) -> None:
    clock = Clock()
    with runtime_for(pg_url) as runtime:
        put(runtime, [c for i in range(60) for c in sale(i, f"cus_{i}")[:1]], clock())
        claimed: list[int] = []
        lock = threading.Lock()
        start = threading.Barrier(6)

        def claim_all(name: str) -> None:
            outbox = Outbox(runtime.sessions, lease_seconds=30, clock=clock)
            start.wait()
            while (c := outbox.claim(name)) is not None:
                with lock:
                    claimed.append(c.id)

        threads = [threading.Thread(target=claim_all, args=(f"w{i}",)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert len(claimed) == 60
    assert len(set(claimed)) == 60
