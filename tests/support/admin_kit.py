"""A small stored history for the admin page and metrics tests: events in several states, commands
delivered, dead and pending, with known times."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from bridge.db.models import InboxEvent, OutboxCommand
from bridge.runtime import Runtime
from tests.support.outbox_kit import T0

TOKEN = "admin-token-for-tests-0123456789"


@dataclass(frozen=True)
class Seeded:
    failed_event: int  # stripe, failed, order "CMD-1042" in its body
    mapped_event: int  # shopify, mapped, produced ``done`` and ``dead``
    done: int  # delivered 3 s after its webhook arrived
    dead: int  # refused by the API (422), 2 attempts
    pending: int  # created at T0 + 10 s, not yet delivered


def _event(
    source: str, event_id: str, status: str, body: dict[str, object], reason: str | None
) -> InboxEvent:
    return InboxEvent(
        source=source,
        event_id=event_id,
        event_type="invoice.paid" if source == "stripe" else "orders/paid",
        body=json.dumps(body).encode(),
        status=status,
        status_reason=reason,
        received_at=T0,
    )


def seed(runtime: Runtime) -> Seeded:
    with runtime.sessions.begin() as session:
        failed = _event(
            "stripe",
            "evt_failed_1",
            "failed",
            {"id": "evt_failed_1", "data": {"object": {"id": "in_1042", "number": "CMD-1042"}}},
            "MappingError: no customer email",
        )
        mapped = _event("shopify", "5551", "mapped", {"id": 5551, "name": "#5551"}, None)
        session.add_all([failed, mapped])
        session.flush()
        done = OutboxCommand(
            idempotency_key="invoice:shopify:5551",
            kind="invoice.create",
            payload={"title": "Commande #5551"},
            inbox_event_id=mapped.id,
            status="done",
            remote_id=777,
            result={"invoice_ref": "FA-2026-0042"},
            created_at=T0,
            done_at=T0 + timedelta(seconds=3),
        )
        dead = OutboxCommand(
            idempotency_key="customer:shopify:9",
            kind="customer.ensure",
            payload={"company_name": ""},
            inbox_event_id=mapped.id,
            status="dead",
            attempts=2,
            last_error="422: invalid",
            result={"errors": {"company_name": ["doit être rempli(e)"]}},
            created_at=T0,
        )
        pending = OutboxCommand(
            idempotency_key="invoice:stripe:in_9",
            kind="invoice.create",
            payload={"title": "x"},
            created_at=T0 + timedelta(seconds=10),
        )
        session.add_all([done, dead, pending])
        session.flush()
        return Seeded(failed.id, mapped.id, done.id, dead.id, pending.id)
