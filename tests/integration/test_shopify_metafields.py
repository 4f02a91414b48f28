"""A Shopify customer's VAT number and SIRET from customer metafields, read over real HTTP from a
local Shopify Admin GraphQL API: the look-up itself (a value, a customer or metafield missing, a
5xx to retry, no token or another shop: no call), and a German business order with no note
attribute invoiced without VAT because its customer's metafield holds its VAT number."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from bridge.config import Settings, load_settings
from bridge.db.models import EventStatus, InboxEvent
from bridge.inbound.events import InboundEvent, Source
from bridge.inbound.inbox import Inbox
from bridge.inbound.sources import Delivery
from bridge.mapping.engine import MappingConfigError, MappingEngine, MappingError
from bridge.mapping.files import BUILTIN_DIR
from bridge.mapping.mentions import MENTIONS
from bridge.mapping.shopify_lookup import HttpShopifyLookup, ShopifyLookupError
from bridge.mapping.stage import Stage
from tests.support.fake_shopify import SHOP, TOKEN, FakeShopify, fake_shopify_server
from tests.support.outbox_kit import runtime_for

CUSTOMER = 7102938475610293847
GID = f"gid://shopify/Customer/{CUSTOMER}"
BOTH = {"vat_number": ("custom", "vat_number"), "siret": ("custom", "siret")}


def shopify_settings(url: str, **overrides: Any) -> Settings:
    values = {
        "SHOPIFY_SHOP_DOMAIN": SHOP,
        "SHOPIFY_ADMIN_TOKEN": TOKEN,
        "SHOPIFY_ADMIN_URL": url,
    } | overrides
    return load_settings(**values)


def lookup(fake: FakeShopify, **overrides: Any) -> HttpShopifyLookup:
    made = HttpShopifyLookup.from_settings(shopify_settings(fake.url, **overrides))
    assert made is not None
    return made


def business_order(notes: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A paid order of a German company (goods, shipped), no VAT charged by the shop."""
    where = {"company": "Kerzenhaus Weber GmbH", "last_name": "Weber", "country_code": "DE"}
    item = {"id": 1, "name": "Bougie", "price": "40.00", "quantity": 2, "gift_card": False}
    item |= {"requires_shipping": True, "discount_allocations": [], "tax_lines": []}
    return {
        "id": 820982911946154508,
        "name": "#1042",
        "email": "einkauf@kerzenhaus.example",
        "customer": {"id": CUSTOMER},
        "financial_status": "paid",
        "currency": "EUR",
        "taxes_included": False,
        "processed_at": "2026-11-30T10:00:00+01:00",
        "payment_gateway_names": ["shopify_payments"],
        "billing_address": where,
        "shipping_address": where,
        "note_attributes": notes or [],
        "line_items": [item],
        "shipping_lines": [],
        "total_price": "80.00",
    }


def event(payload: dict[str, Any], shop: str = SHOP) -> InboundEvent:
    headers = {"x-shopify-shop-domain": shop}
    at = datetime(2026, 11, 30, tzinfo=UTC)
    return InboundEvent(Source.SHOPIFY, str(payload["id"]), "orders/paid", payload, at, headers)


def test_the_look_up_reads_both_metafields_in_one_query() -> None:
    with fake_shopify_server() as fake:
        fake.metafields = {GID: {"custom.vat_number": "DE 136 695 976", "custom.siret": "x"}}
        found = lookup(fake).customer_metafields(SHOP.upper(), str(CUSTOMER), BOTH)
    assert found == {"vat_number": "DE 136 695 976", "siret": "x"}
    assert fake.calls == 1
    assert fake.queries == [
        {"id": GID, "ns0": "custom", "key0": "vat_number", "ns1": "custom", "key1": "siret"}
    ]


def test_a_missing_customer_is_null_and_a_missing_metafield_is_null_in_the_answer() -> None:
    with fake_shopify_server() as fake:
        fake.metafields = {GID: {"custom.vat_number": "DE136695976"}}
        shopify = lookup(fake)
        assert shopify.customer_metafields(SHOP, "42", BOTH) is None
        found = shopify.customer_metafields(SHOP, GID, BOTH)
    assert found == {"vat_number": "DE136695976", "siret": None}


def test_a_5xx_or_a_refused_token_is_retried_later() -> None:
    with fake_shopify_server() as fake:
        fake.metafields = {GID: {"custom.vat_number": "DE136695976"}}
        fake.failures = 1
        shopify = lookup(fake)
        with pytest.raises(ShopifyLookupError, match="HTTP 503") as raised:
            shopify.customer_metafields(SHOP, GID, BOTH)
        assert raised.value.retryable is True
        assert fake.calls == 0  # the 503 came before any answer; the next one is answered
        assert shopify.customer_metafields(SHOP, GID, BOTH) == {
            "vat_number": "DE136695976",
            "siret": None,
        }
        with pytest.raises(ShopifyLookupError, match="HTTP 401"):
            lookup(fake, SHOPIFY_ADMIN_TOKEN="shpat_revoked").customer_metafields(SHOP, GID, BOTH)


def test_no_call_for_another_shop_nor_without_a_token() -> None:
    with fake_shopify_server() as fake:
        fake.metafields = {GID: {"custom.vat_number": "DE136695976"}}
        other = lookup(fake).customer_metafields("other-shop.myshopify.com", GID, BOTH)
        assert other is None
        assert (
            HttpShopifyLookup.from_settings(shopify_settings(fake.url, SHOPIFY_ADMIN_TOKEN=""))
            is None
        )
        assert lookup(fake).customer_metafields(SHOP, GID, {}) is None
        mapper = MappingEngine.load(shopify_settings(fake.url, SHOPIFY_ADMIN_TOKEN=""))
        assert mapper.shopify_lookup is None
        with pytest.raises(MappingError, match="no legal reason"):  # no VAT number: refused
            mapper.map_event(event(business_order()))
    assert fake.calls == 0


def test_a_german_business_order_takes_its_vat_number_from_the_metafield() -> None:
    with fake_shopify_server() as fake:
        fake.metafields = {GID: {"custom.vat_number": "de 136 695 976"}}
        outcome = MappingEngine.load(shopify_settings(fake.url)).map_event(event(business_order()))
    commands = {c.kind: c.payload for c in outcome.commands}
    assert commands["customer.ensure"]["vat_number"] == "DE136695976"
    assert commands["customer.ensure"]["individual"] is False
    invoice = commands["invoice.create"]
    assert invoice["vat_exemption"] == MENTIONS["intra_eu_goods"]
    assert {item["vat"] for item in invoice["items"]} == {"0.000"}
    assert fake.calls == 1


def test_a_note_attribute_comes_before_the_metafield() -> None:
    notes = [{"name": "VAT number", "value": "DE811569869"}]
    with fake_shopify_server() as fake:
        fake.metafields = {GID: {"custom.vat_number": "DE136695976", "custom.siret": "1"}}
        outcome = MappingEngine.load(shopify_settings(fake.url)).map_event(
            event(business_order(notes))
        )
    [customer] = [c.payload for c in outcome.commands if c.kind == "customer.ensure"]
    assert customer["vat_number"] == "DE811569869"


def user_mapping(tmp_path: Path, legal_ids: dict[str, Any]) -> Path:
    """The built-in orders/paid mapping with ``legal_ids`` changed, as a user's override."""
    assert BUILTIN_DIR is not None
    data = yaml.safe_load((BUILTIN_DIR / "shopify" / "orders_paid.yaml").read_text("utf-8"))
    data["tables"]["legal_ids"] |= legal_ids
    folder = tmp_path / "shopify"
    folder.mkdir(parents=True)
    (folder / "orders_paid.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return tmp_path


def test_metafields_are_checked_at_load_and_null_reads_none(tmp_path: Path) -> None:
    bad = user_mapping(tmp_path / "bad", {"vat_number_metafield": "vat number"})
    with pytest.raises(MappingConfigError, match="vat_number_metafield: expected a metafield"):
        MappingEngine.load(load_settings(BRIDGE_MAPPINGS_DIR=str(bad)), network=False)
    off = user_mapping(tmp_path / "off", {"vat_number_metafield": None, "siret_metafield": ""})
    with fake_shopify_server() as fake:
        fake.metafields = {GID: {"custom.vat_number": "DE136695976"}}
        mapper = MappingEngine.load(shopify_settings(fake.url, BRIDGE_MAPPINGS_DIR=str(off)))
        with pytest.raises(MappingError, match="no legal reason"):  # no VAT number: refused
            mapper.map_event(event(business_order()))
    assert fake.calls == 0


def test_the_stage_retries_an_order_while_shopify_fails(db_url: str) -> None:
    clock = [datetime.now(UTC)]
    with fake_shopify_server() as fake, runtime_for(db_url) as runtime:
        fake.metafields = {GID: {"custom.vat_number": "DE136695976"}}
        fake.failures = 1
        headers = {"x-shopify-shop-domain": SHOP, "x-shopify-topic": "orders/paid"}
        headers["x-shopify-event-id"] = "evt-1"
        body = json.dumps(business_order()).encode()
        delivery = Delivery(Source.SHOPIFY, "evt-1", "orders/paid", body, headers=headers)
        Inbox(runtime.engine, busy_timeout=2.0).store(delivery, EventStatus.RECEIVED)
        stage = Stage(
            runtime.sessions, MappingEngine.load(shopify_settings(fake.url)), clock=lambda: clock[0]
        )
        assert stage.run_once() == 1
        with runtime.sessions() as session:
            row = session.execute(select(InboxEvent)).scalar_one()
            assert row.status == "received"
            assert "HTTP 503" in (row.status_reason or "")
        clock[0] += timedelta(hours=1)
        assert stage.run_once() == 1
        with runtime.sessions() as session:
            assert session.execute(select(InboxEvent)).scalar_one().status == "mapped"
    assert len(fake.queries) == 1  # the answered query; the 503 was not
