"""A Stripe sale's rates, recognised from the VAT charged, are one country's when the amounts allow."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.config import Settings
from bridge.inbound.events import InboundEvent, Source
from bridge.mapping.engine import MappingEngine
from bridge.outbox.commands import CommandKind


def invoice(country: str, lines: list[tuple[int, int]]) -> InboundEvent:
    """A Stripe invoice to a consumer in ``country``; each line (net, VAT) in cents, VAT on top."""
    obj: dict[str, Any] = {
        "id": "in_1Consistent00000000000000",
        "object": "invoice",
        "status": "paid",
        "currency": "eur",
        "customer": "cus_Consistent0000",
        "customer_email": "kunde@example.de",
        "customer_name": "Jonas Weber",
        "customer_address": {"country": country},
        "customer_tax_ids": [],
        "collection_method": "charge_automatically",
        "status_transitions": {"paid_at": 1_796_000_000},
        "total": sum(net + tax for net, tax in lines),
        "lines": {
            "data": [
                {
                    "id": f"il_{i}",
                    "description": f"Article {i}",
                    "amount": net,
                    "quantity": 1,
                    "discount_amounts": [],
                    "taxes": [{"amount": tax, "taxable_amount": net, "tax_behavior": "exclusive"}],
                }
                for i, (net, tax) in enumerate(lines)
            ]
        },
    }
    payload = {"id": "evt_c", "type": "invoice.paid", "data": {"object": obj}}
    return InboundEvent(Source.STRIPE, "evt_c", "invoice.paid", payload, datetime.now(UTC))


@pytest.fixture(scope="module")
def engine() -> MappingEngine:
    return MappingEngine.load(Settings(), network=False)


def sale(engine: MappingEngine, event: InboundEvent) -> dict[str, Any]:
    commands = engine.map_event(event).commands
    return next(c.payload for c in commands if c.kind is CommandKind.CREATE_INVOICE)


def test_a_small_line_that_fits_19_and_20_percent_follows_the_rest_of_a_german_sale(
    engine: MappingEngine,
) -> None:
    # 0.16 on 0.82 is 19 % (0.1558) and 20 % (0.164); 1.90 on 10.00 is only 19 %
    payload = sale(engine, invoice("DE", [(82, 16), (1000, 190)]))
    assert payload["vat_country"] == "DE"
    assert {item["vat"] for item in payload["items"]} == {"0.190"}


def test_a_french_sale_to_a_german_consumer_stays_french_vat(engine: MappingEngine) -> None:
    payload = sale(engine, invoice("DE", [(82, 16), (1000, 200)]))
    assert "vat_country" not in payload
    assert {item["vat"] for item in payload["items"]} == {"0.200"}
