"""The three customisations of docs/mappings.md, applied as a user's mapping folder."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import yaml

from bridge.config import Settings
from bridge.inbound.events import InboundEvent, Source, parse_json
from bridge.mapping.engine import MappingEngine

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "authored"
DOC = (REPO / "docs" / "mappings.md").read_text(encoding="utf-8")


def doc_example(heading: str) -> dict[str, object]:
    """The YAML block under a docs/mappings.md heading."""
    section = DOC.split(heading, 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    data: dict[str, object] = yaml.safe_load(block.group(1))
    return data


def customised(tmp_path: Path, source: str, name: str, *changes: dict[str, object]) -> Path:
    data = yaml.safe_load((REPO / "mappings" / source / name).read_text(encoding="utf-8"))
    for change in changes:
        for key, value in change.items():
            if isinstance(value, dict):
                data.setdefault(key, {}).update(value)
            else:
                data[key] = value
    (tmp_path / source).mkdir(parents=True, exist_ok=True)
    (tmp_path / source / name).write_text(yaml.safe_dump(data, allow_unicode=True))
    return tmp_path


def test_payment_mode_per_stripe_payment_method_and_title_template(tmp_path: Path) -> None:
    folder = customised(
        tmp_path,
        "stripe",
        "invoice.paid.yaml",
        doc_example("### 1. Payment mode per Stripe payment method"),
        doc_example("### 3. Title template"),
    )
    mapper = MappingEngine.load(Settings(mappings_dir=folder), network=False)
    payload = parse_json(
        (FIXTURES / "stripe_invoice.paid_renewal_taxes_included.json").read_bytes()
    )
    payload["data"]["object"]["payment_settings"]["payment_method_types"] = ["sepa_debit"]
    event = InboundEvent(Source.STRIPE, "e", "invoice.paid", payload, datetime.now(UTC))
    invoice = mapper.map_event(event).commands[1]
    assert invoice.payload["payment_mode"] == 8
    assert invoice.payload["title"] == (
        "Abonnement 1 \u00d7 Abonnement Pro (at \u20ac39.00 / month) — facture DEMO-0007"
    )
    assert invoice.meta["expected_total_with_vat"] == "39.00"


def test_category_per_product(tmp_path: Path) -> None:
    folder = customised(
        tmp_path, "shopify", "orders_paid.yaml", doc_example("### 2. Category per product")
    )
    mapper = MappingEngine.load(Settings(mappings_dir=folder), network=False)
    order = parse_json((FIXTURES / "shopify_orders_paid_fr_taxes_included.json").read_bytes())
    headers = {"x-shopify-shop-domain": "maison-colombe.myshopify.com"}
    event = InboundEvent(Source.SHOPIFY, "e", "orders/paid", order, datetime.now(UTC), headers)
    assert mapper.map_event(event).commands[1].payload["category_id"] == 4852
    order["line_items"].reverse()
    assert mapper.map_event(event).commands[1].payload["category_id"] == 4860
