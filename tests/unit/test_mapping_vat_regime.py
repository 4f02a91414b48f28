"""VAT regimes and legal mentions: franchise en base, and every 0 % invoice says why."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.config import ConfigError, Settings
from bridge.facturation.totals import compute_totals
from bridge.inbound.events import InboundEvent, Source, parse_json
from bridge.mapping.engine import MappingConfigError, MappingEngine, MappingError
from bridge.mapping.mentions import MENTIONS, missing_mention
from bridge.mapping.samples import Sample, SampleEngines, read_samples
from bridge.outbox.commands import CommandKind

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"
RENEWAL = (
    GOLDEN_DIR.parent / "fixtures" / "authored" / "stripe_invoice.paid_renewal_taxes_included.json"
)
SAMPLES = read_samples(GOLDEN_DIR)
FRANCHISE_TEXT = "TVA non applicable, art. 293 B du CGI"
MONEY_KINDS = (CommandKind.CREATE_INVOICE, CommandKind.PARTIAL_CREDIT_NOTE)


@pytest.fixture(scope="module")
def franchise() -> MappingEngine:
    return MappingEngine.load(Settings(BRIDGE_VAT_REGIME="franchise"), network=False)


def test_the_regime_is_normal_by_default_and_checked() -> None:
    assert Settings().vat_regime == "normal"
    assert Settings(BRIDGE_VAT_REGIME="franchise").vat_regime == "franchise"
    with pytest.raises((ConfigError, ValueError), match="BRIDGE_VAT_REGIME"):
        Settings(BRIDGE_VAT_REGIME="micro")


@pytest.fixture(scope="module")
def franchise_engines() -> SampleEngines:
    return SampleEngines(Settings(BRIDGE_VAT_REGIME="franchise"))


@pytest.fixture(scope="module")
def normal_engines() -> SampleEngines:
    return SampleEngines(Settings())


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.path.stem for s in SAMPLES])
def test_under_franchise_every_document_is_at_zero_for_what_was_paid(
    franchise_engines: SampleEngines, normal_engines: SampleEngines, sample: Sample
) -> None:
    # with the sample's own settings (BRIDGE_OSS…), the regime aside
    franchise = franchise_engines.for_sample(sample)
    normal = normal_engines.for_sample(sample)
    try:
        got = franchise.map_event(sample.event())
    except MappingError:  # an event refused under franchise is refused in the normal regime too
        with pytest.raises(MappingError):
            normal.map_event(sample.event())
        return
    for command in got.commands:
        if command.kind in MONEY_KINDS and "items" in command.payload:
            items = command.payload["items"]
            assert {item["vat"] for item in items} == {"0.000"}
            assert command.payload["vat_exemption"] == FRANCHISE_TEXT
            total = compute_totals(items).total_with_vat
            assert total == Decimal(command.meta["expected_total_with_vat"])
    if sample.expected.get("error"):  # only VAT that is not the rate of its lines: moot at 0 %
        with pytest.raises(MappingError, match="VAT"):
            normal.map_event(sample.event())
        return
    expected = normal.map_event(sample.event())
    assert got.skipped == expected.skipped
    assert [c.key for c in got.commands] == [c.key for c in expected.commands]
    for before, after in zip(expected.commands, got.commands, strict=True):
        assert after.meta == before.meta  # the same amount expected: what the customer paid
        if "items" not in after.payload:
            assert after.payload == before.payload


def test_a_franchise_renewal_is_the_price_paid_at_zero_with_the_mention(
    franchise: MappingEngine,
) -> None:
    franchise.stripe_api = None
    payload = parse_json(RENEWAL.read_bytes())
    event = InboundEvent(Source.STRIPE, payload["id"], payload["type"], payload, datetime.now(UTC))
    _customer, invoice = franchise.map_event(event).commands
    assert invoice.payload["items"] == [
        {
            "title": "1 \u00d7 Abonnement Pro (at \u20ac39.00 / month)",
            "quantity": "1",
            "unit_price": "39.000",
            "vat": "0.000",
        }
    ]
    assert invoice.payload["vat_exemption"] == FRANCHISE_TEXT
    assert invoice.meta["expected_total_with_vat"] == "39.00"


# -- every 0 % invoice says why ------------------------------------------------------------------

STRIPE_NO_TAX = GOLDEN_DIR.parent / "fixtures" / "stripe" / "event_invoice.paid.json"
BUILTIN_INVOICE_PAID = (
    Path(__file__).resolve().parents[2] / "mappings" / "stripe" / "invoice.paid.yaml"
)


def engine_with_policy(tmp_path: Path, policy: str) -> MappingEngine:
    text = BUILTIN_INVOICE_PAID.read_text(encoding="utf-8").replace("policy:\n", policy, 1)
    assert text != BUILTIN_INVOICE_PAID.read_text(encoding="utf-8")
    (tmp_path / "stripe").mkdir()
    (tmp_path / "stripe" / "invoice.paid.yaml").write_text(text, encoding="utf-8")
    return MappingEngine.load(Settings(BRIDGE_MAPPINGS_DIR=str(tmp_path)), network=False)


def stripe(path: Path) -> InboundEvent:
    payload = parse_json(path.read_bytes())
    return InboundEvent(Source.STRIPE, payload["id"], payload["type"], payload, datetime.now(UTC))


def test_a_zero_rate_invoice_gets_the_mention_its_mapping_names(tmp_path: Path) -> None:
    engine = engine_with_policy(tmp_path, "policy:\n  zero_vat_mention: export\n")
    _customer, invoice = engine.map_event(stripe(STRIPE_NO_TAX)).commands
    assert {item["vat"] for item in invoice.payload["items"]} == {"0.000"}
    assert invoice.payload["vat_exemption"] == "Exonération de TVA, art. 262 I du CGI"
    # A taxed invoice carries no exemption mention.
    _customer, taxed = engine.map_event(stripe(RENEWAL)).commands
    assert "vat_exemption" not in taxed.payload


def test_mentions_can_be_reworded(tmp_path: Path) -> None:
    policy = (
        "policy:\n  zero_vat_mention: eu_services\n"
        '  mentions: {eu_services: "Autoliquidation, art. 283-2 du CGI"}\n'
    )
    _customer, invoice = (
        engine_with_policy(tmp_path, policy).map_event(stripe(STRIPE_NO_TAX)).commands
    )
    assert invoice.payload["vat_exemption"] == "Autoliquidation, art. 283-2 du CGI"


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        ("policy:\n  zero_vat_mention: exempt\n", "policy.zero_vat_mention: must be one of"),
        ('policy:\n  mentions: {domtom: "x"}\n', "policy.mentions.domtom: unknown mention"),
        ('policy:\n  mentions: {export: ""}\n', "policy.mentions.export: must be a non-empty"),
    ],
)
def test_unknown_or_empty_mentions_fail_at_load(tmp_path: Path, policy: str, problem: str) -> None:
    with pytest.raises(MappingConfigError, match=problem):
        engine_with_policy(tmp_path, policy)


def test_built_in_texts() -> None:
    assert MENTIONS == {
        "franchise": "TVA non applicable, art. 293 B du CGI",
        "intra_eu_goods": "Exonération de TVA, art. 262 ter, I du CGI",
        "eu_services": "Autoliquidation (art. 283-2 du CGI, art. 196 de la directive 2006/112/CE)",
        "export": "Exonération de TVA, art. 262 I du CGI",
        "outside_eu_services": "TVA non applicable, art. 259-1 du CGI",
        "out_of_scope": "Opération hors champ de la TVA",
    }
    assert missing_mention({"items": [{"vat": "0.000"}, {"vat": "0.000"}]})
    assert not missing_mention({"items": [{"vat": "0.000"}], "vat_exemption": "Autoliquidation"})
    assert not missing_mention({"items": [{"vat": "0.000"}, {"vat": "0.200"}]})  # a tip at 0 %
