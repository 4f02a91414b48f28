"""A hypothesis state machine over the whole delivery path: webhooks in, the fake API out.

Rules: ingest a sale or a refund (as a stored webhook, mapped by the stage), deliver it again
(a duplicate delivery), let a worker take a step with or without an API fault, crash a worker at
any window (after claim, before send, after send), advance the clock. After every step:

- no duplicate create toward the API (no two objects share an ``api_id``);
- nothing lost (every event is mapped, every command of a sale or refund is pending, in flight or
  done; none dead, none missing);
- dependencies respected (no invoice without its customer, no credit note without its invoice);
- every done command's object exists in the API, under its key.

At the end, faults stop and a fresh worker drains: every sale has exactly one invoice, every refund
of a sale exactly one credit note.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import select

from bridge.db import make_engine, migrate
from bridge.db.models import EventStatus, InboxEvent, OutboxCommand
from bridge.inbound.events import InboundEvent, Source
from bridge.inbound.inbox import Inbox
from bridge.inbound.sources import Delivery
from bridge.outbox.commands import Command
from bridge.outbox.worker import Worker
from bridge.runtime import Runtime
from tests.support.fake_api import Crash, FakeApi
from tests.support.outbox_kit import (
    Clock,
    customer_key,
    drain,
    invoice_key,
    refund,
    refund_key,
    sale,
    settings_for,
)

LEASE = 30.0
ORDERS = st.integers(min_value=0, max_value=5)
FAULTS = st.sampled_from(
    [None, None, "5xx_before", "502_after", "drop_after", "timeout_after", "429", "connect"]
)
_TEMPLATE: dict[str, Path] = {}


def _template_db() -> Path:
    if "path" not in _TEMPLATE:
        path = Path(tempfile.mkdtemp(prefix="bridge-stateful-")) / "template.db"
        engine = make_engine(f"sqlite:///{path}")
        migrate(engine)
        engine.dispose()
        _TEMPLATE["path"] = path
    return _TEMPLATE["path"]


class FakeMapper:
    """Maps the test's webhook shapes: ``invoice.paid`` -> a sale, ``charge.refunded`` -> a refund."""

    def map_event(self, event: InboundEvent) -> Any:
        order = int(event.payload["data"]["order"])
        commands: list[Command]
        if event.event_type == "invoice.paid":
            commands = sale(order, f"cus_{order % 3}", f"{10 + order}.50")
        else:
            commands = refund(order)
        return _Outcome(commands)


class _Outcome:
    def __init__(self, commands: list[Command]) -> None:
        self.commands = commands
        self.skipped: str | None = None


class DeliveryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="bridge-sm-"))
        shutil.copy(_template_db(), self.dir / "bridge.db")
        url = f"sqlite:///{self.dir / 'bridge.db'}"
        self.runtime = Runtime.open(
            settings_for(
                url,
                lease_seconds=LEASE,
                retry_base_seconds=0.5,
                retry_max_delay_seconds=20.0,
                sqlite_synchronous="NORMAL",
            )
        )
        self.inbox = Inbox(self.runtime.engine, busy_timeout=2.0)
        self.clock = Clock()
        self.api = FakeApi()
        self.generation = 0
        self.workers = [self._worker(), self._worker()]
        self.sales: set[int] = set()
        self.refunds: set[int] = set()

    def _worker(self) -> Worker:
        self.generation += 1
        return Worker(
            self.runtime,
            self.api,
            FakeMapper(),
            worker_id=f"w{self.generation}",
            clock=self.clock,
        )

    def _deliver_webhook(self, kind: str, order: int) -> None:
        event_type = "invoice.paid" if kind == "sale" else "charge.refunded"
        event_id = f"evt_{kind}_{order}"
        body = json.dumps({"id": event_id, "type": event_type, "data": {"order": order}})
        self.inbox.store(
            Delivery(Source.STRIPE, event_id, event_type, body.encode()),
            EventStatus.RECEIVED,
            received_at=self.clock(),
        )

    # -- rules ------------------------------------------------------------------------------------

    @rule(order=ORDERS)
    def ingest_sale(self, order: int) -> None:
        self._deliver_webhook("sale", order)
        self.sales.add(order)

    @rule(order=ORDERS)
    def ingest_refund(self, order: int) -> None:
        self._deliver_webhook("refund", order)
        self.refunds.add(order)

    @rule(order=ORDERS)
    def redeliver(self, order: int) -> None:
        if order in self.sales:
            self._deliver_webhook("sale", order)
        if order in self.refunds:
            self._deliver_webhook("refund", order)

    @rule(which=st.integers(0, 1), fault=FAULTS)
    def step(self, which: int, fault: str | None) -> None:
        if fault is not None:
            self.api.fail_next(fault)
        self.workers[which].step()
        self.api.faults.clear()  # a fault no call consumed does not linger

    @rule(which=st.integers(0, 1), where=st.sampled_from(["claim", "crash_before", "crash_after"]))
    def crash(self, which: int, where: str) -> None:
        worker = self.workers[which]
        if where == "claim":
            worker.stage.run_once() if worker.stage else None
            worker.outbox.claim(worker.worker_id)  # then the process dies holding the lease
        else:
            self.api.fail_next(where)
            with contextlib.suppress(Crash):
                worker.step()
            self.api.faults.clear()
        self.workers[which] = self._worker()  # the process is restarted under a new id

    @rule(seconds=st.floats(min_value=0.1, max_value=45.0))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # -- invariants -------------------------------------------------------------------------------

    def _rows(self) -> dict[str, OutboxCommand]:
        with self.runtime.sessions() as session:
            return {r.idempotency_key: r for r in session.execute(select(OutboxCommand)).scalars()}

    @invariant()
    def no_duplicate_creates(self) -> None:
        assert self.api.duplicates() == []

    @invariant()
    def nothing_lost(self) -> None:
        with self.runtime.sessions() as session:
            events = session.execute(select(InboxEvent.status)).scalars().all()
        assert set(events) <= {EventStatus.RECEIVED, EventStatus.MAPPED}
        rows = self._rows()
        mapped = {r.idempotency_key for r in rows.values()}
        assert all(r.status in {"pending", "in_flight", "done"} for r in rows.values())
        expected = {invoice_key(o) for o in self.sales} | {refund_key(o) for o in self.refunds}
        in_flight_to_map = len(events) - sum(1 for s in events if s == EventStatus.MAPPED)
        if in_flight_to_map == 0:
            assert expected <= mapped

    @invariant()
    def dependencies_respected(self) -> None:
        for invoice in self.api.invoices.values():
            if invoice.get("refund_of") is not None:
                assert invoice["refund_of"] in self.api.invoices
            else:
                assert invoice["customer_id"] in self.api.customers

    @invariant()
    def done_commands_exist_in_the_api(self) -> None:
        objects = self.api.by_custom()
        for key, row in self._rows().items():
            if row.status == "done":
                assert objects[key]["id"] == row.remote_id
        asked = set(self._rows())
        assert set(objects) <= asked  # nothing created that no command asked for

    def teardown(self) -> None:
        try:
            self.api.faults.clear()
            self.clock.advance(LEASE + 1)
            drain(self._worker(), self.clock, max_steps=2000)
            objects = self.api.by_custom()
            assert self.api.duplicates() == []
            for order in self.sales:
                assert invoice_key(order) in objects
                assert customer_key(f"cus_{order % 3}") in objects
            for order in self.refunds:
                assert (refund_key(order) in objects) == (order in self.sales)
            rows = self._rows()
            waiting = {k for k, r in rows.items() if r.status != "done"}
            assert waiting == {refund_key(o) for o in self.refunds - self.sales}
        finally:
            self.runtime.close()
            shutil.rmtree(self.dir, ignore_errors=True)


DeliveryMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_delivery_state_machine = DeliveryMachine.TestCase
