"""The engine: file validation, user overrides, keys and policies, Stripe look-ups over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.config import Settings
from bridge.inbound.events import InboundEvent, Source, parse_json
from bridge.mapping.engine import (
    EnrichmentError,
    MappingConfigError,
    MappingEngine,
    MappingError,
)
from bridge.mapping.samples import FixedStripeApi
from bridge.outbox.commands import CommandKind
from tests.support.fake_stripe import FakeStripe, serve_fake_stripe
from tests.support.procs import free_port

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RENEWAL = FIXTURES / "authored" / "stripe_invoice.paid_renewal_taxes_included.json"
CHECKOUT = FIXTURES / "stripe" / "event_checkout.session.completed.json"


def stripe_event(payload: dict[str, Any], event_type: str | None = None) -> InboundEvent:
    kind = event_type or payload["type"]
    return InboundEvent(Source.STRIPE, payload["id"], kind, payload, datetime.now(UTC))


def renewal() -> dict[str, Any]:
    payload: dict[str, Any] = parse_json(RENEWAL.read_bytes())
    return payload


@pytest.fixture
def mapper() -> MappingEngine:
    return MappingEngine.load(Settings(), network=False)


def user_dir(tmp_path: Path, source: str, name: str, text: str) -> Path:
    folder = tmp_path / source
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return tmp_path


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("kind: sale\ncolour: red\n", "colour", "unknown key"),
        ("kind: invoice\n", "kind", "must be one of"),
        ("kind: refund\nkey: \"fmt('x:{}', o.id)\"\n", "invoice_key", "is required"),
        ("kind: refund\nkey: \"o.id[\"\ninvoice_key: o.id\n", "key", "invalid expression"),
        ("kind: refund\nkey: \"nope(o.id)\"\ninvoice_key: o.id\n", "key", "unknown function"),
        ("kind: refund\nkey: o.id\ninvoice_key: o.id\nskip: [{if: o.x}]\n", "skip[0]", "'reason'"),
        ("kind: refund\nkey: o.id\ninvoice_key: o.id\npolicy: {skip_zero: 3}\n", "policy.skip_zero", "true or false"),
        ("kind: [unclosed\n", "", "cannot read"),
    ],
)  # fmt: skip
def test_invalid_files_name_the_file_the_key_and_the_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    folder = user_dir(tmp_path, "stripe", "charge.refunded.yaml", text)
    with pytest.raises(MappingConfigError) as info:
        MappingEngine.load(Settings(mappings_dir=folder), network=False)
    message = str(info.value)
    assert "charge.refunded.yaml" in message
    assert f": {key}" in message or not key
    assert problem in message


def test_a_missing_user_directory_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(MappingConfigError, match="BRIDGE_MAPPINGS_DIR"):
        MappingEngine.load(Settings(mappings_dir=tmp_path / "absent"), network=False)


def test_a_user_file_overrides_one_builtin_and_leaves_the_others(tmp_path: Path) -> None:
    builtin = (Path(__file__).parents[2] / "mappings/stripe/invoice.paid.yaml").read_text()
    custom = builtin.replace(
        "title: \"fmt('Facture Stripe {}', o.number || o.id)\"",
        "title: \"fmt('Abonnement Tempo — {}', o.number)\"",
    )
    assert custom != builtin
    folder = user_dir(tmp_path, "stripe", "invoice.paid.yaml", custom)
    mapper = MappingEngine.load(Settings(mappings_dir=folder), network=False)
    invoice = mapper.map_event(stripe_event(renewal())).commands[1]
    assert invoice.payload["title"] == "Abonnement Tempo — DEMO-0007"
    # invoice.payment_succeeded "uses" invoice.paid: the user's file, found by name.
    same = mapper.map_event(stripe_event(renewal(), "invoice.payment_succeeded")).commands[1]
    assert same.payload["title"] == "Abonnement Tempo — DEMO-0007"
    assert mapper.handles("shopify", "orders/paid")
    assert mapper.files[("shopify", "orders_paid")].parent.parent.name == "mappings"


# -- keys and policies -----------------------------------------------------------------------------


def test_the_renewal_is_exact_and_keyed_on_the_invoice(mapper: MappingEngine) -> None:
    customer, invoice = mapper.map_event(stripe_event(renewal())).commands
    assert customer.kind is CommandKind.ENSURE_CUSTOMER
    assert customer.key == "customer:stripe:cus_1Rk2demoCustomer"
    assert customer.meta == {"binding_key": "stripe:cus_1Rk2demoCustomer"}
    assert invoice.key == "stripe:invoice:in_1Rk2demoRenewal0000000000"
    assert invoice.refs == {"customer_id": customer.key}
    assert invoice.payload["items"] == [
        {
            "title": "1 \u00d7 Abonnement Pro (at \u20ac39.00 / month)",
            "quantity": "1",
            "unit_price": "32.500",
            "vat": "0.200",
        }
    ]
    assert "total" not in invoice.payload
    assert "api_id" not in invoice.payload
    assert invoice.meta == {"expected_total_with_vat": "39.00", "currency": "EUR"}


def test_zero_amount_invoices_are_skipped_with_the_reason(mapper: MappingEngine) -> None:
    payload = renewal()
    obj = payload["data"]["object"]
    obj["total"] = 0
    obj["lines"]["data"][0].update(amount=0, taxes=[])
    outcome = mapper.map_event(stripe_event(payload))
    assert outcome.commands == []
    assert outcome.skipped is not None
    assert "zero-amount" in outcome.skipped


def test_eu_business_outside_france_gets_reverse_charge(mapper: MappingEngine) -> None:
    payload = renewal()
    obj = payload["data"]["object"]
    obj["customer_address"]["country"] = "DE"
    obj["customer_tax_ids"] = [{"type": "eu_vat", "value": "DE123456789"}]
    obj["customer_name"] = "Berlin GmbH"
    obj["lines"]["data"][0]["taxes"] = []
    customer, legal, invoice = mapper.map_event(stripe_event(payload)).commands
    assert customer.payload["company_name"] == "Berlin GmbH"
    assert customer.payload["vat_number"] == "DE123456789"
    assert customer.payload["individual"] is False
    # a returning customer's record gets the number too, before the invoice that needs it
    assert legal.kind is CommandKind.UPDATE_CUSTOMER
    assert legal.payload == {
        "company_name": "Berlin GmbH",
        "vat_number": "DE123456789",
        "country": "DE",
        "individual": False,
    }
    assert legal.key in invoice.dependency_keys()
    assert invoice.payload["vat_exemption"].startswith("Autoliquidation")
    assert invoice.payload["items"][0]["vat"] == "0.000"
    # VAT charged to such a customer is a contradiction: said, not invoiced.
    obj["lines"]["data"][0]["taxes"] = renewal()["data"]["object"]["lines"]["data"][0]["taxes"]
    with pytest.raises(MappingError, match="reverse charge"):
        mapper.map_event(stripe_event(payload))


def test_a_bad_payload_is_a_mapping_error_naming_the_expression(mapper: MappingEngine) -> None:
    payload = renewal()
    payload["data"]["object"]["lines"]["data"][0]["amount"] = "a lot"
    with pytest.raises(MappingError, match=r"invoice\.paid\.yaml"):
        mapper.map_event(stripe_event(payload))
    with pytest.raises(MappingError, match="object"):
        mapper.map_event(stripe_event({"id": "evt", "type": "invoice.paid", "data": {}}))


def test_full_refund_of_an_invoice_payment_is_a_full_credit_note(mapper: MappingEngine) -> None:
    payload = parse_json((FIXTURES / "stripe" / "event_charge.refunded.json").read_bytes())
    payload["data"]["object"]["invoice"] = "in_42"
    (command,) = mapper.map_event(stripe_event(payload)).commands
    assert command.kind is CommandKind.FULL_CREDIT_NOTE
    assert command.key == "stripe:refund:re_000000000000000000000000"
    assert command.refs == {"invoice_id": "stripe:invoice:in_42"}


def test_partial_refunds_are_credited_like_the_sale(mapper: MappingEngine) -> None:
    """A partial refund of a Stripe invoice (Refunds API, Dashboard) or of a Checkout payment is a
    credit note for the amount given back, its lines split like the sale's when it is sent."""
    payload = parse_json((FIXTURES / "stripe" / "event_charge.refunded.json").read_bytes())
    charge = payload["data"]["object"]
    charge["refunds"]["data"][0]["amount"] = 40
    charge.update(refunded=False, amount_refunded=40, invoice="in_42")
    (command,) = mapper.map_event(stripe_event(payload)).commands
    assert command.kind is CommandKind.PARTIAL_CREDIT_NOTE
    assert command.key == "stripe:refund:re_000000000000000000000000"
    assert command.meta["split_of"] == command.meta["credit_of"] == "stripe:invoice:in_42"
    assert command.meta["refunded"] == "0.40"
    assert command.meta["expected_total_with_vat"] == "-0.40"
    assert "items" not in command.payload
    charge.update(invoice=None, payment_intent="pi_1")
    mapper.stripe_api = FixedStripeApi(sessions_by_payment_intent={"pi_1": "cs_1"})
    try:
        (command,) = mapper.map_event(stripe_event(payload)).commands
    finally:
        mapper.stripe_api = None
    assert command.meta["split_of"] == "stripe:checkout:cs_1"


def test_subscription_checkouts_are_invoiced_by_their_invoice(mapper: MappingEngine) -> None:
    payload = parse_json(CHECKOUT.read_bytes())
    payload["data"]["object"]["mode"] = "subscription"
    outcome = mapper.map_event(stripe_event(payload))
    assert outcome.commands == []
    assert outcome.skipped is not None
    assert "invoice.paid" in outcome.skipped


def test_shopify_guest_is_bound_by_a_hash_of_the_email(mapper: MappingEngine) -> None:
    path = FIXTURES / "authored" / "shopify_orders_paid_fr_taxes_included.json"
    order = parse_json(path.read_bytes())
    order["customer"] = None
    event = InboundEvent(
        Source.SHOPIFY, "1", "orders/paid", order, datetime.now(UTC),
        {"x-shopify-shop-domain": "s.myshopify.com"},
    )  # fmt: skip
    customer = mapper.map_event(event).commands[0]
    assert customer.key.startswith("customer:shopify:s.myshopify.com:email:")
    assert "hugo" not in customer.key
    no_shop = InboundEvent(Source.SHOPIFY, "1", "orders/paid", order, datetime.now(UTC))
    with pytest.raises(MappingError, match="X-Shopify-Shop-Domain"):
        mapper.map_event(no_shop)


def test_customer_updates_are_keyed_on_their_content(mapper: MappingEngine) -> None:
    payload = parse_json((FIXTURES / "stripe" / "event_customer.updated.json").read_bytes())
    payload["data"]["object"].update(name="Ada Lovelace", email="ada@example.org")
    (first,) = mapper.map_event(stripe_event(payload)).commands
    payload["data"]["object"]["email"] = "ada@example.net"
    (second,) = mapper.map_event(stripe_event(payload)).commands
    assert first.kind is CommandKind.UPDATE_CUSTOMER
    assert first.key.startswith("customer-update:stripe:cus_00000000000000:")
    assert first.key != second.key
    assert "individual" not in first.payload


def test_unknown_event_types_are_skipped(mapper: MappingEngine) -> None:
    assert not mapper.handles("stripe", "invoice.created")
    outcome = mapper.map_event(stripe_event({"id": "e", "type": "invoice.created", "data": {}}))
    assert outcome.skipped == "no mapping for stripe invoice.created"


# -- Stripe look-ups over real HTTP ----------------------------------------------------------------


ITEM = {
    "id": "li_1", "object": "item", "description": "Affiche A2", "quantity": 3,
    "amount_subtotal": 1000, "amount_total": 1000, "amount_tax": 0, "currency": "usd", "taxes": [],
}  # fmt: skip


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    mug = {**ITEM, "id": "li_2", "description": "Mug", "quantity": 2}
    mug.update(amount_subtotal=2000, amount_total=2000)
    session = parse_json(CHECKOUT.read_bytes())["data"]["object"]
    paid_by = {"type": "link", "link": {"country": "FR"}}  # not the card the session offered
    fake = FakeStripe(
        line_items={session["id"]: [ITEM, mug]},
        sessions_by_payment_intent={"pi_1": "cs_found"},
        payment_intents={
            session["payment_intent"]: {
                "id": session["payment_intent"], "object": "payment_intent",
                "latest_charge": {"id": "ch_1", "payment_method_details": paid_by},
            }
        },
        page_size=1,
    )  # fmt: skip
    with serve_fake_stripe(fake):
        yield fake


def test_checkout_line_items_are_fetched_while_mapping(fake_stripe: FakeStripe) -> None:
    settings = Settings(
        stripe_api_base=fake_stripe.url,
        stripe_api_key="sk_test_fake",
        zero_vat_mention="Exonération de TVA, art. 261 du CGI",  # the fake's lines carry no tax
    )
    mapper = MappingEngine.load(settings)
    payload = parse_json(CHECKOUT.read_bytes())
    _customer, invoice = mapper.map_event(stripe_event(payload)).commands
    session = payload["data"]["object"]["id"]
    assert fake_stripe.paths == [f"/v1/checkout/sessions/{session}/line_items"] * 2 + [
        f"/v1/payment_intents/{payload['data']['object']['payment_intent']}"
    ]
    assert invoice.payload["payment_mode"] == 2  # link: a saved card
    assert [(i["title"], i["quantity"]) for i in invoice.payload["items"]] == [
        ("Affiche A2", "3"),
        ("Mug", "2"),
    ]
    assert invoice.meta["expected_total_with_vat"] == "30.00"
    assert invoice.key == f"stripe:checkout:{session}"

    refund = parse_json((FIXTURES / "stripe" / "event_charge.refunded.json").read_bytes())
    refund["data"]["object"]["payment_intent"] = "pi_1"
    (command,) = mapper.map_event(stripe_event(refund)).commands
    assert command.refs == {"invoice_id": "stripe:checkout:cs_found"}


def test_stripe_unreachable_is_a_retryable_enrichment_error(fake_stripe: FakeStripe) -> None:
    payload = parse_json(CHECKOUT.read_bytes())
    wrong_key = Settings(stripe_api_base=fake_stripe.url, stripe_api_key="sk_wrong")
    with pytest.raises(EnrichmentError, match="HTTP 401"):
        MappingEngine.load(wrong_key).map_event(stripe_event(payload))
    down = Settings(stripe_api_base=f"http://127.0.0.1:{free_port()}", stripe_api_key="sk_x")
    with pytest.raises(EnrichmentError, match="APIConnectionError"):
        MappingEngine.load(down).map_event(stripe_event(payload))


def test_without_a_stripe_key_lookups_fail_the_event_clearly(mapper: MappingEngine) -> None:
    with pytest.raises(MappingError, match="STRIPE_API_KEY"):
        mapper.map_event(stripe_event(parse_json(CHECKOUT.read_bytes())))


def test_send_email_policy_adds_an_email_after_the_invoice(tmp_path: Path) -> None:
    builtin = (Path(__file__).parents[2] / "mappings/stripe/invoice.paid.yaml").read_text()
    custom = builtin.replace("  skip_zero: true\n", "  skip_zero: true\n  send_email: true\n")
    assert custom != builtin
    folder = user_dir(tmp_path, "stripe", "invoice.paid.yaml", custom)
    mapper = MappingEngine.load(Settings(mappings_dir=folder), network=False)
    _customer, invoice, email = mapper.map_event(stripe_event(renewal())).commands
    assert email.kind is CommandKind.SEND_EMAIL
    assert email.key == f"email:{invoice.key}"
    assert email.refs == {"bill_id": invoice.key}


def test_an_update_with_proration_lines_is_exact(mapper: MappingEngine) -> None:
    payload = renewal()
    obj = payload["data"]["object"]
    obj["billing_reason"] = "subscription_update"
    first = obj["lines"]["data"][0]
    unused = {
        **first,
        "id": "il_unused",
        "description": "Temps non utilisé sur Abonnement Pro",
        "amount": -1950,
        "taxes": [{**first["taxes"][0], "amount": -325, "taxable_amount": -1625}],
    }
    obj["lines"]["data"].append(unused)
    obj["total"] = 1950
    invoice = mapper.map_event(stripe_event(payload)).commands[1]
    prices = [item["unit_price"] for item in invoice.payload["items"]]
    assert prices == ["32.500", "-16.250"]
    assert invoice.meta["expected_total_with_vat"] == "19.50"


def test_rules_follow_jmespath_truth() -> None:
    from bridge.mapping.engine import _truthy

    assert _truthy(0)
    assert _truthy("x")
    assert not _truthy(False)
    assert not _truthy([])
    assert not _truthy("")
    assert not _truthy(None)
