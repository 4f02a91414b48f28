"""VAT cases delivered to the sandbox, on SQLite and PostgreSQL: an OSS sale to a German consumer is
invoiced at 19 % with ``vat_country`` DE, and its refund's credit note takes the invoice's VAT country
(the sandbox refuses 19 % without it); a reverse-charge sale to a German business carries the
customer's VAT number and its mention, and its credit note the same mention."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bridge.config import Settings
from bridge.inbound.events import InboundEvent, Source
from bridge.mapping.engine import MappingEngine
from bridge.mapping.mentions import MENTIONS
from tests.support.fake_api import FakeApi
from tests.support.outbox_kit import Clock, drain, put, runtime_for, worker_for
from tests.support.sandbox import in_process_client, new_sandbox
from tests.support.shopify_traffic import candle_order

SHOP = "maison-colombe.myshopify.com"
REFUND = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "authored"
    / "shopify_refunds_create_fr_shipping_lines_2025_10.json"
)
ORDER_ID = 5902918374650192837


def order(
    address: dict[str, Any], rate: str, tax: str, notes: list[dict[str, str]]
) -> dict[str, Any]:
    """Two candles at 23.80 including ``tax`` each, shipped to ``address``."""
    return candle_order(ORDER_ID, address, quantity=2, rate=rate, tax=tax, notes=tuple(notes))


def refund(rate: str, tax: str) -> dict[str, Any]:
    """One candle given back (23.80 including ``tax``), no shipping."""
    body: dict[str, Any] = copy.deepcopy(json.loads(REFUND.read_text(encoding="utf-8")))
    body["refund_shipping_lines"] = []
    item = body["refund_line_items"][0]
    net = Decimal("23.80") - Decimal(tax or "0")
    item.update(subtotal=net, total_tax=Decimal(tax or "0"))  # JSON numbers, read exactly
    item["subtotal_set"] = {"shop_money": {"amount": str(net), "currency_code": "EUR"}}
    item["total_tax_set"] = {"shop_money": {"amount": tax or "0.00", "currency_code": "EUR"}}
    item["line_item"].update(
        price="23.80",
        tax_lines=[{"price": str(Decimal(tax) * 2), "rate": rate}] if tax else [],
    )
    body["transactions"][0]["amount"] = "23.80"
    return body


def shopify(topic: str, body: dict[str, Any]) -> InboundEvent:
    headers = {"x-shopify-shop-domain": SHOP}
    return InboundEvent(Source.SHOPIFY, topic, topic, body, datetime.now(UTC), headers)


def delivered(db_url: str, sale: dict[str, Any], given_back: dict[str, Any]) -> dict[str, Any]:
    engine = MappingEngine.load(Settings(), network=False)
    commands = [
        *engine.map_event(shopify("orders/paid", sale)).commands,
        *engine.map_event(shopify("refunds/create", given_back)).commands,
    ]
    clock, sandbox = Clock(), new_sandbox()
    with runtime_for(db_url, shape_confirmations=20) as runtime:
        put(runtime, commands, clock())
        with in_process_client(sandbox) as api:
            drain(worker_for(runtime, api, clock), clock)
    return sandbox.ledger()


def documents(ledger: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    invoices = sorted(ledger["invoices"], key=lambda i: Decimal(i["total_with_vat"]))
    credit, invoice = invoices
    assert invoice["draft"] is False
    assert credit["draft"] is False
    return invoice, credit


def vat_of(document: dict[str, Any]) -> Decimal:
    return Decimal(document["total_with_vat"]) - Decimal(document["total"])


def test_an_oss_sale_and_its_refund_are_german_vat(db_url: str) -> None:
    berlin = {"first_name": "Jonas", "last_name": "Weber", "country_code": "DE", "city": "Berlin"}
    ledger = delivered(db_url, order(berlin, "0.19", "3.80", []), refund("0.19", "3.80"))
    invoice, credit = documents(ledger)
    assert invoice["vat_country"] == "DE"
    assert {item["vat"] for item in invoice["items"]} == {"0.190"}
    assert Decimal(invoice["total_with_vat"]) == Decimal("47.60")
    assert vat_of(invoice) == Decimal("7.60")
    assert credit["vat_country"] == "DE"
    assert Decimal(credit["total_with_vat"]) == Decimal("-23.80")
    assert vat_of(credit) == Decimal("-3.80")
    assert not invoice.get("vat_exemption")


def test_a_reverse_charge_sale_carries_the_vat_number_and_its_mention(db_url: str) -> None:
    company = {
        "company": "Kerzenhaus Weber GmbH",
        "last_name": "Weber",
        "country_code": "DE",
        "city": "Berlin",
    }
    notes = [{"name": "VAT number", "value": "de 136 695 976"}]
    ledger = delivered(db_url, order(company, "0", "", notes), refund("0", ""))
    invoice, credit = documents(ledger)
    [customer] = ledger["customers"]
    assert customer["vat_number"] == "DE136695976"
    assert customer["individual"] is False
    assert invoice["vat_exemption"] == MENTIONS["intra_eu_goods"]
    assert credit["vat_exemption"] == MENTIONS["intra_eu_goods"]
    assert {item["vat"] for item in invoice["items"]} == {"0.000"}
    assert Decimal(invoice["total_with_vat"]) == Decimal("47.60")
    assert Decimal(credit["total_with_vat"]) == Decimal("-23.80")


def test_a_credit_note_keeps_the_vat_country_sent_when_the_answer_does_not_echo_it(
    db_url: str,
) -> None:
    """The reference's example answers show no ``vat_country``: what was sent is kept."""
    berlin = {"first_name": "Jonas", "last_name": "Weber", "country_code": "DE", "city": "Berlin"}
    engine = MappingEngine.load(Settings(), network=False)
    commands = [
        *engine.map_event(shopify("orders/paid", order(berlin, "0.19", "3.80", []))).commands,
        *engine.map_event(shopify("refunds/create", refund("0.19", "3.80"))).commands,
    ]
    clock, api = Clock(), FakeApi(unechoed=("vat_country", "vat_exemption"))
    with runtime_for(db_url) as runtime:
        put(runtime, commands, clock())
        drain(worker_for(runtime, api, clock), clock)
    invoice, credit = sorted(api.invoices.values(), key=lambda i: Decimal(i["total_with_vat"]))[
        ::-1
    ]
    assert invoice["vat_country"] == "DE"
    assert credit["vat_country"] == "DE"
    assert Decimal(credit["total_with_vat"]) == Decimal("-23.80")
