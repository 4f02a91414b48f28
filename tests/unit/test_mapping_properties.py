"""Property tests: whatever the order, the invoice equals to the cent what was charged.

Orders and invoices are generated the way Shopify and Stripe compute them (tax per line, rounded
in the currency's unit; inclusive or exclusive prices; line and order discounts; shipping; EUR,
USD and JPY), then mapped by the built-in mapping files. Facturation.pro's totals
(``compute_totals``) must equal the amount charged, and a partial refund's credit note must equal
the amount refunded and its VAT the VAT refunded, in every example.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bridge.config import Settings
from bridge.facturation.totals import compute_totals
from bridge.inbound.events import InboundEvent, Source
from bridge.mapping.engine import MappingEngine
from bridge.mapping.money import ROUNDING_TITLE, VAT_GAP_TITLE
from bridge.outbox.commands import CommandKind

RATES = [Decimal("0.2"), Decimal("0.1"), Decimal("0.055"), Decimal("0.021"), Decimal("0")]
CURRENCIES = {"EUR": 2, "USD": 2, "JPY": 0}
SHOP = "prop.myshopify.com"
EXAMPLES = settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def mapper() -> MappingEngine:
    """Exactness only: orders with every line at 0 % get a mention instead of being refused
    (what each case prints, and the refusal, are tests/unit/test_tax_properties.py's)."""
    settings = Settings(BRIDGE_ZERO_VAT_MENTION="Exonération de TVA, art. 261 du CGI")
    return MappingEngine.load(settings, network=False)


def unit(exponent: int) -> Decimal:
    return Decimal(1).scaleb(-exponent)


def rnd(value: Decimal, exponent: int) -> Decimal:
    return value.quantize(unit(exponent), rounding=ROUND_HALF_UP)


def tax_of(base: Decimal, rate: Decimal, inclusive: bool, exponent: int) -> Decimal:
    """The tax a provider charges on one line, rounded in the currency's unit."""
    if inclusive:
        return rnd(base * rate / (1 + rate), exponent)
    return rnd(base * rate, exponent)


def money(value: Decimal) -> str:
    return str(value)


line_st = st.fixed_dictionaries(
    {
        "price_minor": st.integers(min_value=1, max_value=200_000),
        "quantity": st.integers(min_value=1, max_value=50),
        "rate": st.sampled_from(RATES),
        "discount_share": st.integers(min_value=0, max_value=100),  # % of the line
    }
)


# -- Shopify ---------------------------------------------------------------------------------------


@st.composite
def shopify_orders(draw: st.DrawFn) -> dict[str, Any]:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    exp = CURRENCIES[currency]
    inclusive = draw(st.booleans())
    order_discount_minor = draw(st.integers(min_value=0, max_value=5_000))
    lines = draw(st.lists(line_st, min_size=1, max_size=6))
    shipping = draw(
        st.none()
        | st.fixed_dictionaries(
            {
                "price_minor": st.integers(min_value=0, max_value=5_000),
                "rate": st.sampled_from(RATES),
                "discount_share": st.sampled_from([0, 0, 50, 100]),
            }
        )
    )
    items, taxes, gross_total = [], Decimal(0), Decimal(0)
    remaining_order_discount = unit(exp) * order_discount_minor
    for i, spec in enumerate(lines):
        price = unit(exp) * spec["price_minor"]
        full = price * spec["quantity"]
        line_discount = rnd(full * spec["discount_share"] / 200, exp)
        order_share = min(remaining_order_discount, full - line_discount)
        remaining_order_discount -= order_share
        allocations = [a for a in (line_discount, order_share) if a]
        base = full - line_discount - order_share
        tax = tax_of(base, spec["rate"], inclusive, exp) if spec["rate"] else Decimal(0)
        taxes += tax
        gross_total += base if inclusive else base + tax
        items.append(
            {
                "id": 1000 + i,
                "name": f"Produit {i}",
                "price": money(price),
                "quantity": spec["quantity"],
                "gift_card": False,
                "discount_allocations": [{"amount": money(a)} for a in allocations],
                "tax_lines": [{"price": money(tax), "rate": spec["rate"]}] if spec["rate"] else [],
            }
        )
    shipping_lines = []
    if shipping is not None:
        price = unit(exp) * shipping["price_minor"]
        discount = rnd(price * shipping["discount_share"] / 100, exp)
        base = price - discount
        tax = tax_of(base, shipping["rate"], inclusive, exp) if shipping["rate"] else Decimal(0)
        taxes += tax
        gross_total += base if inclusive else base + tax
        shipping_lines.append(
            {
                "title": "Colissimo",
                "price": money(price),
                "discount_allocations": [{"amount": money(discount)}] if discount else [],
                "tax_lines": [{"price": money(tax), "rate": shipping["rate"]}],
            }
        )
    return {
        "id": 5_000_000_000_000_000_001,
        "name": "#1",
        "email": "client@example.org",
        "customer": {"id": 7_000_000_000_000_000_001},
        "currency": currency,
        "presentment_currency": currency,
        "financial_status": "paid",
        "test": False,
        "taxes_included": inclusive,
        "processed_at": "2026-03-01T23:30:00+00:00",
        "payment_gateway_names": ["shopify_payments"],
        "line_items": items,
        "shipping_lines": shipping_lines,
        "total_price": money(gross_total),
        "total_tax": money(taxes),
        "refunds": [],
    }


def shopify_event(topic: str, payload: dict[str, Any]) -> InboundEvent:
    return InboundEvent(
        Source.SHOPIFY,
        "e",
        topic,
        payload,
        datetime(2026, 3, 2, tzinfo=UTC),
        {"x-shopify-shop-domain": SHOP},
    )


def note_adjustments(items: list[dict[str, Any]]) -> None:
    """Count, in hypothesis' statistics, how often the explicit adjustment lines were needed."""
    titles = {item["title"] for item in items}
    event(f"rounding line: {ROUNDING_TITLE in titles}")
    event(f"VAT gap line: {VAT_GAP_TITLE in titles}")


@EXAMPLES
@given(order=shopify_orders())
def test_shopify_invoice_equals_amount_charged(
    mapper: MappingEngine, order: dict[str, Any]
) -> None:
    outcome = mapper.map_event(shopify_event("orders/paid", order))
    charged = Decimal(order["total_price"])
    if charged == 0:
        assert outcome.skipped is not None
        assert outcome.commands == []
        return
    invoice = outcome.commands[1]
    assert invoice.kind is CommandKind.CREATE_INVOICE
    note_adjustments(invoice.payload["items"])
    totals = compute_totals(invoice.payload["items"])
    assert totals.total_with_vat == charged
    assert totals.total_vat == Decimal(order["total_tax"])
    assert Decimal(invoice.meta["expected_total_with_vat"]) == charged
    for item in invoice.payload["items"]:
        assert Decimal(item["unit_price"]).as_tuple().exponent >= -3


@st.composite
def shopify_refunds(draw: st.DrawFn) -> tuple[dict[str, Any], Decimal, Decimal]:
    """A partial refund of a generated order: some quantities of some lines, maybe shipping."""
    order = draw(shopify_orders())
    exp = CURRENCIES[order["currency"]]
    inclusive = order["taxes_included"]
    refund_lines, refunded, refunded_tax = [], Decimal(0), Decimal(0)
    for item in order["line_items"]:
        quantity = draw(st.integers(min_value=0, max_value=item["quantity"]))
        if quantity == 0:
            continue
        price = Decimal(item["price"])
        discount = sum((Decimal(a["amount"]) for a in item["discount_allocations"]), Decimal(0))
        subtotal = rnd((price * item["quantity"] - discount) * quantity / item["quantity"], exp)
        rate = item["tax_lines"][0]["rate"] if item["tax_lines"] else Decimal(0)
        tax = tax_of(subtotal, rate, inclusive, exp) if rate else Decimal(0)
        refunded += subtotal if inclusive else subtotal + tax
        refunded_tax += tax
        refund_lines.append(
            {
                "quantity": quantity,
                "subtotal": money(subtotal),
                "total_tax": money(tax),
                "line_item": {"name": item["name"], "tax_lines": item["tax_lines"]},
            }
        )
    adjustments = []
    if order["shipping_lines"] and draw(st.booleans()):
        ship = order["shipping_lines"][0]
        rate = ship["tax_lines"][0]["rate"]
        amount = rnd(Decimal(ship["price"]) / (1 + rate if inclusive else 1), exp)
        tax = rnd(amount * rate, exp)
        if amount:
            refunded += amount + tax
            refunded_tax += tax
            adjustments.append(
                {"kind": "shipping_refund", "amount": money(-amount), "tax_amount": money(-tax)}
            )
    refund = {
        "id": 9_000_000_000_000_000_001,
        "order_id": order["id"],
        "processed_at": "2026-03-05T10:00:00+01:00",
        "refund_line_items": refund_lines,
        "order_adjustments": adjustments,
        "transactions": [
            {
                "kind": "refund",
                "status": "success",
                "amount": money(refunded),
                "currency": order["currency"],
            }
        ],
    }
    return refund, refunded, refunded_tax


@EXAMPLES
@given(case=shopify_refunds())
def test_shopify_credit_note_equals_amount_and_vat_refunded(
    mapper: MappingEngine, case: tuple[dict[str, Any], Decimal, Decimal]
) -> None:
    refund, refunded, refunded_tax = case
    outcome = mapper.map_event(shopify_event("refunds/create", refund))
    if refunded == 0:
        assert outcome.commands == []
        assert outcome.skipped is not None
        return
    (credit,) = outcome.commands
    assert credit.kind is CommandKind.PARTIAL_CREDIT_NOTE
    totals = compute_totals(credit.payload["items"])
    assert totals.total_with_vat == -refunded
    assert totals.total_vat == -refunded_tax
    assert credit.refs["information"].endswith("#invoice_ref")


# -- Stripe ----------------------------------------------------------------------------------------


def stripe_tax(base_minor: int, rate: Decimal, inclusive: bool) -> int:
    """Stripe's tax on one line, in minor units."""
    exact = Decimal(base_minor) * rate / (1 + rate) if inclusive else Decimal(base_minor) * rate
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@st.composite
def stripe_invoices(draw: st.DrawFn) -> tuple[dict[str, Any], Decimal, Decimal]:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    inclusive = draw(st.booleans())
    shape = draw(st.sampled_from(["taxes", "tax_amounts"]))
    lines, total_minor, tax_minor = [], 0, 0
    for i, spec in enumerate(draw(st.lists(line_st, min_size=1, max_size=6))):
        amount = spec["price_minor"] * spec["quantity"]
        discount = amount * spec["discount_share"] // 200
        base = amount - discount
        rate = spec["rate"]
        tax = stripe_tax(base, rate, inclusive) if rate else 0
        taxable = base - tax if inclusive else base
        total_minor += base if inclusive else base + tax
        tax_minor += tax
        entry: dict[str, Any]
        if shape == "taxes":
            behaviour = "inclusive" if inclusive else "exclusive"
            entry = {"amount": tax, "taxable_amount": taxable, "tax_behavior": behaviour}
        else:
            entry = {"amount": tax, "taxable_amount": taxable, "inclusive": inclusive}
        lines.append(
            {
                "id": f"il_{i}",
                "description": f"Abonnement {i}",
                "amount": amount,
                "quantity": spec["quantity"],
                "discount_amounts": [{"amount": discount}] if discount else [],
                shape: [entry] if rate else [],
            }
        )
    exp = CURRENCIES[currency]
    invoice = {
        "id": "in_prop",
        "object": "invoice",
        "status": "paid",
        "currency": currency.lower(),
        "customer": "cus_prop",
        "customer_email": "client@example.org",
        "customer_tax_ids": [],
        "number": "PROP-0001",
        "billing_reason": "subscription_cycle",
        "collection_method": "charge_automatically",
        "status_transitions": {"paid_at": 1_780_000_000},
        "total": total_minor,
        "amount_paid": total_minor,
        "lines": {"data": lines},
    }
    return invoice, unit(exp) * total_minor, unit(exp) * tax_minor


def stripe_event(event_type: str, obj: dict[str, Any]) -> InboundEvent:
    payload = {"id": "evt_prop", "type": event_type, "data": {"object": obj}}
    return InboundEvent(Source.STRIPE, "evt_prop", event_type, payload, datetime.now(UTC))


@EXAMPLES
@given(case=stripe_invoices())
def test_stripe_invoice_equals_amount_charged(
    mapper: MappingEngine, case: tuple[dict[str, Any], Decimal, Decimal]
) -> None:
    invoice, charged, tax = case
    outcome = mapper.map_event(stripe_event("invoice.paid", invoice))
    if charged == 0:
        assert outcome.skipped is not None
        assert outcome.commands == []
        return
    command = outcome.commands[1]
    note_adjustments(command.payload["items"])
    totals = compute_totals(command.payload["items"])
    assert totals.total_with_vat == charged
    assert totals.total_vat == tax
    assert command.key == "stripe:invoice:in_prop"


@EXAMPLES
@given(case=stripe_invoices())
def test_stripe_credit_note_equals_amount_and_vat_refunded(
    mapper: MappingEngine, case: tuple[dict[str, Any], Decimal, Decimal]
) -> None:
    """A Stripe credit note has the invoice lines' shape: its lines are credited exactly."""
    invoice, credited, tax = case
    credit_lines = [
        {**line, "discount_amount": sum(d["amount"] for d in line["discount_amounts"])}
        for line in invoice["lines"]["data"]
    ]
    exp = CURRENCIES[invoice["currency"].upper()]
    note = {
        "id": "cn_prop",
        "object": "credit_note",
        "status": "issued",
        "type": "post_payment",
        "invoice": "in_prop",
        "currency": invoice["currency"],
        "total": int(credited.scaleb(exp)),
        "created": 1_780_000_000,
        "lines": {"data": credit_lines},
        "refunds": [{"refund": "re_prop", "amount_refunded": int(credited.scaleb(exp))}],
    }
    outcome = mapper.map_event(stripe_event("credit_note.created", note))
    if credited == 0:
        assert outcome.commands == []
        return
    (credit,) = outcome.commands
    totals = compute_totals(credit.payload["items"])
    assert totals.total_with_vat == -credited
    assert totals.total_vat == -tax
    assert credit.key == "stripe:refund:re_prop"
