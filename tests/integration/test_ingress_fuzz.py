"""Property: whatever a client sends, the ingress never answers 500 and stores nothing unsigned.

10,000 random deliveries (bodies, signatures valid or not, Shopify header sets) against the real
app on a real SQLite database. After each one, the inbox has grown by at most one row, and only
when the signature was valid.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.config import load_settings
from bridge.db.models import InboxEvent
from bridge.inbound.sources.shopify import sign as shopify_sign
from tests.support.webhooks import SHOPIFY_SECRET, STRIPE_SECRET, fixture_bytes, stripe_header

pytestmark = pytest.mark.slow

LIMIT = 4096
REAL_BODIES = [
    fixture_bytes("stripe/event_customer.created.json"),
    fixture_bytes("shopify/customers_create.json"),
    b"{}",
    b"",
]
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)
json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)
)
event_json = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=300), st.integers(), st.just("evt_fixed")),
        "type": st.one_of(st.sampled_from(["invoice.paid", "customer.deleted"]), st.text()),
        "data": st.dictionaries(st.text(max_size=10), json_scalar, max_size=5),
        "big": st.integers(min_value=2**53, max_value=2**70),
    },
).map(lambda d: json.dumps(d).encode())
bodies = st.one_of(
    st.binary(max_size=LIMIT + 200),
    event_json,
    st.sampled_from(REAL_BODIES),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
)
signature_modes = st.sampled_from(["valid", "other secret", "other body", "random", "missing"])


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str], bool]:
    source = draw(st.sampled_from(["stripe", "shopify"]))
    body = draw(bodies)
    mode = draw(signature_modes)
    headers: dict[str, str] = {}
    for name in draw(st.lists(st.sampled_from(_SHOPIFY_HEADERS), unique=True)):
        headers[name] = draw(st.one_of(header_text, st.sampled_from(["orders/paid", "e1", "w1"])))
    if source == "stripe":
        offset = draw(st.sampled_from([0, 0, 0, -200, 400, -400, 10**9]))
        stamp = int(time.time()) + offset
        try:
            text_ok = body.decode("utf-8") is not None
        except UnicodeDecodeError:
            text_ok = False
        signable = text_ok and abs(offset) <= 250
        value = {
            "valid": stripe_header(body, STRIPE_SECRET, stamp) if text_ok else "t=1,v1=00",
            "other secret": stripe_header(body, "whsec_other", stamp) if text_ok else "t=1",
            "other body": stripe_header(body + b" ", STRIPE_SECRET, stamp) if text_ok else "t=2",
            "random": draw(header_text),
            "missing": None,
        }[mode]
        if value is not None:
            headers["Stripe-Signature"] = value
        valid = mode == "valid" and signable
    else:
        value = {
            "valid": shopify_sign(body, SHOPIFY_SECRET),
            "other secret": shopify_sign(body, "other"),
            "other body": shopify_sign(body + b" ", SHOPIFY_SECRET),
            "random": draw(header_text),
            "missing": None,
        }[mode]
        if value is not None:
            headers["X-Shopify-Hmac-Sha256"] = value
        valid = mode == "valid"
    return source, body, headers, valid


_SHOPIFY_HEADERS = [
    "X-Shopify-Topic",
    "X-Shopify-Event-Id",
    "X-Shopify-Webhook-Id",
    "X-Shopify-Shop-Domain",
    "X-Shopify-API-Version",
    "X-Shopify-Triggered-At",
    "X-Other",
]


def test_random_deliveries_never_500_and_nothing_unsigned_is_stored(tmp_path: Path) -> None:
    app = create_app(
        load_settings(
            BRIDGE_DATABASE_URL=f"sqlite:///{tmp_path}/fuzz.db",
            STRIPE_WEBHOOK_SECRETS=STRIPE_SECRET,
            SHOPIFY_WEBHOOK_SECRETS=SHOPIFY_SECRET,
            BRIDGE_MAX_BODY_BYTES=LIMIT,
        ),
        auto_migrate=True,
    )
    seen = {"stored": 0, "rejected": 0}

    with TestClient(app) as client:
        runtime = app.state.runtime

        def count() -> int:
            with runtime.engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(InboxEvent)).scalar_one())

        @settings(
            max_examples=10_000,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(deliveries())
        def deliver(delivery: tuple[str, bytes, dict[str, str], bool]) -> None:
            source, body, headers, valid = delivery
            before = count()
            raw = {name: value.encode("latin-1") for name, value in headers.items()}
            answer = client.post(f"/webhooks/{source}", content=body, headers=raw)
            after = count()
            assert answer.status_code in {200, 400, 403, 413}, answer.text
            assert answer.headers["content-type"] == "application/json"
            assert after - before in {0, 1}
            if not valid:
                assert answer.status_code != 200
                assert after == before, "stored without a valid signature"
            if after > before:
                assert answer.status_code == 200
                assert answer.json()["status"] == "stored"
            seen["stored" if answer.status_code == 200 else "rejected"] += 1

        deliver()

    # The property was exercised on both sides: many accepted, many refused.
    assert seen["stored"] > 500
    assert seen["rejected"] > 500
