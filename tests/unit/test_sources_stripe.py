"""Stripe signature verification and event reading, on the fixtures' vectors and real payloads."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bridge.inbound.events import Source
from bridge.inbound.sources import WebhookRejectedError
from bridge.inbound.sources import stripe as source
from tests.support.webhooks import STRIPE_SECRET, fixture_bytes, stripe_header, vectors

VECTORS = vectors("stripe/signature_vectors.json")
SIGNED_AT = 1_700_000_000


def _vector_body(vector: dict[str, Any]) -> bytes:
    if "payload_file" in vector:
        body = fixture_bytes(f"stripe/{vector['payload_file'].removeprefix('stripe/')}")
        assert hashlib.sha256(body).hexdigest() == vector["payload_sha256"]
        return body
    payload: str = vector["payload"]
    return payload.encode("utf-8")


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_published_vectors_verify_at_their_time(vector: dict[str, Any]) -> None:
    body = _vector_body(vector)
    source.verify(body, vector["header"], [vector["secret"]], tolerance=300, now=SIGNED_AT + 299)
    # The library computes the same header as the vector.
    assert stripe_header(body, vector["secret"], SIGNED_AT) == vector["header"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_a_tampered_body_is_rejected(vector: dict[str, Any]) -> None:
    body = _vector_body(vector).replace(b"evt_", b"evt_X", 1)
    with pytest.raises(WebhookRejectedError) as info:
        source.verify(body, vector["header"], [vector["secret"]], tolerance=300, now=SIGNED_AT)
    assert info.value.status_code == 400
    assert "no signatures found matching" in info.value.reason.lower()


def test_the_wrong_secret_is_rejected() -> None:
    vector = VECTORS["vectors"][0]
    with pytest.raises(WebhookRejectedError, match="invalid Stripe-Signature"):
        source.verify(
            _vector_body(vector), vector["header"], ["whsec_other"], tolerance=300, now=SIGNED_AT
        )


def test_any_configured_secret_verifies_during_a_rotation() -> None:
    vector = VECTORS["vectors"][1]
    body = _vector_body(vector)
    secrets = ["whsec_new_secret_after_rotation", vector["secret"]]
    source.verify(body, vector["header"], secrets, tolerance=300, now=SIGNED_AT)
    fresh = stripe_header(body, secrets[0], SIGNED_AT)
    source.verify(body, fresh, secrets, tolerance=300, now=SIGNED_AT)


@pytest.mark.parametrize("offset", [301, -301, 86_400])
def test_a_timestamp_outside_the_tolerance_is_rejected(offset: int) -> None:
    vector = VECTORS["vectors"][0]
    with pytest.raises(WebhookRejectedError, match="outside the 300 s tolerance"):
        source.verify(
            _vector_body(vector),
            vector["header"],
            [vector["secret"]],
            tolerance=300,
            now=SIGNED_AT + offset,
        )


def test_the_system_clock_is_used_by_default() -> None:
    body = fixture_bytes("stripe/event_invoice.paid.json")
    source.verify(body, stripe_header(body), [STRIPE_SECRET], tolerance=300)
    with pytest.raises(WebhookRejectedError, match="tolerance"):
        source.verify(
            body, stripe_header(body, timestamp=SIGNED_AT), [STRIPE_SECRET], tolerance=300
        )


@pytest.mark.parametrize(
    ("case", "expected"),
    [(c, c["expect_error"]) for c in VECTORS["negative_cases_from_stripe_python_tests"]],
    ids=["not-a-header", "no-v1", "bad-signature"],
)
def test_stripe_pythons_negative_cases(case: dict[str, Any], expected: str) -> None:
    body = _vector_body(VECTORS["vectors"][0])
    with pytest.raises(WebhookRejectedError) as info:
        source.verify(body, case["header"], [STRIPE_SECRET], tolerance=300, now=SIGNED_AT)
    assert expected in info.value.reason


def test_missing_header_non_utf8_body_and_no_secret() -> None:
    body = fixture_bytes("stripe/event_invoice.paid.json")
    with pytest.raises(WebhookRejectedError, match="missing Stripe-Signature"):
        source.verify(body, None, [STRIPE_SECRET], tolerance=300)
    with pytest.raises(WebhookRejectedError, match="not UTF-8"):
        source.verify(b"\xff\xfe", stripe_header(body), [STRIPE_SECRET], tolerance=300)
    with pytest.raises(WebhookRejectedError) as info:
        source.verify(body, stripe_header(body), [], tolerance=300)
    assert info.value.status_code == 503


def test_the_rejection_reason_never_carries_the_secret_or_the_signature() -> None:
    vector = VECTORS["vectors"][0]
    with pytest.raises(WebhookRejectedError) as info:
        source.verify(b"{}", vector["header"], [vector["secret"]], tolerance=300, now=SIGNED_AT)
    assert vector["secret"] not in info.value.reason
    assert vector["expected_v1"] not in info.value.reason


def test_delivery_reads_id_and_type_of_a_real_event() -> None:
    body = fixture_bytes("stripe/event_invoice.paid.json")
    delivery = source.delivery(body)
    assert delivery.source is Source.STRIPE
    assert delivery.event_id == json.loads(body)["id"]
    assert delivery.event_type == "invoice.paid"
    assert delivery.parse_error is None
    assert delivery.body is body


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "JSON list"),
        (b'{"type": "invoice.paid"}', "no usable 'id'"),
        (b'{"id": "evt_1", "type": 3}', "no usable 'type'"),
        (b'{"id": "evt_\\u0000", "type": "x"}', "no usable 'id'"),
    ],
)
def test_an_unreadable_body_becomes_a_failed_delivery_keyed_by_its_hash(
    body: bytes, error: str
) -> None:
    delivery = source.delivery(body)
    assert delivery.parse_error is not None
    assert error in delivery.parse_error
    if b'"id": "evt_1"' in body:
        assert delivery.event_id == "evt_1"
    else:
        assert delivery.event_id == "sha256:" + hashlib.sha256(body).hexdigest()
    assert source.delivery(body).event_id == delivery.event_id  # redeliveries collapse


def test_parse_gives_the_inbound_event_with_exact_amounts() -> None:
    body = fixture_bytes("stripe/event_invoice.paid.json")
    now = datetime.now(UTC)
    event = source.parse(body, now, inbox_event_id=7)
    assert event.event_type == "invoice.paid"
    assert event.inbox_event_id == 7
    assert isinstance(event.payload["data"]["object"]["amount_paid"], int)
    with pytest.raises(ValueError, match="Expecting"):
        source.parse(b"{", now)
    assert not any(isinstance(v, float) for v in _walk(event.payload))
    decimal_body = b'{"id": "evt_1", "type": "x", "rate": 20.10}'
    assert source.parse(decimal_body, now).payload["rate"] == Decimal("20.10")


def _walk(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _walk(v)]
    if isinstance(value, list):
        return [x for v in value for x in _walk(v)]
    return [value]


def test_a_non_ascii_signature_header_is_a_400_not_a_crash() -> None:
    with pytest.raises(WebhookRejectedError, match="not ASCII") as info:
        source.verify(b"{}", "t=1700000000,v1=\u00e9", ("whsec_x",), tolerance=300)
    assert info.value.status_code == 400
