"""The webhook endpoints on real SQLite and PostgreSQL, with real payloads and real signatures."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from bridge.app import create_app
from bridge.config import load_settings
from bridge.db import make_engine
from bridge.db.models import EventStatus, InboxEvent
from bridge.inbound.events import Source
from bridge.inbound.inbox import Inbox
from bridge.inbound.sources import Delivery
from bridge.inbound.sources import shopify as shopify_source
from tests.support.webhooks import (
    SHOP,
    SHOPIFY_SECRET,
    STRIPE_SECRET,
    ShopifyDelivery,
    fixture_bytes,
    stripe_event,
    stripe_header,
)

LIMIT = 64 * 1024


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    """A mappings directory with files for the types these tests expect to be mapped."""
    root = tmp_path / "mappings"
    (root / "stripe").mkdir(parents=True)
    (root / "shopify").mkdir()
    (root / "stripe" / "invoice.paid.yaml").write_text("# mapped\n")
    (root / "shopify" / "orders_paid.yaml").write_text("# mapped\n")
    return root


def _client(db_url: str, mappings: Path, **env: Any) -> TestClient:
    values: dict[str, Any] = {
        "BRIDGE_DATABASE_URL": db_url,
        "STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
        "SHOPIFY_WEBHOOK_SECRETS": SHOPIFY_SECRET,
        "BRIDGE_MAPPINGS_DIR": str(mappings),
        "BRIDGE_MAX_BODY_BYTES": LIMIT,
    }
    settings = load_settings(**{**values, **env})
    return TestClient(create_app(settings), client=("203.0.113.9", 4242))


@pytest.fixture
def client(db_url: str, mappings: Path) -> Iterator[TestClient]:
    with _client(db_url, mappings) as c:
        yield c


def _rows(client: TestClient) -> list[InboxEvent]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.sessions() as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def _post_stripe(client: TestClient, body: bytes, header: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    headers["Stripe-Signature"] = stripe_header(body) if header is None else header
    return client.post("/webhooks/stripe", content=body, headers=headers)


# --- Stripe ----------------------------------------------------------------------------------


def test_a_valid_stripe_event_is_stored_raw_then_acknowledged(client: TestClient) -> None:
    body = fixture_bytes("stripe/event_invoice.paid.json")
    answer = _post_stripe(client, body)
    assert answer.status_code == 200
    assert answer.json()["status"] == "stored"
    assert answer.json()["event_status"] == "received"
    [row] = _rows(client)
    assert row.body == body  # the exact bytes, never re-serialised
    assert (row.source, row.event_id, row.event_type) == (
        "stripe",
        json.loads(body)["id"],
        "invoice.paid",
    )
    assert row.status == EventStatus.RECEIVED
    assert row.id == answer.json()["inbox_event_id"]


def test_a_duplicate_is_acknowledged_and_stores_nothing_new(client: TestClient) -> None:
    body = stripe_event()
    first, second = _post_stripe(client, body), _post_stripe(client, body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == {**first.json(), "status": "duplicate"}
    assert len(_rows(client)) == 1


def test_a_type_without_mapping_is_stored_as_ignored(client: TestClient) -> None:
    answer = _post_stripe(client, stripe_event("customer.deleted"))
    assert answer.status_code == 200
    [row] = _rows(client)
    assert row.status == EventStatus.IGNORED
    assert row.status_reason == "no mapping for stripe customer.deleted"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("tampered", "no signatures found matching"),
        ("wrong secret", "no signatures found matching"),
        ("stale", "outside the 300 s tolerance"),
        ("missing", "missing Stripe-Signature"),
        ("garbage", "Unable to extract timestamp"),
    ],
)
def test_a_bad_signature_is_400_nothing_stored_and_logged(
    client: TestClient, case: str, reason: str
) -> None:
    body = stripe_event()
    header = {
        "tampered": stripe_header(body),
        "wrong secret": stripe_header(body, "whsec_not_ours"),
        "stale": stripe_header(body, timestamp=1_700_000_000),
        "missing": "",
        "garbage": "not a signature",
    }[case]
    sent = body.replace(b"invoice.paid", b"invoice.void") if case == "tampered" else body
    headers = {"Stripe-Signature": header} if header else {}
    with capture_logs() as logs:
        answer = client.post("/webhooks/stripe", content=sent, headers=headers)
    assert answer.status_code == 400
    assert reason.lower() in answer.json()["error"].lower()
    assert _rows(client) == []
    [line] = [entry for entry in logs if entry["event"] == "ingress.rejected"]
    assert line["client"] == "203.0.113.9"
    assert reason.lower() in line["reason"].lower()
    assert STRIPE_SECRET not in repr(logs)
    if header:
        assert header not in repr(logs)


def test_a_rotated_secret_keeps_both_accepted(db_url: str, mappings: Path) -> None:
    with _client(db_url, mappings, STRIPE_WEBHOOK_SECRETS=f"whsec_new_one,{STRIPE_SECRET}") as c:
        old, new = stripe_event(), stripe_event()
        assert _post_stripe(c, old, stripe_header(old, STRIPE_SECRET)).status_code == 200
        assert _post_stripe(c, new, stripe_header(new, "whsec_new_one")).status_code == 200
        assert _post_stripe(c, new, stripe_header(new, "whsec_retired")).status_code == 400
        assert len(_rows(c)) == 2


def test_a_signed_body_that_is_not_json_is_kept_as_failed(client: TestClient) -> None:
    body = b'{"id": "evt_1", "type": "invoice.paid", truncated'
    first, again = _post_stripe(client, body), _post_stripe(client, body)
    assert first.status_code == 200
    assert first.json()["event_status"] == "failed"
    assert again.json()["status"] == "duplicate"
    [row] = _rows(client)
    assert row.status == EventStatus.FAILED
    assert row.status_reason is not None
    assert row.status_reason.startswith("invalid JSON")
    assert row.event_id.startswith("sha256:")
    assert row.body == body


def test_no_secret_configured_is_503(db_url: str, mappings: Path) -> None:
    with _client(db_url, mappings, STRIPE_WEBHOOK_SECRETS="") as c:
        answer = _post_stripe(c, stripe_event())
        assert answer.status_code == 503
        assert "STRIPE_WEBHOOK_SECRETS" in answer.json()["error"]
        assert _rows(c) == []


# --- Shopify ---------------------------------------------------------------------------------


def test_a_valid_shopify_order_is_stored_with_its_headers_and_exact_ids(client: TestClient) -> None:
    body = fixture_bytes("shopify/orders_paid.json")
    delivery = ShopifyDelivery(body)
    answer = client.post("/webhooks/shopify", content=body, headers=delivery.headers())
    assert answer.status_code == 200, answer.text
    [row] = _rows(client)
    assert row.body == body
    assert (row.event_id, row.event_type, row.status) == (
        delivery.event_id,
        "orders/paid",
        "received",
    )
    assert row.headers == {
        "x-shopify-topic": "orders/paid",
        "x-shopify-shop-domain": SHOP,
        "x-shopify-api-version": "2026-04",
        "x-shopify-webhook-id": delivery.webhook_id,
        "x-shopify-event-id": delivery.event_id,
        "x-shopify-triggered-at": "2026-11-23T21:00:00.000000Z",
    }
    event = shopify_source.parse(row.body, row.headers, row.received_at, row.id)
    assert event.payload["id"] == 820982911946154508  # > 2**53, exact
    assert event.payload["id"] > 2**53
    assert event.shop_domain == SHOP


def test_the_published_hmac_vector_is_accepted_as_sent(client: TestClient) -> None:
    body = fixture_bytes("shopify/refunds_create.json")
    headers = ShopifyDelivery(body, topic="refunds/create").headers(
        **{"X-Shopify-Hmac-Sha256": "9SjRN+TDDTvINfYRIHV9EOAHKae5tLoGuQiO9NMSxFE="}
    )
    answer = client.post("/webhooks/shopify", content=body, headers=headers)
    assert answer.status_code == 200
    [row] = _rows(client)
    assert (row.event_type, row.body) == ("refunds/create", body)


def test_a_topic_without_mapping_is_stored_as_ignored(client: TestClient) -> None:
    body = fixture_bytes("shopify/customers_create.json")
    headers = ShopifyDelivery(body, topic="products/update").headers()
    answer = client.post("/webhooks/shopify", content=body, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["event_status"] == "ignored"
    [row] = _rows(client)
    assert row.status_reason == "no mapping for shopify products/update"


def test_the_same_event_to_two_subscriptions_is_stored_once(client: TestClient) -> None:
    body = fixture_bytes("shopify/orders_paid.json")
    event_id = str(uuid.uuid4())
    a = ShopifyDelivery(body, event_id=event_id)
    b = ShopifyDelivery(body, event_id=event_id)  # another webhook id: another subscription
    assert client.post("/webhooks/shopify", content=body, headers=a.headers()).status_code == 200
    again = client.post("/webhooks/shopify", content=body, headers=b.headers())
    assert again.json()["status"] == "duplicate"
    assert len(_rows(client)) == 1


def test_without_event_id_the_webhook_id_deduplicates(client: TestClient) -> None:
    body = fixture_bytes("shopify/orders_paid.json")
    delivery = ShopifyDelivery(body, event_id=None)
    for _ in range(2):
        assert (
            client.post("/webhooks/shopify", content=body, headers=delivery.headers()).status_code
            == 200
        )
    [row] = _rows(client)
    assert row.event_id == delivery.webhook_id


@pytest.mark.parametrize("case", ["tampered", "wrong secret", "missing", "no topic"])
def test_bad_shopify_deliveries_are_400_and_nothing_stored(client: TestClient, case: str) -> None:
    body = fixture_bytes("shopify/orders_paid.json")
    headers = ShopifyDelivery(
        body, secret="wrong" if case == "wrong secret" else SHOPIFY_SECRET
    ).headers()
    if case == "missing":
        del headers["X-Shopify-Hmac-Sha256"]
    if case == "no topic":
        del headers["X-Shopify-Topic"]
    sent = body.replace(b"9999", b"9998") if case == "tampered" else body
    answer = client.post("/webhooks/shopify", content=sent, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]
    assert _rows(client) == []


def test_the_shop_allow_list_answers_403_to_other_shops(db_url: str, mappings: Path) -> None:
    body = fixture_bytes("shopify/orders_paid.json")
    with _client(db_url, mappings, SHOPIFY_SHOP_DOMAINS=SHOP) as c:
        other = ShopifyDelivery(body, shop="someone-else.myshopify.com")
        answer = c.post("/webhooks/shopify", content=body, headers=other.headers())
        assert answer.status_code == 403
        assert "someone-else.myshopify.com" in answer.json()["error"]
        ours = ShopifyDelivery(body)
        assert c.post("/webhooks/shopify", content=body, headers=ours.headers()).status_code == 200
        assert [r.headers["x-shopify-shop-domain"] for r in _rows(c)] == [SHOP]


# --- Both ------------------------------------------------------------------------------------


def test_wrong_method_is_a_json_405(client: TestClient) -> None:
    for method in ("GET", "PUT", "DELETE"):
        answer = client.request(method, "/webhooks/stripe")
        assert answer.status_code == 405
        assert answer.headers["allow"] == "POST"
        assert "POST" in answer.json()["error"]


def test_an_oversized_body_is_413_declared_or_streamed(client: TestClient) -> None:
    body = b"{" + b" " * LIMIT + b"}"
    declared = client.post(
        "/webhooks/shopify", content=body, headers=ShopifyDelivery(body).headers()
    )
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(LIMIT // 1024 + 2):
            yield b" " * 1024

    streamed = client.post("/webhooks/stripe", content=chunks(), headers={"Stripe-Signature": "x"})
    assert streamed.status_code == 413
    assert "larger than" in streamed.json()["error"]
    lying = client.post(
        "/webhooks/stripe",
        content=b"{}",
        headers={"Content-Length": "abc", "Stripe-Signature": "x"},
    )
    assert lying.status_code == 400
    assert _rows(client) == []


def test_database_down_is_503_and_never_2xx() -> None:
    settings = load_settings(
        BRIDGE_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
        BRIDGE_DB_BUSY_TIMEOUT=1,
        STRIPE_WEBHOOK_SECRETS=STRIPE_SECRET,
    )
    with TestClient(create_app(settings)) as c:
        answer = _post_stripe(c, stripe_event())
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"
        assert "retry" in answer.json()["error"]


def test_sqlite_locked_past_the_busy_timeout_is_503(sqlite_url: str, mappings: Path) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        with _client(sqlite_url, mappings, BRIDGE_DB_BUSY_TIMEOUT=0.3) as c:
            blocker.execute("BEGIN EXCLUSIVE")
            body = stripe_event()
            answer = _post_stripe(c, body)
            assert answer.status_code == 503
            blocker.execute("ROLLBACK")
            assert _post_stripe(c, body).status_code == 200  # the sender's retry lands
            assert len(_rows(c)) == 1
    finally:
        blocker.close()


def test_an_unmigrated_database_is_503(tmp_path: Path, mappings: Path) -> None:
    with _client(f"sqlite:///{tmp_path}/empty.db", mappings) as c:
        assert _post_stripe(c, stripe_event()).status_code == 503


# --- The race --------------------------------------------------------------------------------


def test_identical_deliveries_racing_in_threads_make_exactly_one_row(db_url: str) -> None:
    engine = make_engine(db_url, busy_timeout=10)
    inbox = Inbox(engine, busy_timeout=10)
    delivery = Delivery(Source.SHOPIFY, str(uuid.uuid4()), "orders/paid", b"{}", {})
    threads, barrier = 8, threading.Barrier(8)
    results: list[Any] = []

    def deliver() -> None:
        barrier.wait()
        results.append(inbox.store(delivery, EventStatus.RECEIVED))

    workers = [threading.Thread(target=deliver) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    try:
        assert len(results) == threads
        assert sum(not r.duplicate for r in results) == 1
        assert len({r.inbox_event_id for r in results}) == 1
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(InboxEvent)).scalar()
        assert count == 1
    finally:
        engine.dispose()


def test_identical_http_deliveries_racing_make_exactly_one_row(client: TestClient) -> None:
    body = stripe_event()
    header = stripe_header(body)
    barrier = threading.Barrier(6)
    answers: list[Any] = []

    def deliver() -> None:
        barrier.wait()
        answers.append(_post_stripe(client, body, header))

    workers = [threading.Thread(target=deliver) for _ in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert [a.status_code for a in answers] == [200] * 6
    assert sorted(a.json()["status"] for a in answers) == ["duplicate"] * 5 + ["stored"]
    assert len(_rows(client)) == 1
