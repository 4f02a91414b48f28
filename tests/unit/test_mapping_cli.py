"""``facturation-bridge map`` and ``mappings check``: offline, from files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_map_prints_the_commands_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "authored" / "shopify_orders_paid_fr_taxes_included.json"
    code = main(
        ["map", "--source", "shopify", "--topic", "orders/paid", "--shop", "s.fr", str(path)]
    )
    assert code == 0
    body = json.loads(capsys.readouterr().out)
    kinds = [c["kind"] for c in body["commands"]]
    assert kinds == ["customer.ensure", "invoice.create"]
    assert body["commands"][1]["key"] == "shopify:s.fr:order:5902918374650192837"
    assert body["commands"][1]["meta"]["expected_total_with_vat"] == "66.20"


def test_map_reads_the_stripe_type_from_the_payload(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "stripe" / "event_charge.refunded.json"
    assert main(["map", "--source", "stripe", str(path)]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["commands"] == []
    assert "no sale was invoiced" in body["skipped"]


def test_map_says_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert main(["map", "--source", "stripe", str(bad)]) == 1
    assert "bad.json" in capsys.readouterr().err
    path = FIXTURES / "shopify" / "refunds_create.json"
    assert main(["map", "--source", "shopify", "--topic", "refunds/create", str(path)]) == 1
    assert "error:" in capsys.readouterr().err
    assert main(["map", "--source", "stripe", "--topic", "plan.created", str(path)]) == 1
    assert "no mapping for stripe plan.created" in capsys.readouterr().err


def test_mappings_check_validates_and_runs_the_samples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mappings", "check"]) == 0
    out = capsys.readouterr().out
    assert "ok   stripe/invoice.paid" in out
    assert "ok   shopify/orders_paid" in out
    assert "same stripe_invoice.paid_renewal_taxes_included.json" in out
    assert "0 sample(s) differ" in out


def test_mappings_check_fails_on_an_invalid_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "shopify").mkdir()
    (tmp_path / "shopify" / "orders_paid.yaml").write_text("kind: sale\n", encoding="utf-8")
    monkeypatch.setenv("BRIDGE_MAPPINGS_DIR", str(tmp_path))
    assert main(["mappings", "check"]) == 1
    err = capsys.readouterr().err
    assert "orders_paid.yaml: key: is required" in err
