"""Shared pieces for outbox and delivery tests: a settable clock, sale and refund commands, a worker."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.config import load_settings
from bridge.db.models import utcnow
from bridge.outbox.commands import Command, CommandKind, Priority
from bridge.outbox.enqueue import enqueue
from bridge.outbox.worker import Worker
from bridge.runtime import Runtime

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def customer_key(customer: str) -> str:
    return f"customer:test:{customer}"


def invoice_key(order: int) -> str:
    return f"invoice:test:in_{order}"


def refund_key(order: int) -> str:
    return f"refund:test:in_{order}"


def sale(
    order: int, customer: str, amount: str = "12.00", *, backfill: bool = False
) -> list[Command]:
    """A paid order: ensure its customer, then create its invoice (one line at 20 % VAT)."""
    priority = Priority.BACKFILL if backfill else Priority.LIVE
    return [
        Command(
            CommandKind.ENSURE_CUSTOMER,
            customer_key(customer),
            payload={"company_name": f"Client {customer}"},
            meta={"binding_key": f"test:{customer}"},
            priority=priority,
        ),
        Command(
            CommandKind.CREATE_INVOICE,
            invoice_key(order),
            payload={
                "title": f"Order {order}",
                "items": [
                    {"title": "Thing", "quantity": "1", "unit_price": amount, "vat": "0.200"}
                ],
            },
            refs={"customer_id": customer_key(customer)},
            meta={"expected_total_with_vat": str(_with_vat(amount)), "currency": "EUR"},
            priority=priority,
        ),
    ]


def refund(order: int) -> list[Command]:
    """A full refund of an order: a credit note that waits for the order's invoice."""
    return [
        Command(
            CommandKind.FULL_CREDIT_NOTE,
            refund_key(order),
            payload={"invoice_id": None},
            refs={"invoice_id": invoice_key(order)},
        )
    ]


def _with_vat(amount: str) -> Any:
    from decimal import Decimal

    from bridge.facturation.totals import compute_totals

    return compute_totals(
        [{"quantity": 1, "unit_price": Decimal(amount), "vat": "0.200"}]
    ).total_with_vat


def settings_for(url: str, **overrides: Any) -> Any:
    base: dict[str, Any] = {
        "database_url": url,
        "retry_base_seconds": 1.0,
        "retry_max_delay_seconds": 60.0,
        "retry_give_up_seconds": 3 * 86400.0,
        "lease_seconds": 30.0,
        "api_timeout": 5.0,
        "rate_limit": 600,
        "rate_window": 300.0,
        "daily_limit": 10_000,
        # The outbox's mechanics are tested with the totals rule trusted (one call per invoice);
        # the draft-then-finalise path has its own tests (test_finalise.py).
        "shape_confirmations": 0,
    }
    base.update(overrides)
    return load_settings(**base)


@contextmanager
def runtime_for(url: str, **overrides: Any) -> Iterator[Runtime]:
    runtime = Runtime.open(settings_for(url, **overrides))
    try:
        yield runtime
    finally:
        runtime.close()


def worker_for(runtime: Runtime, api: Any, clock: Clock, name: str = "w1", seed: int = 1) -> Worker:
    return Worker(runtime, api, None, worker_id=name, clock=clock, rng=random.Random(seed))


def put(runtime: Runtime, commands: list[Command], now: datetime | None = None) -> None:
    with runtime.sessions.begin() as session:
        enqueue(session, commands, now=now or utcnow())


def drain(worker: Worker, clock: Clock, *, max_steps: int = 500, step_s: float = 0.0) -> int:
    """Run ``worker`` until nothing is left to do, advancing the clock past any wait."""
    steps = idle = 0
    while steps < max_steps:
        steps += 1
        if worker.step():
            idle = 0
            clock.advance(step_s)
            continue
        due_in = worker.outbox.next_due_in()
        idle += 1
        if due_in is None or idle > 3:  # nothing left, or only commands whose dependency is stuck
            return steps
        clock.advance(max(due_in, 0.001) + 0.001)
        worker.quota_ready_at = None
    raise AssertionError(f"not drained after {max_steps} steps")
