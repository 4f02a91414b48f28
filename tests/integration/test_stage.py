"""The mapping stage on SQLite and PostgreSQL: one transaction per event, failures kept and replayable."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bridge.admin.operations import replay_event
from bridge.config import load_settings
from bridge.db.models import EventStatus, InboxEvent, OutboxCommand
from bridge.inbound.events import InboundEvent, Source
from bridge.inbound.inbox import Inbox
from bridge.inbound.sources import Delivery
from bridge.mapping.engine import MappingEngine
from bridge.mapping.stage import Stage
from bridge.outbox.retry import RetryPolicy
from tests.support.outbox_kit import runtime_for, sale
from tests.support.webhooks import stripe_event


class Outcome:
    def __init__(self, commands: list[Any], skipped: str | None = None) -> None:
        self.commands = commands
        self.skipped = skipped


class MappingError(Exception):
    pass


class ScriptedMapper:
    """Maps ``{"order": n}`` to a sale; ``{"skip": …}`` is skipped; anything else fails."""

    def __init__(self) -> None:
        self.broken = True

    def map_event(self, event: InboundEvent) -> Outcome:
        data = event.payload["data"]
        if "skip" in data:
            return Outcome([], skipped=str(data["skip"]))
        if "order" in data and not (self.broken and data.get("needs_fix")):
            return Outcome(sale(int(data["order"]), "cus_a"))
        raise MappingError("no customer in this event")


def _store(
    inbox: Inbox, event_id: str, data: dict[str, Any] | None, raw: bytes | None = None
) -> None:
    body = (
        raw
        if raw is not None
        else json.dumps({"id": event_id, "type": "invoice.paid", "data": data}).encode()
    )
    inbox.store(Delivery(Source.STRIPE, event_id, "invoice.paid", body), EventStatus.RECEIVED)


def _events(runtime: Any) -> dict[str, InboxEvent]:
    with runtime.sessions() as session:
        return {e.event_id: e for e in session.execute(select(InboxEvent)).scalars()}


def test_each_event_ends_mapped_ignored_or_failed_and_a_fix_plus_replay_maps_it(
    db_url: str,
) -> None:
    mapper = ScriptedMapper()
    with runtime_for(db_url) as runtime:
        inbox = Inbox(runtime.engine, busy_timeout=2.0)
        _store(inbox, "evt_ok", {"order": 1})
        _store(inbox, "evt_again", {"order": 1})  # another event for the same sale
        _store(inbox, "evt_skip", {"skip": "invoice not paid"})
        _store(inbox, "evt_fix", {"order": 2, "needs_fix": True})
        _store(inbox, "evt_junk", None, raw=b"[1, 2]")
        stage = Stage(runtime.sessions, mapper)
        assert stage.run_once() == 5
        assert stage.run_once() == 0
        events = _events(runtime)
        assert {k: e.status for k, e in events.items()} == {
            "evt_ok": "mapped",
            "evt_again": "mapped",
            "evt_skip": "ignored",
            "evt_fix": "failed",
            "evt_junk": "failed",
        }
        assert events["evt_skip"].status_reason == "invoice not paid"
        assert events["evt_fix"].status_reason == "MappingError: no customer in this event"
        assert "JSON object" in (events["evt_junk"].status_reason or "")
        with runtime.sessions() as session:
            keys = set(session.execute(select(OutboxCommand.idempotency_key)).scalars())
        assert keys == {"customer:test:cus_a", "invoice:test:in_1"}

        mapper.broken = False  # the mapping is fixed, the operator replays
        with runtime.sessions.begin() as session:
            assert replay_event(session, events["evt_fix"].id, datetime.now(UTC))
        assert stage.run_once() == 1
        fixed = _events(runtime)["evt_fix"]
        assert (fixed.status, fixed.status_reason, fixed.attempts) == ("mapped", None, 2)
        with runtime.sessions() as session:
            keys = set(session.execute(select(OutboxCommand.idempotency_key)).scalars())
        assert "invoice:test:in_2" in keys


def test_the_built_in_mappings_turn_a_stored_stripe_event_into_commands(db_url: str) -> None:
    with runtime_for(db_url) as runtime:
        inbox = Inbox(runtime.engine, busy_timeout=2.0)
        body = stripe_event(event_id="evt_000000000000000000000000")
        inbox.store(
            Delivery(Source.STRIPE, "evt_000000000000000000000000", "invoice.paid", body),
            EventStatus.RECEIVED,
        )
        stage = Stage(runtime.sessions, MappingEngine.load(load_settings()))
        assert stage.run_once() == 1
        with runtime.sessions() as session:
            rows = session.execute(select(OutboxCommand).order_by(OutboxCommand.id)).scalars().all()
            event = session.execute(select(InboxEvent)).scalar_one()
    assert event.status == "mapped"
    assert [r.kind for r in rows] == ["customer.ensure", "invoice.create"]
    assert rows[1].idempotency_key == "stripe:invoice:in_000000000000000000000000"
    assert rows[1].refs == {"customer_id": rows[0].idempotency_key}
    assert rows[1].meta["expected_total_with_vat"] == "20.00"
    assert rows[1].payload["items"][0]["vat"] == "0.200"
    assert all(r.inbox_event_id == event.id for r in rows)


def test_a_value_the_mapping_cannot_use_is_named_on_the_failed_event(db_url: str) -> None:
    payload = json.loads(stripe_event(event_id="evt_bad_amount"))
    payload["data"]["object"]["lines"]["data"][0]["amount"] = "20,00"
    with runtime_for(db_url) as runtime:
        inbox = Inbox(runtime.engine, busy_timeout=2.0)
        _store(inbox, "evt_bad_amount", None, raw=json.dumps(payload).encode())
        assert Stage(runtime.sessions, MappingEngine.load(load_settings())).run_once() == 1
        row = _events(runtime)["evt_bad_amount"]
    assert row.status == "failed"
    reason = row.status_reason or ""
    assert reason.startswith("MappingError: ")
    assert reason.endswith(
        "mappings/stripe/invoice.paid.yaml: lines[0].unit_price: expected minor units (an integer)"
        " at data.object.lines.data[0].amount, got '20,00'"
    ), reason


class StripeDownError(Exception):
    retryable = True  # as the mapping engine's EnrichmentError


class FlakyMapper:
    """Fails with a passing error until ``up``; then maps ``{"order": n}`` to a sale."""

    def __init__(self) -> None:
        self.up = False

    def map_event(self, event: InboundEvent) -> Outcome:
        if not self.up:
            raise StripeDownError("stripe GET /v1/checkout/sessions: ConnectError")
        return Outcome(sale(int(event.payload["data"]["order"]), "cus_a"))


class Ceiling(random.Random):
    """Jitter that always draws the largest wait, so that the policy's ceilings show exactly."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_a_passing_mapping_failure_is_retried_later_not_failed(db_url: str) -> None:
    mapper = FlakyMapper()
    now = datetime.now(UTC)
    clock = [now]
    with runtime_for(db_url) as runtime:
        inbox = Inbox(runtime.engine, busy_timeout=2.0)
        _store(inbox, "evt_checkout", {"order": 7})
        stage = Stage(runtime.sessions, mapper, clock=lambda: clock[0], rng=Ceiling())
        assert stage.run_once() == 1
        waiting = _events(runtime)["evt_checkout"]
        assert waiting.status == "received"
        assert waiting.next_attempt_at == now + timedelta(seconds=10)
        assert "will retry" in (waiting.status_reason or "")
        assert stage.run_once() == 0  # not due yet: nothing taken, Stripe not called again
        clock[0] = now + timedelta(seconds=11)
        assert stage.run_once() == 1  # second failure: the wait's ceiling doubles
        assert _events(runtime)["evt_checkout"].next_attempt_at == clock[0] + timedelta(seconds=20)

        mapper.up = True  # an operator need not wait: replay makes it due now
        with runtime.sessions.begin() as session:
            assert replay_event(session, waiting.id, clock[0])
        assert stage.run_once() == 1
        done = _events(runtime)["evt_checkout"]
        assert (done.status, done.status_reason, done.next_attempt_at) == ("mapped", None, None)


def test_passing_failures_wait_as_the_outbox_policy_decides(db_url: str) -> None:
    """The stage's waits are RetryPolicy's: full jitter under the ceiling, never past give-up."""
    policy = RetryPolicy(base_seconds=4.0, max_delay_seconds=8.0, give_up_seconds=3600.0)
    now = datetime.now(UTC)
    clock = [now]
    with runtime_for(db_url) as runtime:
        _store(Inbox(runtime.engine, busy_timeout=2.0), "evt_jitter", {"order": 9})
        stage = Stage(
            runtime.sessions,
            FlakyMapper(),
            clock=lambda: clock[0],
            policy=policy,
            rng=random.Random(7),
        )
        waits = []
        for attempt in range(1, 6):
            assert stage.run_once() == 1
            row = _events(runtime)["evt_jitter"]
            assert (row.status, row.attempts) == ("received", attempt)
            assert row.next_attempt_at is not None
            waits.append((row.next_attempt_at - clock[0]).total_seconds())
            assert 0 <= waits[-1] <= policy.ceiling(attempt)
            clock[0] = row.next_attempt_at
        assert len(set(waits)) == len(waits)  # drawn, not a fixed schedule
        assert max(waits) <= 8.0


def test_a_passing_failure_past_the_give_up_time_fails_the_event(db_url: str) -> None:
    later = datetime.now(UTC) + timedelta(days=4)
    with runtime_for(db_url) as runtime:
        _store(Inbox(runtime.engine, busy_timeout=2.0), "evt_old", {"order": 8})
        stage = Stage(runtime.sessions, FlakyMapper(), clock=lambda: later)
        assert stage.run_once() == 1
        old = _events(runtime)["evt_old"]
        assert old.status == "failed"
        assert (old.status_reason or "").startswith("StripeDownError: stripe GET")
