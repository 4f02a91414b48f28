"""The Stripe look-ups through the stripe SDK, against a local fake Stripe over real HTTP."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from stripe._api_version import _ApiVersion

from bridge.mapping.enrichment import (
    STRIPE_API_VERSION,
    EnrichmentError,
    HttpStripeApi,
    StripeObjectMissingError,
)
from tests.support.fake_stripe import API_KEY, FakeStripe, serve_fake_stripe

SESSION = "cs_test_a1"
GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def _item(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"li_{n:04d}", "object": "item", "description": f"Item {n}", "quantity": 1,
        "amount_subtotal": 100 * n, "amount_total": 120 * n, "amount_tax": 20 * n,
        "currency": "eur", "taxes": [], **extra,
    }  # fmt: skip


@pytest.fixture
def stripe_fake() -> Iterator[FakeStripe]:
    with serve_fake_stripe() as fake:
        yield fake


def _api(fake: FakeStripe, *, key: str = API_KEY, timeout: float = 20.0) -> HttpStripeApi:
    return HttpStripeApi(fake.url, key, timeout=timeout)


def _floats(value: Any) -> list[Any]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _floats(v)]
    return []


def test_line_items_are_paged_through_every_page(stripe_fake: FakeStripe) -> None:
    stripe_fake.line_items[SESSION] = [_item(n) for n in range(1, 251)]
    items = _api(stripe_fake).checkout_line_items(SESSION)
    assert [i["id"] for i in items] == [f"li_{n:04d}" for n in range(1, 251)]
    assert len(stripe_fake.seen) == 3
    assert [s.query.get("starting_after") for s in stripe_fake.seen] == [
        None,
        ["li_0100"],
        ["li_0200"],
    ]
    for seen in stripe_fake.seen:
        assert seen.path == f"/v1/checkout/sessions/{SESSION}/line_items"
        assert seen.query["limit"] == ["100"]
        expand = [v for k, vs in seen.query.items() if k.startswith("expand[") for v in vs]
        assert sorted(expand) == ["data.discounts", "data.taxes"]


def test_the_sdk_sends_the_key_and_the_pinned_api_version(stripe_fake: FakeStripe) -> None:
    assert STRIPE_API_VERSION == _ApiVersion.CURRENT  # the version stripe-python is built for
    stripe_fake.line_items[SESSION] = [_item(1)]
    _api(stripe_fake).checkout_line_items(SESSION)
    (seen,) = stripe_fake.seen
    assert seen.headers["Authorization"] == f"Bearer {API_KEY}"
    assert seen.headers["Stripe-Version"] == STRIPE_API_VERSION == "2026-10-28.endive"


def test_amounts_stay_exact_integers_and_decimals_never_become_floats(
    stripe_fake: FakeStripe,
) -> None:
    huge = 2**70 + 1  # far beyond a float's 2**53: one cent off would show
    tax = {"amount": huge // 6, "rate": {"id": "txr_1", "percentage": 20.5, "inclusive": False}}
    stripe_fake.line_items[SESSION] = [_item(1, amount_total=huge, taxes=[tax])]
    (item,) = _api(stripe_fake).checkout_line_items(SESSION)
    assert item["amount_total"] == huge
    assert type(item["amount_total"]) is int
    assert item["taxes"][0]["amount"] == huge // 6
    assert item["taxes"][0]["rate"]["percentage"] == Decimal("20.5")
    assert _floats(item) == []


def test_a_session_is_found_by_its_payment_intent(stripe_fake: FakeStripe) -> None:
    stripe_fake.sessions_by_payment_intent["pi_1"] = "cs_found"
    api = _api(stripe_fake)
    assert api.checkout_session_for_payment_intent("pi_1") == "cs_found"
    assert api.checkout_session_for_payment_intent("pi_unknown") is None
    assert [s.query["payment_intent"] for s in stripe_fake.seen] == [["pi_1"], ["pi_unknown"]]


def test_an_object_stripe_does_not_have_is_a_permanent_error(stripe_fake: FakeStripe) -> None:
    with pytest.raises(StripeObjectMissingError, match=r"HTTP 404, resource_missing") as caught:
        _api(stripe_fake).checkout_line_items("cs_test_unknown")
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, "APIError"), (503, "APIError"), (429, "RateLimitError"), (403, "PermissionError")],
)
def test_stripe_failures_are_retryable(stripe_fake: FakeStripe, status: int, error: str) -> None:
    stripe_fake.status = status
    with pytest.raises(EnrichmentError, match=rf"{error} \(HTTP {status}") as caught:
        _api(stripe_fake).checkout_line_items(SESSION)
    assert caught.value.retryable is True
    assert len(stripe_fake.seen) == 1  # no retry inside: the mapping stage retries the event


def test_a_refused_key_is_retryable(stripe_fake: FakeStripe) -> None:
    with pytest.raises(EnrichmentError, match=r"AuthenticationError \(HTTP 401"):
        _api(stripe_fake, key="sk_test_wrong").checkout_line_items(SESSION)


def test_a_stripe_that_never_answers_times_out() -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(EnrichmentError, match="APIConnectionError"):
            HttpStripeApi(url, API_KEY, timeout=0.5).checkout_line_items(SESSION)
    assert time.monotonic() - started < 15  # the 0.5 s timeout, with room for a loaded machine


def _intents(golden: str) -> dict[str, Any]:
    """The payment intents of a golden file, as Stripe sends them (its rate as a JSON number)."""
    data = json.loads((GOLDEN / f"{golden}.json").read_text(encoding="utf-8"))
    intents: dict[str, Any] = data["stripe"]["payment_intents"]
    return intents


def test_payment_details_name_the_method_used_and_the_euro_settlement(
    stripe_fake: FakeStripe,
) -> None:
    stripe_fake.payment_intents.update(_intents("stripe_invoice.paid_usd_settled_in_eur_endive"))
    details = _api(stripe_fake).payment_details("pi_1Rk3demoUsdCard0000000")
    assert details == {
        "method": "card",
        "wallet": None,
        "settlement": {"amount": 11040, "currency": "eur", "exchange_rate": Decimal("0.92")},
    }
    assert _floats(details) == []
    (seen,) = stripe_fake.seen
    assert seen.path == "/v1/payment_intents/pi_1Rk3demoUsdCard0000000"
    expand = [v for k, vs in seen.query.items() if k.startswith("expand[") for v in vs]
    assert expand == ["latest_charge.balance_transaction"]


def test_payment_details_name_a_card_wallet(stripe_fake: FakeStripe) -> None:
    stripe_fake.payment_intents.update(_intents("stripe_invoice.paid_card_apple_pay_endive"))
    details = _api(stripe_fake).payment_details("pi_1Rk3demoCardApplePay00")
    assert (details["method"], details["wallet"]) == ("card", "apple_pay")
    assert details["settlement"] == {"amount": 5880, "currency": "eur", "exchange_rate": None}


def test_an_intent_not_yet_charged_has_no_details(stripe_fake: FakeStripe) -> None:
    (intent,) = _intents("stripe_invoice.paid_sepa_debit_endive").values()
    stripe_fake.payment_intents[intent["id"]] = {
        **intent,
        "status": "processing",
        "latest_charge": None,
    }
    details = _api(stripe_fake).payment_details(intent["id"])
    assert details == {"method": None, "wallet": None, "settlement": None}


def test_an_unknown_payment_intent_is_a_permanent_error(stripe_fake: FakeStripe) -> None:
    with pytest.raises(StripeObjectMissingError, match=r"payment intent pi_gone: .*HTTP 404"):
        _api(stripe_fake).payment_details("pi_gone")


def test_payment_details_failures_are_retryable(stripe_fake: FakeStripe) -> None:
    stripe_fake.status = 500
    with pytest.raises(EnrichmentError, match=r"payment intent pi_1: APIError \(HTTP 500"):
        _api(stripe_fake).payment_details("pi_1")
