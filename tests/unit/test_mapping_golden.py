"""Golden tests: every sale and refund payload in the fixtures maps to the expected commands.

Each ``tests/golden/*.json`` names a payload, how it arrives, and the reviewed outcome (commands,
skip reason, or error). A file may name the settings its case needs (``"settings":
{"BRIDGE_VAT_REGIME": "franchise"}``): it is mapped by an engine loaded with them, one engine per
distinct set. To re-record after an intended change: ``UPDATE_GOLDEN=1 pytest
tests/unit/test_mapping_golden.py``, then review the diff like code.
"""

from __future__ import annotations

import dataclasses
import json
import os
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.config import Settings
from bridge.facturation.totals import compute_totals
from bridge.mapping.engine import MappingEngine
from bridge.mapping.samples import Sample, SampleEngines, outcome_json, read_samples

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"
SAMPLES = read_samples(GOLDEN_DIR)
FIXTURES = GOLDEN_DIR.parent / "fixtures"
SALE_OR_REFUND = ("orders_", "refunds_", "rest_order", "rest_refund", "invoice.paid", "stripe_refund.",
                  "invoice.payment_succeeded", "checkout.session", "charge.refunded", "credit_note")  # fmt: skip


@pytest.fixture(scope="module")
def engines() -> SampleEngines:
    return SampleEngines(Settings())


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.path.stem for s in SAMPLES])
def test_sample_maps_to_expected(engines: SampleEngines, sample: Sample) -> None:
    got = outcome_json(engines.for_sample(sample), sample.event())
    if os.environ.get("UPDATE_GOLDEN"):
        data = json.loads(sample.path.read_text(encoding="utf-8"))
        data["expected"] = got
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        sample.path.write_text(text, encoding="utf-8")
    assert got == sample.expected


def test_every_sale_and_refund_fixture_has_a_golden_file() -> None:
    covered = {s.fixture for s in SAMPLES}
    wanted = {
        p.resolve()
        for p in FIXTURES.rglob("*.json")
        if "cli_triggers" not in p.parts
        and "objects" not in p.parts
        and any(marker in p.name for marker in SALE_OR_REFUND)
    }
    assert wanted, "no fixtures found"
    assert sorted(str(p) for p in wanted - covered) == []


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.path.stem for s in SAMPLES])
def test_expected_invoices_equal_the_amount_charged(sample: Sample) -> None:
    """The recorded expectation itself is exact: Facturation.pro's totals equal meta's amount."""
    for command in sample.expected.get("commands", []):
        items = command["payload"].get("items")
        if items is None:
            continue
        totals = compute_totals(items)
        assert totals.total_with_vat == Decimal(command["meta"]["expected_total_with_vat"])


def test_invoice_paid_and_payment_succeeded_are_one_sale() -> None:
    """Both events of one invoice give the same keys (the fixtures' untaxed sale is given a
    mention here; by default it is refused, the same way for both: see their golden files)."""
    mention = Settings(BRIDGE_ZERO_VAT_MENTION="Exonération de TVA, art. 261 du CGI")
    mapper = MappingEngine.load(mention, network=False)
    by_name = {s.path.stem: s for s in SAMPLES}
    paid = outcome_json(mapper, by_name["stripe_invoice.paid"].event())
    succeeded = outcome_json(mapper, by_name["stripe_invoice.payment_succeeded"].event())
    assert [c["key"] for c in paid["commands"]] == [c["key"] for c in succeeded["commands"]]
    assert paid["commands"][1]["key"] == "stripe:invoice:in_000000000000000000000000"


def test_credit_note_and_charge_refund_share_the_refund_key() -> None:
    by_name = {s.path.stem: s for s in SAMPLES}
    credit = by_name["stripe_credit_note.created_partial"].expected["commands"][0]
    assert credit["key"] == "stripe:refund:re_1Rk2demoPartial00000000"
    refund = by_name["stripe_charge.refunded_checkout_full"].expected["commands"][0]
    assert refund["key"].startswith("stripe:refund:re_")


def test_a_sample_with_settings_is_mapped_with_them() -> None:
    """Without its settings a franchise sample maps otherwise (every taxed sale changes); so does
    a sale at rates that are France's too with BRIDGE_OSS (it stays French VAT without)."""
    named = [s for s in SAMPLES if s.settings]
    default = SampleEngines(Settings())
    differ = {
        s.path.stem
        for s in named
        if outcome_json(default.for_sample(dataclasses.replace(s, settings={})), s.event())
        != s.expected
    }
    franchise = {s.path.stem for s in named if s.settings.get("BRIDGE_VAT_REGIME") == "franchise"}
    assert franchise
    assert franchise <= differ
    assert any("BRIDGE_OSS" in s.settings for s in named if s.path.stem in differ)


def test_a_golden_file_names_known_settings_only(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    body = {"fixture": "x.json", "source": "stripe", "event_type": "invoice.paid"}
    path.write_text(json.dumps({**body, "settings": {"BRIDGE_OSS_ON": "true"}}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"x\.json: settings must be an object of known settings"):
        Sample.read(path)
    path.write_text(json.dumps({**body, "settings": {"BRIDGE_OSS": "true"}}), encoding="utf-8")
    sample = Sample.read(path)
    assert sample.settings_over(Settings()).oss is True
    assert Settings().oss is False
