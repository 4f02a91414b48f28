"""The typical test sale (``stripe_sale``, ``stripe_event``) is a French consumer's, VAT 20 % included,
and the built-in mapping makes it an invoice at 20 % for exactly the amount paid."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bridge.config import Settings
from bridge.facturation.totals import compute_totals
from bridge.inbound.events import InboundEvent, Source, parse_json
from bridge.mapping.engine import MappingEngine
from bridge.outbox.commands import Command
from tests.support.bridge_procs import stripe_sale
from tests.support.stripe_shapes import french_vat_included, vat_included
from tests.support.webhooks import fixture_bytes, stripe_event


def _map(body: bytes) -> list[Command]:
    payload = parse_json(body)
    event = InboundEvent(Source.STRIPE, payload["id"], payload["type"], payload, datetime.now(UTC))
    return MappingEngine.load(Settings(), network=False).map_event(event).commands


@pytest.mark.parametrize(
    ("cents", "tax"), [(2000, 333), (1999, 333), (4990, 832), (12_345, 2057), (250_000, 41_667)]
)
def test_the_vat_inside_an_amount_is_a_sixth_rounded_half_up(cents: int, tax: int) -> None:
    assert vat_included(cents) == tax
    assert Decimal(cents - tax) == (Decimal(cents) / Decimal("1.2")).quantize(
        Decimal(1), "ROUND_HALF_UP"
    )


def test_the_invoice_keeps_its_amounts_and_gains_the_current_tax_shape() -> None:
    raw = json.loads(fixture_bytes("stripe/event_invoice.paid.json"))["data"]["object"]
    made = french_vat_included(raw)
    assert raw["customer_address"] is None  # the input is left as it was
    assert (made["total"], made["amount_paid"], made["subtotal"]) == (2000, 2000, 2000)
    assert made["customer_address"]["country"] == "FR"
    [line] = made["lines"]["data"]
    assert line["amount"] == 2000
    assert "tax_amounts" not in line
    assert "total_tax_amounts" not in made
    assert (
        line["taxes"]
        == made["total_taxes"]
        == [
            {
                "amount": 333,
                "tax_behavior": "inclusive",
                "tax_rate_details": {"tax_rate": "txr_test_fr_tva_20_inclusive"},
                "taxability_reason": "standard_rated",
                "taxable_amount": 1667,
                "type": "tax_rate_details",
            }
        ]
    )
    assert (made["total_excluding_tax"], made["subtotal_excluding_tax"]) == (1667, 1667)


@pytest.mark.parametrize("cents", [100, 1999, 4990, 12_345, 250_000])
def test_a_test_sale_maps_to_a_french_invoice_at_20_percent_for_what_was_paid(cents: int) -> None:
    customer, invoice = _map(stripe_sale(7, "cus_fr", cents).body)
    assert customer.payload["country"] == "FR"
    assert "vat_exemption" not in invoice.payload
    totals = compute_totals(invoice.payload["items"])
    assert totals.total_with_vat == Decimal(cents) / 100
    assert totals.vat_by_rate[Decimal("0.200")] == Decimal(vat_included(cents)) / 100
    assert invoice.payload["items"][0]["vat"] == "0.200"


def test_the_generic_stripe_event_is_a_french_sale_of_20_eur() -> None:
    _customer, invoice = _map(stripe_event())
    assert invoice.payload["currency"] == "EUR"
    assert invoice.payload["items"] == [
        {
            "title": "(created by Stripe CLI)",
            "quantity": "1",
            "unit_price": "16.670",
            "vat": "0.200",
        }
    ]
    assert invoice.meta["expected_total_with_vat"] == "20.00"
