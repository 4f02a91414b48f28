"""A mapping that fails on a value names the field being built and where the value was read.

Input payload -> the exact error the event keeps (tests/integration/test_stage.py checks that it
lands on the inbox row).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.config import Settings
from bridge.inbound.events import InboundEvent, Source, parse_json
from bridge.mapping.engine import MappingEngine, MappingError
from tests.support.stripe_shapes import french_vat_included

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
INVOICE_PAID = "mappings/stripe/invoice.paid.yaml"
ORDERS_PAID = "mappings/shopify/orders_paid.yaml"


@pytest.fixture(scope="module")
def mapper() -> MappingEngine:
    """The fixtures' untaxed sales get an exemption mention rather than a refusal: these tests
    are about what a bad value's error says."""
    settings = Settings(BRIDGE_ZERO_VAT_MENTION="Exonération de TVA, art. 261 du CGI")
    return MappingEngine.load(settings, network=False)


def stripe_invoice(lines: int = 3) -> dict[str, Any]:
    """The fixture's paid invoice with its one line repeated ``lines`` times (totals kept right),
    paid by a French consumer, VAT 20 % included."""
    event: dict[str, Any] = parse_json(
        (FIXTURES / "stripe" / "event_invoice.paid.json").read_bytes()
    )
    invoice = event["data"]["object"]
    line = invoice["lines"]["data"][0]
    invoice["lines"]["data"] = [{**copy.deepcopy(line), "id": f"il_{i}"} for i in range(lines)]
    invoice["total"] = invoice["subtotal"] = line["amount"] * lines
    event["data"]["object"] = french_vat_included(invoice)
    return event


def shopify_order() -> dict[str, Any]:
    path = FIXTURES / "authored" / "shopify_orders_paid_fr_taxes_included.json"
    order: dict[str, Any] = parse_json(path.read_bytes())
    return order


def fails_with(mapper: MappingEngine, event: InboundEvent) -> str:
    with pytest.raises(MappingError) as info:
        mapper.map_event(event)
    return str(info.value)


def stripe(payload: dict[str, Any]) -> InboundEvent:
    return InboundEvent(Source.STRIPE, payload["id"], "invoice.paid", payload, datetime.now(UTC))


def shopify(order: dict[str, Any]) -> InboundEvent:
    headers = {"x-shopify-shop-domain": "s.myshopify.com"}
    return InboundEvent(Source.SHOPIFY, "1", "orders/paid", order, datetime.now(UTC), headers)


def test_the_fixture_itself_maps(mapper: MappingEngine) -> None:
    assert len(mapper.map_event(stripe(stripe_invoice())).commands) == 2
    assert len(mapper.map_event(shopify(shopify_order())).commands) == 2


def test_a_missing_line_amount_names_the_line_field_and_its_path(mapper: MappingEngine) -> None:
    payload = stripe_invoice()
    payload["data"]["object"]["lines"]["data"][2]["amount"] = None
    assert fails_with(mapper, stripe(payload)).endswith(
        f"{INVOICE_PAID}: lines[2].unit_price: expected an amount at "
        "data.object.lines.data[2].amount, got None"
    )


def test_a_float_amount_names_what_was_expected(mapper: MappingEngine) -> None:
    payload = stripe_invoice()
    payload["data"]["object"]["lines"]["data"][1]["amount"] = 19.99
    assert fails_with(mapper, stripe(payload)).endswith(
        f"{INVOICE_PAID}: lines[1].unit_price: expected minor units (an integer) at "
        "data.object.lines.data[1].amount, got 19.99"
    )


def test_a_missing_total_names_the_charged_amount(mapper: MappingEngine) -> None:
    payload = stripe_invoice()
    del payload["data"]["object"]["total"]
    assert fails_with(mapper, stripe(payload)).endswith(
        f"{INVOICE_PAID}: charged: expected an amount at data.object.total, got None"
    )


def test_a_bad_date_names_the_invoice_field(mapper: MappingEngine) -> None:
    payload = stripe_invoice()
    payload["data"]["object"]["status_transitions"]["paid_at"] = "yesterday"
    assert fails_with(mapper, stripe(payload)).endswith(
        f"{INVOICE_PAID}: invoice.invoiced_on: expected an ISO 8601 date-time at "
        "data.object.status_transitions.paid_at, got 'yesterday'"
    )


def test_a_filtered_line_list_names_the_item_where_it_is_in_the_order(
    mapper: MappingEngine,
) -> None:
    order = shopify_order()
    order["line_items"][0]["gift_card"] = True  # left out: the second item is invoice line 0
    order["line_items"][1]["price_set"]["presentment_money"]["amount"] = "19,99"
    assert fails_with(mapper, shopify(order)).endswith(
        f"{ORDERS_PAID}: lines[0].unit_price: expected a decimal at "
        "line_items[1].price_set.presentment_money.amount, got '19,99'"
    )


def test_a_bad_tax_rate_names_the_line_vat(mapper: MappingEngine) -> None:
    order = shopify_order()
    order["line_items"][1]["tax_lines"][0]["rate"] = "vingt"
    message = fails_with(mapper, shopify(order))
    assert message.endswith(
        f"{ORDERS_PAID}: lines[1].vat: expected a decimal at line_items[1].tax_lines[0].rate, "
        "got 'vingt'"
    ), message
