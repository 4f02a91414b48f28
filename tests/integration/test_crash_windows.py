"""Deterministic crashes at each window of a delivery; each ends with exactly one object in the API.

A crash is :class:`Crash`, a ``BaseException`` raised inside the fake API (or by dropping a claimed
command on the floor): nothing the worker would do after that point runs, as when the process is
killed. A second worker then takes over once the lease expires.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bridge.db.models import OutboxCommand
from bridge.outbox.delivery import Outcome
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

LEASE = 30.0


def _take_over(runtime: object, api: FakeApi, clock: Clock) -> None:
    clock.advance(LEASE + 1)
    drain(worker_for(runtime, api, clock, "w2"), clock)  # type: ignore[arg-type]


def _assert_exactly_one_of_each(runtime: object, api: FakeApi) -> None:
    with runtime.sessions() as session:  # type: ignore[attr-defined]
        rows = {r.idempotency_key: r for r in session.execute(select(OutboxCommand)).scalars()}
    assert {r.status for r in rows.values()} == {"done"}
    assert len(api.customers) == 1
    assert len(api.invoices) == 1
    assert api.duplicates() == []
    assert rows[customer_key("cus_a")].remote_id in api.customers
    assert rows[invoice_key(1)].remote_id in api.invoices


def test_crash_after_claim(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url, lease_seconds=LEASE) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        w1 = worker_for(runtime, api, clock, "w1")
        assert w1.outbox.claim("w1") is not None  # ... and the process dies holding the lease
        assert api.calls == []
        _take_over(runtime, api, clock)
        _assert_exactly_one_of_each(runtime, api)
    assert api.calls == ["create_customer", "create_invoice"]


@pytest.mark.parametrize("command", ["customer", "invoice"])
def test_crash_after_marking_unknown_and_before_sending(db_url: str, command: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url, lease_seconds=LEASE) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        w1 = worker_for(runtime, api, clock, "w1")
        if command == "invoice":
            assert w1.step()
        api.fail_next("crash_before")
        with pytest.raises(Crash):
            w1.step()
        _take_over(runtime, api, clock)
        _assert_exactly_one_of_each(runtime, api)
    # the object was looked up (not there) and only then sent
    resource = "find_customers" if command == "customer" else "find_invoices"
    assert resource in api.calls


@pytest.mark.parametrize("command", ["customer", "invoice"])
def test_crash_after_sending_and_before_recording(db_url: str, command: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url, lease_seconds=LEASE) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        w1 = worker_for(runtime, api, clock, "w1")
        if command == "invoice":
            assert w1.step()
        api.fail_next("crash_after")
        with pytest.raises(Crash):
            w1.step()  # the API created it; the worker died before recording
        with runtime.sessions() as session:
            row = session.execute(
                select(OutboxCommand).where(OutboxCommand.status == "in_flight")
            ).scalar_one()
        assert row.outcome_unknown  # durably marked before the request left
        _take_over(runtime, api, clock)
        _assert_exactly_one_of_each(runtime, api)
    creates = [c for c in api.calls if c.startswith("create_")]
    assert creates == ["create_customer", "create_invoice"]


def test_crash_after_recording(db_url: str) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url, lease_seconds=LEASE) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        w1 = worker_for(runtime, api, clock, "w1")
        claimed = w1.outbox.claim("w1")
        assert claimed is not None
        assert w1.deliverer.deliver(claimed) is Outcome.DONE  # ... and the process dies here
        _take_over(runtime, api, clock)
        _assert_exactly_one_of_each(runtime, api)
    assert api.calls == ["create_customer", "create_invoice"]


def test_a_worker_that_comes_back_late_changes_nothing(db_url: str) -> None:
    """Paused past its lease (GC, network), the first worker's answer arrives after a takeover."""
    clock, api = Clock(), FakeApi()
    with runtime_for(db_url, lease_seconds=LEASE) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        w1 = worker_for(runtime, api, clock, "w1")
        stale = w1.outbox.claim("w1")
        assert stale is not None
        _take_over(runtime, api, clock)
        assert w1.deliverer.deliver(stale) is Outcome.LEASE_LOST
        _assert_exactly_one_of_each(runtime, api)
    assert api.calls == ["create_customer", "create_invoice"]
