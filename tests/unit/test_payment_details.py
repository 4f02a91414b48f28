"""The payment mode and euro equivalent of Stripe sales, with the payment details looked up over
real HTTP from a local fake Stripe, and without STRIPE_API_KEY (the event alone)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.config import Settings
from bridge.inbound.events import InboundEvent, Source, parse_json
from bridge.mapping.engine import EnrichmentError, MappingEngine
from bridge.mapping.enrichment import StripeObjectMissingError
from bridge.outbox.commands import Command
from tests.support.fake_stripe import API_KEY, FakeStripe, serve_fake_stripe

TESTS = Path(__file__).resolve().parent.parent
SEPA = "stripe_invoice.paid_sepa_debit_endive"
USD = "stripe_invoice.paid_usd_settled_in_eur_endive"
PAYPAL = "stripe_checkout.session.completed_paypal_endive"


def _golden(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((TESTS / "golden" / f"{name}.json").read_text("utf-8"))
    return data


def _invoice(engine: MappingEngine, name: str, **changes: Any) -> Command:
    golden = _golden(name)
    payload = parse_json((TESTS / "golden" / golden["fixture"]).read_bytes())
    payload["data"]["object"].update(changes)
    event = InboundEvent(
        Source.STRIPE, payload["id"], golden["event_type"], payload, datetime.now(UTC)
    )
    commands = engine.map_event(event).commands
    assert [c.kind.value for c in commands] == ["customer.ensure", "invoice.create"]
    return commands[1]


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    stripe = FakeStripe()
    for name in (SEPA, USD, PAYPAL):
        stripe.payment_intents.update(_golden(name)["stripe"]["payment_intents"])
        stripe.line_items.update(_golden(name)["stripe"].get("line_items", {}))
    with serve_fake_stripe(stripe):
        yield stripe


def _engine(fake: FakeStripe) -> MappingEngine:
    return MappingEngine.load(Settings(stripe_api_base=fake.url, stripe_api_key=API_KEY))


def test_the_method_that_paid_gives_the_payment_mode(fake: FakeStripe) -> None:
    engine = _engine(fake)
    sepa = _invoice(engine, SEPA)
    assert sepa.payload["payment_mode"] == 8  # charge_automatically alone would say 2 (card)
    assert "paid_in_main_currency" not in sepa.payload  # a euro invoice
    paypal = _invoice(engine, PAYPAL)
    assert paypal.payload["payment_mode"] == 1  # the session offered card first
    assert "/v1/payment_intents/pi_1Rk3demoSepaDebit00000" in fake.paths


def test_a_foreign_currency_invoice_carries_its_euro_settlement(fake: FakeStripe) -> None:
    usd = _invoice(_engine(fake), USD)
    assert usd.payload["currency"] == "USD"
    assert usd.payload["paid_in_main_currency"] == "110.40"  # the EUR balance transaction
    assert usd.meta["expected_total_with_vat"] == "120.00"  # the invoice stays in dollars


def test_a_settlement_in_another_currency_gives_no_euro_equivalent(fake: FakeStripe) -> None:
    intent = fake.payment_intents["pi_1Rk3demoUsdCard0000000"]
    intent["latest_charge"]["balance_transaction"].update(currency="usd", exchange_rate=None)
    usd = _invoice(_engine(fake), USD)
    assert "paid_in_main_currency" not in usd.payload


def test_an_unknown_method_falls_back_on_the_event(fake: FakeStripe) -> None:
    charge = fake.payment_intents["pi_1Rk3demoSepaDebit00000"]["latest_charge"]
    charge["payment_method_details"] = {"type": "some_new_method", "some_new_method": {}}
    sepa = _invoice(_engine(fake), SEPA, collection_method="send_invoice")
    assert sepa.payload["payment_mode"] == 3  # send_invoice: a transfer, as without the look-up


def test_without_a_stripe_key_the_event_alone_decides() -> None:
    engine = MappingEngine.load(Settings(), network=False)
    assert engine.stripe_api is None
    sepa = _invoice(engine, SEPA)
    assert sepa.payload["payment_mode"] == 2  # charge_automatically
    usd = _invoice(engine, USD)
    assert "paid_in_main_currency" not in usd.payload
    assert usd.meta["expected_total_with_vat"] == "120.00"


def test_a_payment_intent_stripe_does_not_have_fails_the_event(fake: FakeStripe) -> None:
    with pytest.raises(StripeObjectMissingError, match="payment intent pi_gone"):
        _invoice(_engine(fake), USD, payments=None, payment_intent="pi_gone")


def test_stripe_down_retries_the_event(fake: FakeStripe) -> None:
    fake.status = 500
    with pytest.raises(EnrichmentError, match="HTTP 500") as caught:
        _invoice(_engine(fake), SEPA)
    assert caught.value.retryable is True


def test_a_checkout_is_dated_when_it_was_paid(fake: FakeStripe) -> None:
    paypal = _invoice(_engine(fake), PAYPAL)
    # session opened 2026-11-14 at 23:50 in Paris, paid (the event) at 00:20 on the 15th
    assert paypal.payload["invoiced_on"] == paypal.payload["paid_on"] == "2026-11-15"


def test_an_invoice_that_names_no_payment_is_looked_up_by_its_payments(fake: FakeStripe) -> None:
    """Webhooks of current versions include neither ``payments`` nor ``payment_intent``: the
    intent is found by listing the invoice's payments (``GET /v1/invoice_payments?invoice=``)."""
    golden = _golden(SEPA)
    fixture = parse_json((TESTS / "golden" / golden["fixture"]).read_bytes())
    invoice_id = fixture["data"]["object"]["id"]
    [intent] = golden["stripe"]["payment_intents"]
    fake.invoices_by_payment_intent[intent] = invoice_id
    sepa = _invoice(_engine(fake), SEPA, payments=None, payment_intent=None)
    assert sepa.payload["payment_mode"] == 8
    assert f"/v1/payment_intents/{intent}" in fake.paths
    assert "/v1/invoice_payments" in fake.paths
