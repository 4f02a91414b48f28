"""Current Stripe API flows through real processes: ``serve`` with its worker, a real sandbox of
Facturation.pro, and a local fake of the Stripe API over real HTTP that the worker asks.

- A renewal invoice, then a partial refund made through the Refunds API (API 2025-08-27.basil:
  the refund names a payment intent, not the invoice): the worker finds the invoice through
  ``GET /v1/invoice_payments``, and the sandbox ends with one credit note of exactly the refund,
  split like the sale. The same refund delivered again, as ``refund.updated``, credits nothing more.
- A Checkout session paid by SEPA Debit: ``checkout.session.completed`` arrives unpaid (nothing
  invoiced), ``async_payment_succeeded`` invoices it once, its lines read from
  ``GET /v1/checkout/sessions/{id}/line_items``, its payment mode (SEPA Debit) from
  ``GET /v1/payment_intents/{id}``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.bridge_procs import bridge_env, sandbox_to_file
from tests.support.fake_stripe import API_KEY, FakeStripe, serve_fake_stripe, succeeded_intent
from tests.support.serve import serve_process, wait_for
from tests.support.webhooks import stripe_header

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
AUTHORED = REPO / "tests" / "fixtures" / "authored"
GOLDEN = REPO / "tests" / "golden"
ADMIN_TOKEN = "e2e-admin-token-0123456789"


def _event(name: str, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((AUTHORED / name).read_text(encoding="utf-8"))
    event["data"]["object"].update(changes)
    return event


def _post(url: str, event: dict[str, Any]) -> int:
    body = json.dumps(event).encode()
    headers = {"Stripe-Signature": stripe_header(body), "Content-Type": "application/json"}
    return httpx.post(
        f"{url}/webhooks/stripe", content=body, headers=headers, timeout=10
    ).status_code


def _documents(ledger: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [i for i in ledger.get("invoices", []) if i.get("api_custom") == key]


def test_current_api_refund_and_delayed_checkout_through_real_processes(tmp_path: Path) -> None:
    sale = _event("stripe_invoice.paid_renewal_taxes_included.json")
    invoice = sale["data"]["object"]
    refund = _event("stripe_refund.created_partial_basil.json")
    intent = refund["data"]["object"]["payment_intent"]
    checkout_golden = json.loads(
        (GOLDEN / "stripe_checkout.session.async_payment_succeeded_sepa_basil.json").read_text()
    )
    sale_intent = invoice["payments"]["data"][0]["payment"]["payment_intent"]
    paid = _event("stripe_checkout.session.async_payment_succeeded_sepa_basil.json")
    paid_intent = paid["data"]["object"]["payment_intent"]
    fake = FakeStripe(
        invoices_by_payment_intent={intent: invoice["id"]},
        line_items=checkout_golden["stripe"]["line_items"],
        payment_intents={
            sale_intent: succeeded_intent(sale_intent, "card", invoice["amount_paid"]),
            paid_intent: succeeded_intent(paid_intent, "sepa_debit", 3000, "eur"),
        },
    )
    with serve_fake_stripe(fake), sandbox_to_file(tmp_path / "sandbox.log") as sandbox:
        env = bridge_env(
            f"sqlite:///{tmp_path}/bridge.db",
            sandbox.url,
            STRIPE_API_KEY=API_KEY,
            STRIPE_API_BASE=fake.url,
            BRIDGE_SHAPE_CONFIRMATIONS="0",
            BRIDGE_ADMIN_TOKEN=ADMIN_TOKEN,
        )
        with serve_process(env, tmp_path) as serve:
            assert _post(serve.url, sale) == 200
            sale_key = f"stripe:invoice:{invoice['id']}"
            wait_for(lambda: _documents(sandbox.ledger(), sale_key), 60, "the renewal's invoice")

            assert _post(serve.url, refund) == 200
            refund_key = f"stripe:refund:{refund['data']['object']['id']}"
            credit = wait_for(
                lambda: _documents(sandbox.ledger(), refund_key), 60, "the refund's credit note"
            )[0]
            assert "/v1/invoice_payments" in fake.paths  # the link a basil refund doesn't carry
            again = _event("stripe_refund.updated_succeeded_basil.json")
            again["data"]["object"].update(id=refund["data"]["object"]["id"])
            again["id"] = "evt_e2e_refund_updated"
            assert _post(serve.url, again) == 200

            unpaid = _event("stripe_checkout.session.completed_sepa_unpaid_basil.json")
            session_key = f"stripe:checkout:{paid['data']['object']['id']}"
            assert _post(serve.url, unpaid) == 200
            assert _post(serve.url, paid) == 200
            assert _post(serve.url, paid) == 200  # a duplicate delivery
            checkout = wait_for(
                lambda: _documents(sandbox.ledger(), session_key), 60, "the SEPA sale's invoice"
            )[0]
            wait_for(lambda: _settled(serve.url), 30, "every event mapped, every command settled")
            ledger = sandbox.ledger()

    assert len(_documents(ledger, sale_key)) == 1
    assert len(_documents(ledger, refund_key)) == 1  # refund.updated added nothing
    assert Decimal(str(credit["total_with_vat"])) == Decimal("-10.00")
    sale_doc = _documents(ledger, sale_key)[0]
    assert {i["vat"] for i in credit["items"]} <= {i["vat"] for i in sale_doc["items"]}
    assert len(_documents(ledger, session_key)) == 1
    assert Decimal(str(checkout["total_with_vat"])) == Decimal(
        checkout_golden["expected"]["commands"][1]["meta"]["expected_total_with_vat"]
    )
    assert any(p.endswith("/line_items") for p in fake.paths)
    # the method each payment used, read from Stripe: card 2, SEPA Debit 8
    assert (sale_doc["payment_mode"], checkout["payment_mode"]) == (2, 8)


def _settled(url: str) -> bool:
    """No webhook waiting to be mapped and no command waiting to be delivered (admin API)."""
    status = httpx.get(
        f"{url}/admin/status", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ).json()
    return bool(
        status["events"]["received"] == 0
        and status["commands"]["pending"] == 0
        and status["commands"]["in_flight"] == 0
    )
