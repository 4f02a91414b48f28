"""The VIES check in the mapping stage, on SQLite and PostgreSQL, against a local VIES over HTTP:
a reverse-charge sale waits while VIES can't answer and is mapped once it confirms the number; a
number VIES says is not registered fails the event with that reason (replayable); a sale that
does not depend on VIES never asks it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bridge.db.models import EventStatus, InboxEvent, OutboxCommand
from bridge.inbound.events import Source
from bridge.inbound.inbox import Inbox
from bridge.inbound.sources import Delivery
from bridge.mapping.engine import MappingEngine
from bridge.mapping.mentions import MENTIONS
from bridge.mapping.stage import Stage
from tests.support.fake_vies import serve_fake_vies
from tests.support.outbox_kit import runtime_for, settings_for
from tests.support.shopify_traffic import candle_order

SHOP = "maison-colombe.myshopify.com"


def order(order_id: int, country: str, vat_number: str | None, tax: str) -> bytes:
    address = {"company": "Kerzenhaus Weber GmbH", "last_name": "Weber", "country_code": country}
    notes = ({"name": "VAT number", "value": vat_number},) if vat_number else ()
    return json.dumps(candle_order(order_id, address, tax=tax, notes=notes)).encode()


def store(inbox: Inbox, event_id: str, body: bytes) -> None:
    headers = {
        "x-shopify-shop-domain": SHOP,
        "x-shopify-topic": "orders/paid",
        "x-shopify-event-id": event_id,
    }
    delivery = Delivery(Source.SHOPIFY, event_id, "orders/paid", body, headers=headers)
    inbox.store(delivery, EventStatus.RECEIVED)


def events(runtime: Any) -> dict[str, InboxEvent]:
    with runtime.sessions() as session:
        return {e.event_id: e for e in session.execute(select(InboxEvent)).scalars()}


def invoices(runtime: Any) -> list[dict[str, Any]]:
    with runtime.sessions() as session:
        rows = session.execute(select(OutboxCommand)).scalars()
        return [dict(r.payload) for r in rows if r.kind == "invoice.create"]


def test_a_reverse_charge_sale_waits_for_vies_and_is_refused_on_an_unregistered_number(
    db_url: str,
) -> None:
    now = datetime.now(UTC)
    clock = [now]
    with serve_fake_vies() as vies, runtime_for(db_url) as runtime:
        vies.registered = {"DE136695976"}
        vies.errors = {"DE": "MS_UNAVAILABLE"}
        mapper = MappingEngine.load(settings_for(db_url, vies_url=vies.url), network=True)
        inbox = Inbox(runtime.engine, busy_timeout=2.0)
        store(inbox, "evt-b2b", order(1001, "DE", "DE 136 695 976", "0.00"))
        store(inbox, "evt-unknown", order(1002, "DE", "DE811569869", "0.00"))
        store(inbox, "evt-french", order(1003, "FR", None, "3.97"))  # VIES has no say here
        stage = Stage(runtime.sessions, mapper, clock=lambda: clock[0])

        assert stage.run_once() == 3
        waiting = events(runtime)
        assert waiting["evt-french"].status == "mapped"
        for name in ("evt-b2b", "evt-unknown"):  # Germany's register is down: both wait
            assert waiting[name].status == "received"
            assert "MS_UNAVAILABLE" in (waiting[name].status_reason or "")
        asked = len(vies.seen)
        assert asked == 2

        vies.errors = {}
        clock[0] = now + timedelta(hours=1)
        assert stage.run_once() == 2
        done = events(runtime)
        assert done["evt-b2b"].status == "mapped"
        assert done["evt-unknown"].status == "failed"
        assert "DE811569869 is not registered according to VIES" in (
            done["evt-unknown"].status_reason or ""
        )
        [b2b] = [
            p for p in invoices(runtime) if p.get("vat_exemption") == MENTIONS["intra_eu_goods"]
        ]
        assert {item["vat"] for item in b2b["items"]} == {"0.000"}
        assert len(invoices(runtime)) == 2  # the French sale and the confirmed B2B sale
